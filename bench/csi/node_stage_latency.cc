// strata-bench-csi-node: NodeStageVolume + NodePublishVolume latency of strata-csi's NodeServer
// on the real Linux host (kernel nbd + dm-multipath: the VM tier), and stage / unstage on their
// own for the I/O runs of node_io_vm.sh.
//
//   strata-bench-csi-node cycles N WORKDIR PORTALS EXPORT WWN [PORTALS EXPORT WWN]...
//       N rounds (after one warm-up round); in each, every volume given in turn is staged,
//       published, unpublished and unstaged; prints p50 / p99 / max of each call and of
//       stage+publish per volume. PORTALS: HOST:PORT[,HOST:PORT...].
//   strata-bench-csi-node stage PORTALS EXPORT WWN WORKDIR
//       stages WORKDIR/staging and prints the /dev/mapper path.
//   strata-bench-csi-node stage-tls PORTALS EXPORT WWN WORKDIR CERT_DIR
//       the same over NBD TLS + kernel TLS (strata-csi --nbd-tls=require) with CERT_DIR's
//       tls.crt, tls.key and ca.crt (a kubernetes.io/tls Secret's names).
//   strata-bench-csi-node unstage WORKDIR
//
// The calls go to NodeServer's methods in this process (no gRPC): what is timed is the node's
// own work, the part a kubelet waits for beyond one local unix-socket round trip.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "node_server.h"
#include "strata/common/process.h"
#include "strata/csi/node_host.h"

namespace v1 = ::csi::v1;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr char kVolumeId[] = "bench-dev/csi-bench";

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

void Report(const char* what, const std::vector<double>& ms) {
  std::printf("%-28s n=%zu  p50 %8.2f ms  p99 %8.2f ms  max %8.2f ms\n", what, ms.size(),
              Percentile(ms, 50), Percentile(ms, 99), *std::max_element(ms.begin(), ms.end()));
}

v1::VolumeCapability BlockCapability() {
  v1::VolumeCapability cap;
  cap.mutable_block();
  cap.mutable_access_mode()->set_mode(v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  return cap;
}

v1::NodeStageVolumeRequest StageRequest(const std::string& portals, const std::string& export_name,
                                        const std::string& wwn, const fs::path& work) {
  v1::NodeStageVolumeRequest req;
  req.set_volume_id(kVolumeId);
  req.set_staging_target_path((work / "staging").string());
  *req.mutable_volume_capability() = BlockCapability();
  (*req.mutable_publish_context())["wwn"] = wwn;
  (*req.mutable_publish_context())["exportName"] = export_name;
  (*req.mutable_publish_context())["portals"] = portals;
  return req;
}

v1::NodeUnstageVolumeRequest UnstageRequest(const fs::path& work) {
  v1::NodeUnstageVolumeRequest req;
  req.set_volume_id(kVolumeId);
  req.set_staging_target_path((work / "staging").string());
  return req;
}

// Exits with a message when `s` is not OK.
void Must(const strata::Status& s, const char* what) {
  if (s.ok()) return;
  std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
  std::exit(1);
}

// Times fn() in ms.
template <typename F>
double TimeMs(F fn) {
  const auto t0 = Clock::now();
  fn();
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

struct Config {
  std::string portals, export_name, wwn;
  std::vector<double> stage, publish, both, unpublish, unstage;
};

// Rounds of stage, publish, unpublish, unstage of every config in turn (the order rotates
// each round, so a slow moment of the machine does not always hit the same config).
int Cycles(const fs::path& work, int n, std::vector<Config> configs) {
  strata::csi::NodeServer node("bench@127.0.0.1", "");
  for (int i = -1; i < n; ++i) {  // round -1: warm-up, not recorded
    for (size_t k = 0; k < configs.size(); ++k) {
      Config& c = configs[(k + static_cast<size_t>(i + 1)) % configs.size()];
      const auto stage = StageRequest(c.portals, c.export_name, c.wwn, work);
      const auto unstage = UnstageRequest(work);
      v1::NodePublishVolumeRequest pub;
      pub.set_volume_id(kVolumeId);
      pub.set_staging_target_path(stage.staging_target_path());
      pub.set_target_path((work / "pod" / "dev").string());
      *pub.mutable_volume_capability() = BlockCapability();
      v1::NodeUnpublishVolumeRequest unpub;
      unpub.set_volume_id(kVolumeId);
      unpub.set_target_path(pub.target_path());

      const double a = TimeMs([&] { Must(node.Stage(stage), "NodeStageVolume"); });
      const double b = TimeMs([&] { Must(node.Publish(pub), "NodePublishVolume"); });
      const double u = TimeMs([&] { Must(node.Unpublish(unpub), "NodeUnpublishVolume"); });
      const double d = TimeMs([&] { Must(node.Unstage(unstage), "NodeUnstageVolume"); });
      if (i < 0) continue;
      c.stage.push_back(a);
      c.publish.push_back(b);
      c.both.push_back(a + b);
      c.unpublish.push_back(u);
      c.unstage.push_back(d);
    }
  }
  for (const Config& c : configs) {
    std::printf("-- portals %s (%zu nbd device(s) under dm-multipath)\n", c.portals.c_str(),
                strata::csi::SplitPortals(c.portals).size());
    Report("NodeStageVolume", c.stage);
    Report("NodePublishVolume", c.publish);
    Report("NodeStage+NodePublish", c.both);
    Report("NodeUnpublishVolume", c.unpublish);
    Report("NodeUnstageVolume", c.unstage);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  strata::IgnoreSigpipe();
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "cycles" && argc >= 7 && (argc - 4) % 3 == 0) {
    std::vector<Config> configs;
    for (int i = 4; i + 2 < argc; i += 3) {
      configs.push_back(Config{argv[i], argv[i + 1], argv[i + 2], {}, {}, {}, {}, {}});
    }
    fs::create_directories(fs::path(argv[3]) / "staging");
    return Cycles(argv[3], std::atoi(argv[2]), std::move(configs));
  }
  if ((cmd == "stage" && argc == 6) || (cmd == "stage-tls" && argc == 7)) {
    fs::create_directories(fs::path(argv[5]) / "staging");
    strata::csi::NodeOptions options;
    options.node_id = "bench@127.0.0.1";
    if (cmd == "stage-tls") {
      const fs::path certs(argv[6]);
      options.nbd_tls.require = true;
      options.nbd_tls.cert_file = (certs / "tls.crt").string();
      options.nbd_tls.key_file = (certs / "tls.key").string();
      options.nbd_tls.ca_file = (certs / "ca.crt").string();
    }
    strata::csi::NodeServer node(options);
    Must(node.Stage(StageRequest(argv[2], argv[3], argv[4], argv[5])), "NodeStageVolume");
    auto dm = strata::csi::DmNameForWwn(argv[4]);
    Must(dm.status(), "dm name");
    std::printf("/dev/mapper/%s\n", dm->c_str());
    return 0;
  }
  if (cmd == "unstage" && argc == 3) {
    strata::csi::NodeServer node("bench@127.0.0.1", "");
    Must(node.Unstage(UnstageRequest(argv[2])), "NodeUnstageVolume");
    return 0;
  }
  std::fprintf(stderr,
               "usage: %s cycles N WORKDIR PORTALS EXPORT WWN [PORTALS EXPORT WWN]...\n"
               "       %s stage PORTALS EXPORT WWN WORKDIR\n"
               "       %s stage-tls PORTALS EXPORT WWN WORKDIR CERT_DIR\n"
               "       %s unstage WORKDIR\n",
               argv[0], argv[0], argv[0], argv[0]);
  return 2;
}
