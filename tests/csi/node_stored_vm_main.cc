// Runs inside the VM tier (tests/csi/node_stored_vm_test.sh), against two real strata-stored
// devices: the node plugin's whole attach path with the real Linux host (kernel nbd +
// dm-multipath).
//   1. multipath: a block LUN staged over two portals, the second reached through a TCP
//      forwarder this program owns, first while the forwarder is down (staged degraded,
//      the checker adds the path when it comes up); then the forwarder is stopped under continuous
//      verified I/O (zero errors), the path checker fails the path and NodeGetVolumeStats reports
//      it abnormal naming the portal; the forwarder comes back and the checker reconnects
//      the nbd device and reinstates the path.
//   2. shared LUN: a second node plugin (another dm prefix, another staging path) stages
//      the same LUN MULTI_NODE_MULTI_WRITER; each sees the other's writes.
//   3. expand: the LUN grows on the device; NodeExpandVolume brings the mapper device to
//      the new size, the data still there.
//   4. move: the LUN moves to the second device under I/O (and back, as a maintenance window's
//      restore does); the checker swaps the paths to
//      the second device's portals, zero I/O errors, the data intact.
//   4b. no path at all: with no_path_queue 0 the checker switches the dm device to
//      fail_if_no_path, a write fails with EIO instead of hanging; the path returns and
//      queueing is restored.
//   5. filesystem: an ext4 volume formatted when blank, mounted, published, stats with
//      bytes and inodes, restaged without reformatting, grown with NodeExpandVolume.
//   6. the same for xfs (formatted, grown with xfs_growfs, not reformatted).
// After each: unstage leaves no dm device and no connected nbd device.
//   strata_csi_node_stored_vm ADMIN GRPC_A GRPC_B PORTAL_A1 PORTAL_A2 PORTAL_B1 WORKDIR
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "node_server.h"
#include "strata/common/process.h"
#include "strata/csi/device_client.h"
#include "vm_host_checks.h"
#include "vm_io_tools.h"

namespace v1 = ::csi::v1;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

using strata::csi::vmtest::AnyDm;
using strata::csi::vmtest::AnyNbdConnected;
using strata::csi::vmtest::Check;
using strata::csi::vmtest::CheckNothingLeft;
using strata::csi::vmtest::CheckOk;
using strata::csi::vmtest::Contains;
using strata::csi::vmtest::Forwarder;
using strata::csi::vmtest::g_failures;
using strata::csi::vmtest::PortOf;
using strata::csi::vmtest::Run;
using strata::csi::vmtest::VerifyWriter;
using strata::csi::vmtest::WaitFor;
using strata::csi::vmtest::Writer;

bool WriteAt(const std::string& dev, off_t off, char fill) {
  int fd = open(dev.c_str(), O_RDWR | O_DIRECT);
  if (fd < 0) return false;
  void* b = nullptr;
  bool ok = posix_memalign(&b, 4096, 4096) == 0;
  if (ok) {
    std::memset(b, fill, 4096);
    ok = pwrite(fd, b, 4096, off) == 4096 && fsync(fd) == 0;
  }
  free(b);
  close(fd);
  return ok;
}

char ReadAt(const std::string& dev, off_t off) {
  int fd = open(dev.c_str(), O_RDONLY | O_DIRECT);
  if (fd < 0) return 0;
  void* b = nullptr;
  char c = 0;
  if (posix_memalign(&b, 4096, 4096) == 0 && pread(fd, b, 4096, off) == 4096) {
    c = static_cast<char*>(b)[0];
  }
  free(b);
  close(fd);
  return c;
}

uint64_t DeviceSize(const std::string& dev) {
  int fd = open(dev.c_str(), O_RDONLY);
  uint64_t size = 0;
  if (fd >= 0) {
    ioctl(fd, BLKGETSIZE64, &size);
    close(fd);
  }
  return size;
}

