// Runs inside the VM tier (tests/csi/node_tls_vm_test.sh), against a real strata-stored started
// with --nbd-tls require: strata-csi's kernel nbd path over TLS (#14) with the real Linux host
// (kernel nbd + kernel TLS + dm-multipath).
//   1. a node without an NBD client certificate: NodeStageVolume fails FAILED_PRECONDITION
//      naming TLS (the device answers NBD_REP_ERR_TLS_REQD), nothing left behind.
//   2. a node whose certificate the device does not trust: FAILED_PRECONDITION, nothing left.
//   3. a raw block volume staged over two TLS paths (the second through a TCP forwarder this
//      program owns); both sockets are in kernel TLS (/proc/net/tls_stat); continuous verified
//      writes through the dm-multipath device; the forwarder stops (the path dies), I/O goes
//      on over the other path; it comes back, the path checker redials (a new STARTTLS + TLS
//      handshake, NBD_CMD_RECONFIGURE) and reinstates the path; zero I/O errors, every block
//      holds its last write; unstage leaves nothing.
//   strata_csi_node_tls_vm ADMIN GRPC PORTAL1 PORTAL2 CERT_DIR ROGUE_CERT_DIR WORKDIR
//   (CERT_DIR: tls.crt, tls.key, ca.crt of the node's client certificate; ROGUE_CERT_DIR the
//   same from another CA)
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
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

// The kernel's TLS counters (/proc/net/tls_stat: TlsCurrTxSw, TlsCurrRxSw, ...).
std::map<std::string, long> TlsStat() {
  std::map<std::string, long> out;
  std::ifstream in("/proc/net/tls_stat");
  std::string k;
  long v;
  while (in >> k >> v) out[k] = v;
  return out;
}

v1::NodeStageVolumeRequest StageReq(const std::string& id, const std::string& wwn,
                                    const std::string& export_name, const std::string& portals,
                                    const fs::path& staging) {
  v1::NodeStageVolumeRequest r;
  r.set_volume_id(id);
  r.set_staging_target_path(staging.string());
  r.mutable_volume_capability()->mutable_block();
  r.mutable_volume_capability()->mutable_access_mode()->set_mode(
      v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  auto& ctx = *r.mutable_publish_context();
  ctx["wwn"] = wwn;
  ctx["exportName"] = export_name;
  ctx["portals"] = portals;
  return r;
}

strata::csi::NbdClientTls TlsFrom(const fs::path& dir) {
  strata::csi::NbdClientTls t;
  t.require = true;
  t.cert_file = (dir / "tls.crt").string();
  t.key_file = (dir / "tls.key").string();
  t.ca_file = (dir / "ca.crt").string();
  return t;
}

// Whether NodeGetVolumeStats reports the volume at `path` abnormal (a path down).
bool Abnormal(strata::csi::NodeServer& node, const std::string& path) {
  v1::NodeGetVolumeStatsRequest r;
  r.set_volume_id("dev-t/vol-t");
  r.set_volume_path(path);
  v1::NodeGetVolumeStatsResponse resp;
  return node.GetVolumeStats(r, &resp).ok() && resp.volume_condition().abnormal();
}

}  // namespace

