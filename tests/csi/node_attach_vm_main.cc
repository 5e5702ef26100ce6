// Runs inside the VM tier (tests/csi/node_stage_vm_test.sh): NodeServer with the real
// Linux host stages a block volume served on two NBD portals (kernel nbd + dm-multipath),
// writes and reads back through /dev/mapper, publishes (bind mount) and unpublishes,
// unstages, and checks that no dm device and no connected nbd device remain. Repeated
// calls must be idempotent. Exit 0 on success; prints what failed otherwise.
// With KILL_PIDFILE, the server of one path is killed (SIGKILL) after the first write and
// I/O through the mapper must go on over the other path.
//   strata_csi_node_attach_vm PORTAL1,PORTAL2 EXPORT WORKDIR [KILL_PIDFILE]
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "node_server.h"
#include "strata/common/process.h"
#include "vm_host_checks.h"

namespace v1 = ::csi::v1;
namespace fs = std::filesystem;

namespace {

using strata::csi::vmtest::AnyDm;
using strata::csi::vmtest::AnyNbdConnected;

using strata::csi::vmtest::Check;
using strata::csi::vmtest::CheckOk;
using strata::csi::vmtest::g_failures;

bool IsBlockDevice(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode);
}

// Writes a pattern at `offset` through `path` (O_DIRECT) and reads it back.
bool WriteReadBack(const std::string& path, off_t offset, char fill) {
  int fd = open(path.c_str(), O_RDWR | O_DIRECT);
  if (fd < 0) {
    std::cout << "open " << path << ": " << std::strerror(errno) << std::endl;
    return false;
  }
  void* wbuf = nullptr;
  void* rbuf = nullptr;
  bool ok = posix_memalign(&wbuf, 4096, 65536) == 0 && posix_memalign(&rbuf, 4096, 65536) == 0;
  if (ok) {
    std::memset(wbuf, fill, 65536);
    std::memset(rbuf, 0, 65536);
    ok = pwrite(fd, wbuf, 65536, offset) == 65536 && fsync(fd) == 0 &&
         pread(fd, rbuf, 65536, offset) == 65536 && std::memcmp(wbuf, rbuf, 65536) == 0;
    if (!ok) std::cout << "I/O on " << path << ": " << std::strerror(errno) << std::endl;
  }
  free(wbuf);
  free(rbuf);
  close(fd);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  strata::IgnoreSigpipe();
  if (argc != 4 && argc != 5) {
    std::cerr << "usage: " << argv[0] << " PORTALS EXPORT WORKDIR [KILL_PIDFILE]\n";
    return 2;
  }
  const fs::path work(argv[3]);
  fs::create_directories(work / "staging");
  strata::csi::NodeServer node("vm@127.0.0.1", "");

  v1::VolumeCapability cap;
  cap.mutable_block();
  cap.mutable_access_mode()->set_mode(v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);

  v1::NodeStageVolumeRequest stage;
  stage.set_volume_id("dev-a/csi-vm");
  stage.set_staging_target_path((work / "staging").string());
  *stage.mutable_volume_capability() = cap;
  (*stage.mutable_publish_context())["wwn"] = "naa.60014050000000aa";
  (*stage.mutable_publish_context())["exportName"] = argv[2];
  (*stage.mutable_publish_context())["portals"] = argv[1];
  const std::string mapper = "/dev/mapper/strata-naa60014050000000aa";

  CheckOk(node.Stage(stage), "NodeStageVolume");
  CheckOk(node.Stage(stage), "NodeStageVolume again (idempotent)");
  Check(IsBlockDevice(mapper), mapper + " is a block device");
  Check(WriteReadBack(mapper, 1 << 20, 'A'), "write + read back through " + mapper);
  if (argc == 5) {
    pid_t pid = 0;
    std::ifstream(argv[4]) >> pid;
    Check(pid > 0 && kill(pid, SIGKILL) == 0, std::string("kill the server in ") + argv[4]);
    for (int i = 0; i < 8; ++i) {
      Check(WriteReadBack(mapper, (4 + i) << 20, static_cast<char>('a' + i)),
            "write + read back with one path dead, round " + std::to_string(i));
    }
  }

  v1::NodePublishVolumeRequest pub;
  pub.set_volume_id(stage.volume_id());
  pub.set_staging_target_path(stage.staging_target_path());
  pub.set_target_path((work / "pod" / "dev").string());
  *pub.mutable_volume_capability() = cap;
  CheckOk(node.Publish(pub), "NodePublishVolume");
  CheckOk(node.Publish(pub), "NodePublishVolume again (idempotent)");
  Check(IsBlockDevice(pub.target_path()), "target is the block device");
  Check(WriteReadBack(pub.target_path(), 2 << 20, 'B'), "write + read back through the target");

  v1::NodeUnpublishVolumeRequest unpub;
  unpub.set_volume_id(stage.volume_id());
  unpub.set_target_path(pub.target_path());
  CheckOk(node.Unpublish(unpub), "NodeUnpublishVolume");
  CheckOk(node.Unpublish(unpub), "NodeUnpublishVolume again (idempotent)");
  Check(!fs::exists(pub.target_path()), "target removed");

  v1::NodeUnstageVolumeRequest unstage;
  unstage.set_volume_id(stage.volume_id());
  unstage.set_staging_target_path(stage.staging_target_path());
  CheckOk(node.Unstage(unstage), "NodeUnstageVolume");
  CheckOk(node.Unstage(unstage), "NodeUnstageVolume again (idempotent)");
  Check(!AnyDm(), "no dm device left");
  Check(!AnyNbdConnected(), "no connected nbd device left");

  std::cout << (g_failures == 0 ? "PASS" : "FAILED") << std::endl;
  return g_failures == 0 ? 0 : 1;
}