v1::VolumeCapability BlockCap(v1::VolumeCapability::AccessMode::Mode mode) {
  v1::VolumeCapability c;
  c.mutable_block();
  c.mutable_access_mode()->set_mode(mode);
  return c;
}

struct Volume {
  std::string id, wwn, export_name, portals, device_address;
};

v1::NodeStageVolumeRequest StageReq(const Volume& v, const fs::path& staging,
                                    const v1::VolumeCapability& cap) {
  v1::NodeStageVolumeRequest r;
  r.set_volume_id(v.id);
  r.set_staging_target_path(staging.string());
  *r.mutable_volume_capability() = cap;
  auto& ctx = *r.mutable_publish_context();
  ctx["wwn"] = v.wwn;
  ctx["exportName"] = v.export_name;
  ctx["portals"] = v.portals;
  ctx["deviceAddress"] = v.device_address;
  return r;
}

v1::NodeUnstageVolumeRequest UnstageReq(const Volume& v, const fs::path& staging) {
  v1::NodeUnstageVolumeRequest r;
  r.set_volume_id(v.id);
  r.set_staging_target_path(staging.string());
  return r;
}

v1::NodeGetVolumeStatsResponse Stats(strata::csi::NodeServer& node, const Volume& v,
                                     const std::string& path, strata::Status* status) {
  v1::NodeGetVolumeStatsRequest r;
  r.set_volume_id(v.id);
  r.set_volume_path(path);
  v1::NodeGetVolumeStatsResponse resp;
  *status = node.GetVolumeStats(r, &resp);
  return resp;
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

int main(int argc, char** argv) {
  strata::IgnoreSigpipe();
  if (argc != 8) {
    std::cerr << "usage: " << argv[0]
              << " ADMIN GRPC_A GRPC_B PORTAL_A1 PORTAL_A2 PORTAL_B1 WORKDIR\n";
    return 2;
  }
  const std::string admin = argv[1], grpc_a = argv[2], grpc_b = argv[3];
  const std::string portal_a1 = argv[4], portal_a2 = argv[5], portal_b1 = argv[6];
  const fs::path work(argv[7]);
  auto device_a = strata::csi::MakeGrpcDeviceClient("dev-a", grpc_a, 10s);

  auto make_lun = [&](const std::string& name, const std::string& size) -> Volume {
    Check(Run(admin + " --insecure --server " + grpc_a + " lun create " + name + " --size " + size +
              " --allow 127.0.0.1 >/dev/null"),
          "lun create " + name);
    auto lun = device_a->GetLun(name);
    CheckOk(lun.status(), "GetLun " + name);
    Volume v;
    v.id = "dev-a/" + name;
    v.export_name = name;
    v.device_address = grpc_a;
    if (lun.ok()) v.wwn = lun->wwn();
    return v;
  };

  strata::csi::NodeOptions o1;
  o1.node_id = "n1@127.0.0.1";
  o1.state_dir = (work / "state1").string();
  strata::csi::NodeServer node1(o1);

  // ---- 1. multipath: a path dies under I/O and comes back ----
  Forwarder fwd(PortOf(portal_a2));
  const uint16_t fwd_port = fwd.Start(0);
  Check(fwd_port != 0, "forwarder for the second path listening");
  Volume vol = make_lun("vol-b", "64MiB");
  const std::string fwd_portal = "127.0.0.1:" + std::to_string(fwd_port);
  vol.portals = portal_a1 + "," + fwd_portal;
  const fs::path staging1 = work / "staging1";
  fs::create_directories(staging1);
  const auto mnmw = v1::VolumeCapability::AccessMode::MULTI_NODE_MULTI_WRITER;
  // Staged while the second path is down: degraded, then the checker adds the path.
  fwd.Stop();
  CheckOk(node1.Stage(StageReq(vol, staging1, BlockCap(mnmw))),
          "NodeStageVolume with one of 2 portals down (degraded)");
  const std::string mapper = "/dev/mapper/" + strata::csi::DmNameForWwn(vol.wwn).value();
  Check(DeviceSize(mapper) == 64u << 20, mapper + " is 64 MiB");
  strata::Status st;
  auto stats = Stats(node1, vol, mapper, &st);
  Check(
      stats.volume_condition().abnormal() &&
          stats.volume_condition().message().find("not connected") != std::string::npos,
      "condition abnormal while a portal is not connected: " + stats.volume_condition().message());
  Check(fwd.Start(fwd_port) == fwd_port, "the second path's forwarder starts");
  std::vector<std::string> added;
  Check(WaitFor(
            [&] {
              for (const auto& a : node1.CheckPaths()) added.push_back(a);
              return Contains(added, "add_path");
            },
            30s),
        "path checker added the second path");
  stats = Stats(node1, vol, mapper, &st);
  CheckOk(st, "NodeGetVolumeStats");
  Check(!stats.volume_condition().abnormal(),
        "condition normal: " + stats.volume_condition().message());

  Writer writer(mapper, 16u << 20);
  writer.Start();
  Check(WaitFor([&] { return writer.ops() >= 100; }, 60s), "I/O running over both paths");
  fwd.Stop();
  const uint64_t at_cut = writer.ops();
  // dm fails the path at the first failed request, or the checker's probe does first.
  std::vector<std::string> actions;
  Check(WaitFor(
            [&] {
              for (const auto& a : node1.CheckPaths()) actions.push_back(a);
              return Stats(node1, vol, mapper, &st).volume_condition().abnormal();
            },
            30s),
        "the dead path is failed in dm-multipath");
  stats = Stats(node1, vol, mapper, &st);
  Check(stats.volume_condition().abnormal() &&
            stats.volume_condition().message().find(fwd_portal) != std::string::npos,
        "condition abnormal naming the portal: " + stats.volume_condition().message());
  Check(WaitFor([&] { return writer.ops() >= at_cut + 200; }, 60s),
        "I/O goes on over the remaining path (" + std::to_string(writer.ops() - at_cut) +
            " ops since the cut)");
  Check(fwd.Start(fwd_port) == fwd_port, "forwarder back on the same port");
  Check(WaitFor(
            [&] {
              for (const auto& a : node1.CheckPaths()) actions.push_back(a);
              return Contains(actions, "reinstate_path");
            },
            30s),
        "path checker reconnected and reinstated the path");
  for (const auto& a : actions) std::cout << "     checker: " << a << std::endl;
  stats = Stats(node1, vol, mapper, &st);
  Check(!stats.volume_condition().abnormal(),
        "condition normal again: " + stats.volume_condition().message());
  const uint64_t at_back = writer.ops();
  Check(WaitFor([&] { return writer.ops() >= at_back + 100; }, 60s), "I/O goes on over both");
  writer.Stop();
  Check(writer.errors() == 0, "zero I/O errors through the path loss and return (" +
                                  std::to_string(writer.ops()) + " verified writes)" +
                                  (writer.errors() ? ": " + writer.first_error() : ""));
  Check(VerifyWriter(writer, mapper), "every block holds its last write");

  // ---- 2. the same LUN on a second node ----
  strata::csi::NodeOptions o2;
  o2.node_id = "n2@127.0.0.1";
  o2.dm_prefix = "strata2-";
  strata::csi::NodeServer node2(o2);
  const fs::path staging2 = work / "staging2";
  fs::create_directories(staging2);
  Volume vol2 = vol;
  vol2.portals = portal_a1 + "," + portal_a2;
  CheckOk(node2.Stage(StageReq(vol2, staging2, BlockCap(mnmw))), "second node stages the LUN");
  const std::string mapper2 =
      "/dev/mapper/" + strata::csi::DmNameForWwn(vol.wwn, "strata2-").value();
  Check(WriteAt(mapper, 40 << 20, 'x') && ReadAt(mapper2, 40 << 20) == 'x',
        "node 2 reads what node 1 wrote");
  Check(WriteAt(mapper2, 41 << 20, 'y') && ReadAt(mapper, 41 << 20) == 'y',
        "node 1 reads what node 2 wrote");
  CheckOk(node2.Unstage(UnstageReq(vol2, staging2)), "second node unstages");

  // ---- 3. expand ----
  Check(Run(admin + " --insecure --server " + grpc_a + " lun resize vol-b --size 96MiB >/dev/null"),
        "lun resize vol-b 96MiB");
  {
    v1::NodeExpandVolumeRequest r;
    r.set_volume_id(vol.id);
    r.set_volume_path(mapper);
    r.mutable_capacity_range()->set_required_bytes(96 << 20);
    v1::NodeExpandVolumeResponse resp;
    CheckOk(node1.Expand(r, &resp), "NodeExpandVolume");
    Check(resp.capacity_bytes() == 96 << 20, "capacity_bytes 96 MiB");
    Check(DeviceSize(mapper) == 96u << 20, mapper + " is 96 MiB");
    Check(ReadAt(mapper, 40 << 20) == 'x', "data still there after the expand");
    Check(WriteAt(mapper, 90 << 20, 'z') && ReadAt(mapper, 90 << 20) == 'z',
          "write past the old end");
  }

  // ---- 4. the LUN moves to device B under I/O, and back (4c) ----
  // One live move under a verifying writer: the path checker swaps the staged paths to the
  // target's portals, I/O goes on, zero errors, the data intact.
  auto move_under_io = [&](const std::string& from, const std::string& to,
                           const std::string& to_portal, const std::string& from_portal,
                           const std::string& what) {
    Writer mover(mapper, 16u << 20);
    mover.Start();
    Check(WaitFor([&] { return mover.ops() >= 50; }, 60s), "I/O running before the " + what);
    Check(Run(admin + " --insecure --server " + from + " lun migrate vol-b --to-device " + to +
              " --wait >/dev/null"),
          "lun migrate vol-b (" + what + ")");
    actions.clear();
    Check(WaitFor(
              [&] {
                for (const auto& a : node1.CheckPaths()) actions.push_back(a);
                return Contains(actions, "swap");
              },
              30s),
          "path checker swapped the paths (" + what + ")");
    for (const auto& a : actions) std::cout << "     checker: " << a << std::endl;
    const std::string state = ReadFile(staging1 / strata::csi::NodeServer::kStateFile);
    Check(
        state.find(to_portal) != std::string::npos && state.find(from_portal) == std::string::npos,
        "the staged paths are the target's portals (" + what + ")");
    const uint64_t at_swap = mover.ops();
    Check(WaitFor([&] { return mover.ops() >= at_swap + 100; }, 60s),
          "I/O goes on after the swap (" + what + ")");
    mover.Stop();
    Check(mover.errors() == 0, "zero I/O errors through the " + what + " (" +
                                   std::to_string(mover.ops()) + " verified writes)" +
                                   (mover.errors() ? ": " + mover.first_error() : ""));
    Check(VerifyWriter(mover, mapper) && ReadAt(mapper, 90 << 20) == 'z',
          "data intact after the " + what);
  };
  move_under_io(grpc_a, grpc_b, portal_b1, portal_a1, "move to device B");
  // 4c. A maintenance window's restore: the same live move in the other direction, onto the
  // device that still holds the stub the first move left behind.
  move_under_io(grpc_b, grpc_a, portal_a1, portal_b1, "move back to device A (restore)");
  CheckOk(node1.Unstage(UnstageReq(vol, staging1)), "NodeUnstageVolume");
  CheckNothingLeft("after the block volume");

  // ---- 4b. no path at all: once no_path_queue has passed, I/O fails instead of hanging ----
  {
    strata::csi::NodeOptions o3;
    o3.node_id = "n3@127.0.0.1";
    o3.dm_prefix = "strata3-";
    o3.no_path_queue = 0ms;
    strata::csi::NodeServer node3(o3);
    Volume v3 = make_lun("vol-n", "16MiB");
    v3.portals = fwd_portal;  // its only path goes through the forwarder
    const fs::path staging3 = work / "staging3";
    fs::create_directories(staging3);
    CheckOk(node3.Stage(StageReq(v3, staging3, BlockCap(mnmw))), "NodeStageVolume over 1 path");
    const std::string mapper3 =
        "/dev/mapper/" + strata::csi::DmNameForWwn(v3.wwn, "strata3-").value();
    Check(WriteAt(mapper3, 0, 'p'), "write through the one path");
    fwd.Stop();
    std::vector<std::string> seen;
    Check(WaitFor(
              [&] {
                for (const auto& a : node3.CheckPaths()) seen.push_back(a);
                return Contains(seen, "fail_if_no_path");
              },
              30s),
          "checker switched the volume to fail_if_no_path");
    Check(!WriteAt(mapper3, 0, 'q'), "with no path left a write fails (EIO) instead of hanging");
    Check(fwd.Start(fwd_port) == fwd_port, "forwarder back");
    Check(WaitFor(
              [&] {
                for (const auto& a : node3.CheckPaths()) seen.push_back(a);
                return Contains(seen, "queue_if_no_path");
              },
              30s),
          "checker reinstated the path and queueing");
    for (const auto& a : seen) std::cout << "     checker: " << a << std::endl;
    Check(WriteAt(mapper3, 0, 'r') && ReadAt(mapper3, 0) == 'r', "writes work again");
    CheckOk(node3.Unstage(UnstageReq(v3, staging3)), "NodeUnstageVolume");
    CheckNothingLeft("after the no-path volume");
  }
  fwd.Stop();

  // ---- 5. a filesystem volume ----
  Volume fsv = make_lun("vol-f", "64MiB");
  fsv.portals = portal_a1 + "," + portal_a2;
  v1::VolumeCapability fcap;
  fcap.mutable_mount()->set_fs_type("ext4");
  fcap.mutable_mount()->add_mount_flags("noatime");
  fcap.mutable_access_mode()->set_mode(v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  const fs::path fstaging = work / "fstaging";
  fs::create_directories(fstaging);
  CheckOk(node1.Stage(StageReq(fsv, fstaging, fcap)), "NodeStageVolume ext4 (formats)");
  CheckOk(node1.Stage(StageReq(fsv, fstaging, fcap)), "NodeStageVolume ext4 again");
  v1::NodePublishVolumeRequest pub;
  pub.set_volume_id(fsv.id);
  pub.set_staging_target_path(fstaging.string());
  pub.set_target_path((work / "pod" / "data").string());
  *pub.mutable_volume_capability() = fcap;
  CheckOk(node1.Publish(pub), "NodePublishVolume (bind mount)");
  { std::ofstream(work / "pod" / "data" / "hello") << "hello strata\n"; }
  stats = Stats(node1, fsv, pub.target_path(), &st);
  CheckOk(st, "NodeGetVolumeStats on the filesystem");
  Check(stats.usage_size() == 2 && stats.usage(0).unit() == v1::VolumeUsage::BYTES &&
            stats.usage(0).total() > (50 << 20) &&
            stats.usage(1).unit() == v1::VolumeUsage::INODES && stats.usage(1).used() > 10,
        "bytes and inodes reported");
  v1::NodeUnpublishVolumeRequest unpub;
  unpub.set_volume_id(fsv.id);
  unpub.set_target_path(pub.target_path());
  CheckOk(node1.Unpublish(unpub), "NodeUnpublishVolume");
  CheckOk(node1.Unstage(UnstageReq(fsv, fstaging)), "NodeUnstageVolume ext4");
  CheckNothingLeft("after the filesystem volume");
  CheckOk(node1.Stage(StageReq(fsv, fstaging, fcap)), "NodeStageVolume ext4 a second time");
  Check(ReadFile(fstaging / "fs" / "hello") == "hello strata\n",
        "not reformatted: the file is there");
  Check(
      Run(admin + " --insecure --server " + grpc_a + " lun resize vol-f --size 128MiB >/dev/null"),
      "lun resize vol-f 128MiB");
  {
    v1::NodeExpandVolumeRequest r;
    r.set_volume_id(fsv.id);
    r.set_volume_path((fstaging / "fs").string());
    r.set_staging_target_path(fstaging.string());
    r.mutable_capacity_range()->set_required_bytes(128 << 20);
    v1::NodeExpandVolumeResponse resp;
    const auto before = Stats(node1, fsv, (fstaging / "fs").string(), &st);
    CheckOk(node1.Expand(r, &resp), "NodeExpandVolume ext4 (online resize2fs)");
    const auto after = Stats(node1, fsv, (fstaging / "fs").string(), &st);
    Check(before.usage_size() > 0 && after.usage_size() > 0 &&
              after.usage(0).total() > before.usage(0).total() + (50 << 20),
          "the file system grew: " +
              std::to_string(before.usage_size() ? before.usage(0).total() : 0) + " -> " +
              std::to_string(after.usage_size() ? after.usage(0).total() : 0));
  }
  CheckOk(node1.Unstage(UnstageReq(fsv, fstaging)), "NodeUnstageVolume ext4");
  CheckNothingLeft("after the ext4 volume");

  // ---- 6. an xfs volume (mkfs.xfs wants at least 300 MB) ----
  Volume xv = make_lun("vol-x", "320MiB");
  xv.portals = portal_a1 + "," + portal_a2;
  v1::VolumeCapability xcap = fcap;
  xcap.mutable_mount()->set_fs_type("xfs");
  const fs::path xstaging = work / "xstaging";
  fs::create_directories(xstaging);
  CheckOk(node1.Stage(StageReq(xv, xstaging, xcap)), "NodeStageVolume xfs (formats)");
  { std::ofstream(xstaging / "fs" / "x") << "xfs\n"; }
  Check(
      Run(admin + " --insecure --server " + grpc_a + " lun resize vol-x --size 400MiB >/dev/null"),
      "lun resize vol-x 400MiB");
  {
    v1::NodeExpandVolumeRequest r;
    r.set_volume_id(xv.id);
    r.set_volume_path((xstaging / "fs").string());
    r.mutable_capacity_range()->set_required_bytes(400 << 20);
    v1::NodeExpandVolumeResponse resp;
    const auto before = Stats(node1, xv, (xstaging / "fs").string(), &st);
    CheckOk(node1.Expand(r, &resp), "NodeExpandVolume xfs (xfs_growfs)");
    const auto after = Stats(node1, xv, (xstaging / "fs").string(), &st);
    Check(before.usage_size() > 0 && after.usage_size() > 0 &&
              after.usage(0).total() > before.usage(0).total() + (50 << 20),
          "the xfs file system grew");
  }
  CheckOk(node1.Unstage(UnstageReq(xv, xstaging)), "NodeUnstageVolume xfs");
  CheckOk(node1.Stage(StageReq(xv, xstaging, xcap)), "NodeStageVolume xfs again");
  Check(ReadFile(xstaging / "fs" / "x") == "xfs\n", "xfs not reformatted: the file is there");
  CheckOk(node1.Unstage(UnstageReq(xv, xstaging)), "NodeUnstageVolume xfs");
  CheckNothingLeft("at the end");

  std::cout << (g_failures == 0 ? "PASS" : "FAILED") << std::endl;
  return g_failures == 0 ? 0 : 1;
}