int main(int argc, char** argv) {
  strata::IgnoreSigpipe();
  if (argc != 8) {
    std::cerr << "usage: " << argv[0]
              << " ADMIN GRPC PORTAL1 PORTAL2 CERT_DIR ROGUE_CERT_DIR WORKDIR\n";
    return 2;
  }
  const std::string admin = argv[1], grpc = argv[2], portal1 = argv[3], portal2 = argv[4];
  const fs::path certs(argv[5]), rogue(argv[6]), work(argv[7]);

  // The LUN is open to the node's certificate identity (CN=node-1), from any IP.
  Check(Run(admin + " --insecure --server " + grpc +
            " lun create vol-t --size 64MiB --allow-identity CN=node-1 >/dev/null"),
        "lun create vol-t --allow-identity CN=node-1");
  auto device = strata::csi::MakeGrpcDeviceClient("dev-t", grpc, 10s);
  auto lun = device->GetLun("vol-t");
  CheckOk(lun.status(), "GetLun vol-t");
  if (!lun.ok()) return 1;
  const std::string wwn = lun->wwn();
  const std::string mapper = "/dev/mapper/" + strata::csi::DmNameForWwn(wwn).value();

  // ---- 1. no client certificate: refused by the require-mode device ----
  {
    strata::csi::NodeOptions o;
    o.node_id = "plain@127.0.0.1";
    strata::csi::NodeServer plain(o);
    const fs::path staging = work / "plain";
    fs::create_directories(staging);
    strata::Status s =
        plain.Stage(StageReq("dev-t/vol-t", wwn, "vol-t", portal1 + "," + portal2, staging));
    Check(s.code() == strata::StatusCode::kFailedPrecondition &&
              s.message().find("requires TLS") != std::string::npos,
          "plaintext node refused: FAILED_PRECONDITION naming TLS: " + s.ToString());
    CheckNothingLeft("after the plaintext stage");
  }

  // ---- 2. a certificate of another CA: refused ----
  {
    strata::csi::NodeOptions o;
    o.node_id = "rogue@127.0.0.1";
    o.nbd_tls = TlsFrom(rogue);
    o.nbd_tls.ca_file = (certs / "ca.crt").string();  // trusts the device; the device not it
    strata::csi::NodeServer node(o);
    const fs::path staging = work / "rogue";
    fs::create_directories(staging);
    strata::Status s = node.Stage(StageReq("dev-t/vol-t", wwn, "vol-t", portal1, staging));
    // TLS 1.2: the device refuses the certificate after the client's last flight, so the client
    // may see the alert (FAILED_PRECONDITION) or only the reset (UNAVAILABLE); either way the
    // stage fails naming the TLS handshake.
    Check(!s.ok() && s.message().find("TLS handshake") != std::string::npos,
          "untrusted client certificate refused, naming the TLS handshake: " + s.ToString());
    CheckNothingLeft("after the untrusted certificate");
  }

  // ---- 3. two TLS paths under dm-multipath, one killed and redialled ----
  strata::csi::NodeOptions o;
  o.node_id = "node-1@127.0.0.1";
  o.nbd_tls = TlsFrom(certs);
  strata::csi::NodeServer node(o);
  // The second path: to portal 1 through the forwarder (which dials 127.0.0.1).
  Forwarder fwd(PortOf(portal1));
  const uint16_t fwd_port = fwd.Start(0);
  Check(fwd_port != 0, "forwarder for the second path listening");
  const std::string fwd_portal = "127.0.0.1:" + std::to_string(fwd_port);
  const fs::path staging = work / "staging";
  fs::create_directories(staging);
  const auto before = TlsStat();
  CheckOk(node.Stage(StageReq("dev-t/vol-t", wwn, "vol-t", portal2 + "," + fwd_portal, staging)),
          "NodeStageVolume over two TLS paths");
  {
    auto now = TlsStat();
    Check(now["TlsCurrTxSw"] - before.at("TlsCurrTxSw") == 2 &&
              now["TlsCurrRxSw"] - before.at("TlsCurrRxSw") == 2,
          "both nbd sockets in kernel TLS both ways (TlsCurrTxSw " +
              std::to_string(now["TlsCurrTxSw"]) + ", TlsCurrRxSw " +
              std::to_string(now["TlsCurrRxSw"]) + ")");
  }
  Run("dmsetup status " + fs::path(mapper).filename().string());

  Writer writer(mapper, 16u << 20);
  writer.Start();
  Check(WaitFor([&] { return writer.ops() >= 100; }, 60s), "verified I/O over both TLS paths");
  fwd.Stop();
  const uint64_t at_cut = writer.ops();
  std::vector<std::string> actions;
  Check(WaitFor(
            [&] {
              for (const auto& a : node.CheckPaths()) actions.push_back(a);
              return Abnormal(node, mapper);
            },
            30s),
        "the dead path is failed in dm-multipath");
  Check(WaitFor([&] { return writer.ops() >= at_cut + 200; }, 60s),
        "I/O goes on over the remaining TLS path (" + std::to_string(writer.ops() - at_cut) +
            " ops since the cut)");
  Check(fwd.Start(fwd_port) == fwd_port, "forwarder back on the same port");
  Check(WaitFor(
            [&] {
              for (const auto& a : node.CheckPaths()) actions.push_back(a);
              return Contains(actions, "reinstate_path");
            },
            30s),
        "path checker redialled over TLS and reinstated the path");
  for (const auto& a : actions) std::cout << "     checker: " << a << std::endl;
  Check(!Abnormal(node, mapper), "condition normal again");
  // The dead socket is released by the kernel when the new one replaces it.
  Check(WaitFor(
            [&] {
              auto now = TlsStat();
              return now["TlsCurrTxSw"] - before.at("TlsCurrTxSw") == 2 &&
                     now["TlsCurrRxSw"] - before.at("TlsCurrRxSw") == 2;
            },
            10s),
        "after the redial: again two nbd sockets in kernel TLS both ways (TlsCurrTxSw " +
            std::to_string(TlsStat()["TlsCurrTxSw"]) + ")");
  const uint64_t at_back = writer.ops();
  Check(WaitFor([&] { return writer.ops() >= at_back + 100; }, 60s), "I/O goes on over both");
  writer.Stop();
  Check(writer.errors() == 0, "zero I/O errors through the path loss and redial (" +
                                  std::to_string(writer.ops()) + " verified writes)" +
                                  (writer.errors() ? ": " + writer.first_error() : ""));
  Check(VerifyWriter(writer, mapper), "every block holds its last write");
  v1::NodeUnstageVolumeRequest un;
  un.set_volume_id("dev-t/vol-t");
  un.set_staging_target_path(staging.string());
  CheckOk(node.Unstage(un), "NodeUnstageVolume");
  fwd.Stop();
  CheckNothingLeft("at the end");

  std::cout << (g_failures == 0 ? "PASS" : "FAILED") << std::endl;
  return g_failures == 0 ? 0 : 1;
}
