// strata-bench-csi-controller: CreateVolume, DeleteVolume, ControllerPublishVolume and
// ControllerUnpublishVolume latency through `strata-csi --mode controller` (csi.v1 on a unix
// socket), beside the same LUN operations sent straight to the device's management API
// (strata.storage.v1 over loopback TCP) in the same run, so the difference is what the CSI
// layer costs.
//
//   strata-bench-csi-controller STRATA_STORED STRATA_CSI [--n N] [--dir DIR] [--size BYTES]
//                               [--csi-log-level LEVEL]
//
// Starts one strata-stored (one ssd tier in DIR, default a new directory under /tmp) and one
// strata-csi in front of it. Each of N rounds runs, on a fresh volume, the four CSI calls and
// two device-side peers: "device, 1 call" (CreateLun / SetLunAccess / DeleteLun alone: the
// least any driver must do) and "device, driver's calls" (the same device RPCs, in the same
// order, that strata-csi makes for that CSI call: GetLun + GetDeviceStatus + CreateLun for
// CreateVolume, GetLun + SetLunAccess for publish and unpublish, GetLun + DeleteLun for
// DeleteVolume). The order CSI/device alternates between rounds so neither always runs
// right after the other's writes. A round trip that does no storage work on each channel
// (Identity.GetPluginInfo, GetDeviceStatus) is timed as the transport floor.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "csi/v1/csi.grpc.pb.h"
#include "strata/common/process.h"
#include "strata/storage/v1/storage.grpc.pb.h"

extern char** environ;

namespace {

namespace v1 = ::csi::v1;
namespace sv1 = ::strata::storage::v1;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr char kNodeId[] = "bench@127.0.0.1";
constexpr char kNodeIp[] = "127.0.0.1";

using Child = strata::testing::ChildProcess;
using strata::testing::WaitFor;

// The "grpc" field of strata-stored's ready file ({"grpc":"HOST:PORT","nbd":[...]}).
std::string GrpcFromReadyFile(const fs::path& path) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string key = "\"grpc\":\"";
  auto pos = text.find(key);
  if (pos == std::string::npos) return "";
  pos += key.size();
  return text.substr(pos, text.find('"', pos) - pos);
}

template <typename Ctx>
void SetDeadline(Ctx* ctx) {
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
}

[[noreturn]] void Die(const std::string& what, const grpc::Status& s) {
  std::fprintf(stderr, "%s: %s (code %d)\n", what.c_str(), s.error_message().c_str(),
               static_cast<int>(s.error_code()));
  std::exit(1);
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// Samples in ms per (operation, column).
using Samples = std::map<std::string, std::map<std::string, std::vector<double>>>;

// Runs fn once and records its wall time under samples[op][column].
void Time(Samples* samples, const std::string& op, const std::string& column,
          const std::function<void()>& fn) {
  const auto t0 = Clock::now();
  fn();
  const std::chrono::duration<double, std::milli> d = Clock::now() - t0;
  (*samples)[op][column].push_back(d.count());
}

class Bench {
 public:
  Bench(std::shared_ptr<grpc::Channel> csi, std::shared_ptr<grpc::Channel> device,
        uint64_t size_bytes)
      : identity_(v1::Identity::NewStub(csi)),
        controller_(v1::Controller::NewStub(csi)),
        device_(sv1::StorageDevice::NewStub(device)),
        size_bytes_(size_bytes) {}

  // One round; `record` false for warm-up rounds.
  void Round(int i, bool record) {
    Samples scratch;
    Samples* s = record ? &samples_ : &scratch;
    if (i % 2 == 0) {
      CsiRound(i, s);
      DeviceRound(i, s);
      DriverSequenceRound(i, s);
    } else {
      DriverSequenceRound(i, s);
      DeviceRound(i, s);
      CsiRound(i, s);
    }
  }

  const Samples& samples() const { return samples_; }

 private:
  void CsiRound(int i, Samples* s) {
    Time(s, "no-op round trip", "csi", [&] {
      grpc::ClientContext ctx;
      SetDeadline(&ctx);
      v1::GetPluginInfoResponse r;
      auto st = identity_->GetPluginInfo(&ctx, v1::GetPluginInfoRequest(), &r);
      if (!st.ok()) Die("GetPluginInfo", st);
    });
    v1::VolumeCapability cap;
    cap.mutable_block();
    cap.mutable_access_mode()->set_mode(v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
    std::string volume_id;
    Time(s, "create", "csi", [&] {
      v1::CreateVolumeRequest req;
      req.set_name("bench-csi-" + std::to_string(i));
      *req.add_volume_capabilities() = cap;
      req.mutable_capacity_range()->set_required_bytes(static_cast<int64_t>(size_bytes_));
      grpc::ClientContext ctx;
      SetDeadline(&ctx);
      v1::CreateVolumeResponse r;
      auto st = controller_->CreateVolume(&ctx, req, &r);
      if (!st.ok()) Die("CreateVolume", st);
      volume_id = r.volume().volume_id();
    });
    Time(s, "publish", "csi", [&] {
      v1::ControllerPublishVolumeRequest req;
      req.set_volume_id(volume_id);
      req.set_node_id(kNodeId);
      *req.mutable_volume_capability() = cap;
      grpc::ClientContext ctx;
      SetDeadline(&ctx);
      v1::ControllerPublishVolumeResponse r;
      auto st = controller_->ControllerPublishVolume(&ctx, req, &r);
      if (!st.ok()) Die("ControllerPublishVolume", st);
    });
    Time(s, "unpublish", "csi", [&] {
      v1::ControllerUnpublishVolumeRequest req;
      req.set_volume_id(volume_id);
      req.set_node_id(kNodeId);
      grpc::ClientContext ctx;
      SetDeadline(&ctx);
      v1::ControllerUnpublishVolumeResponse r;
      auto st = controller_->ControllerUnpublishVolume(&ctx, req, &r);
      if (!st.ok()) Die("ControllerUnpublishVolume", st);
    });
    Time(s, "delete", "csi", [&] {
      v1::DeleteVolumeRequest req;
      req.set_volume_id(volume_id);
      grpc::ClientContext ctx;
      SetDeadline(&ctx);
      v1::DeleteVolumeResponse r;
      auto st = controller_->DeleteVolume(&ctx, req, &r);
      if (!st.ok()) Die("DeleteVolume", st);
    });
  }

  // The least a driver must do: one device call per operation.
  void DeviceRound(int i, Samples* s) {
    const std::string name = "bench-dev-" + std::to_string(i);
    Time(s, "no-op round trip", "device", [&] { Status(); });
    Time(s, "create", "device", [&] { CreateLun(name); });
    Time(s, "publish", "device", [&] { SetAccess(name, {kNodeIp}); });
    Time(s, "unpublish", "device", [&] { SetAccess(name, {}); });
    Time(s, "delete", "device", [&] { DeleteLun(name); });
  }

  // The device calls strata-csi makes for each CSI call, made from here.
  void DriverSequenceRound(int i, Samples* s) {
    const std::string name = "bench-seq-" + std::to_string(i);
    Time(s, "create", "sequence", [&] {
      GetLun(name, grpc::StatusCode::NOT_FOUND);
      Status();
      CreateLun(name);
    });
    Time(s, "publish", "sequence", [&] {
      GetLun(name, grpc::StatusCode::OK);
      SetAccess(name, {kNodeIp});
    });
    Time(s, "unpublish", "sequence", [&] {
      GetLun(name, grpc::StatusCode::OK);
      SetAccess(name, {});
    });
    Time(s, "delete", "sequence", [&] {
      GetLun(name, grpc::StatusCode::OK);
      DeleteLun(name);
    });
  }

  void Status() {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    sv1::DeviceStatus r;
    auto st = device_->GetDeviceStatus(&ctx, sv1::GetDeviceStatusRequest(), &r);
    if (!st.ok()) Die("GetDeviceStatus", st);
  }
  void GetLun(const std::string& name, grpc::StatusCode expect) {
    sv1::GetLunRequest req;
    req.set_name(name);
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    sv1::Lun r;
    auto st = device_->GetLun(&ctx, req, &r);
    if (st.error_code() != expect) Die("GetLun " + name, st);
  }
  void CreateLun(const std::string& name) {
    sv1::CreateLunRequest req;
    req.set_name(name);
    req.set_size_bytes(size_bytes_);
    req.mutable_access();  // empty: nobody, as strata-csi creates them
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    sv1::Lun r;
    auto st = device_->CreateLun(&ctx, req, &r);
    if (!st.ok()) Die("CreateLun " + name, st);
  }
  void SetAccess(const std::string& name, const std::vector<std::string>& clients) {
    sv1::SetLunAccessRequest req;
    req.set_name(name);
    for (const auto& c : clients) req.mutable_access()->add_allowed_clients(c);
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    sv1::Lun r;
    auto st = device_->SetLunAccess(&ctx, req, &r);
    if (!st.ok()) Die("SetLunAccess " + name, st);
  }
  void DeleteLun(const std::string& name) {
    sv1::DeleteLunRequest req;
    req.set_name(name);
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    sv1::DeleteLunResponse r;
    auto st = device_->DeleteLun(&ctx, req, &r);
    if (!st.ok()) Die("DeleteLun " + name, st);
  }

  std::unique_ptr<v1::Identity::Stub> identity_;
  std::unique_ptr<v1::Controller::Stub> controller_;
  std::unique_ptr<sv1::StorageDevice::Stub> device_;
  const uint64_t size_bytes_;
  Samples samples_;
};

void PrintTable(const Samples& samples) {
  // Rows in the order of a volume's life; columns CSI, the driver's device calls, one call.
  const char* ops[] = {"no-op round trip", "create", "publish", "unpublish", "delete"};
  const char* names[] = {"floor: GetPluginInfo / GetDeviceStatus", "CreateVolume",
                         "ControllerPublishVolume", "ControllerUnpublishVolume", "DeleteVolume"};
  std::printf("%-42s %6s | %-19s | %-19s | %-19s | %s\n", "operation (ms, p50 / p99)", "n",
              "strata-csi", "device, driver's", "device, 1 call", "csi/1-call p50");
  for (size_t k = 0; k < std::size(ops); ++k) {
    const auto& row = samples.at(ops[k]);
    auto cell = [&](const char* column) {
      char buf[64];
      auto it = row.find(column);
      if (it == row.end()) return std::string("-");
      std::snprintf(buf, sizeof buf, "%7.3f / %7.3f", Percentile(it->second, 50),
                    Percentile(it->second, 99));
      return std::string(buf);
    };
    const double ratio = Percentile(row.at("csi"), 50) / Percentile(row.at("device"), 50);
    std::printf("%-42s %6zu | %-19s | %-19s | %-19s | %.2fx\n", names[k], row.at("csi").size(),
                cell("csi").c_str(), cell("sequence").c_str(), cell("device").c_str(), ratio);
  }
}

}  // namespace

int main(int argc, char** argv) {
  strata::IgnoreSigpipe();
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: %s STRATA_STORED STRATA_CSI [--n N] [--dir DIR] [--size BYTES] "
                 "[--csi-log-level LEVEL]\n",
                 argv[0]);
    return 2;
  }
  const std::string stored = argv[1];
  const std::string csi = argv[2];
  int n = 500;
  uint64_t size_bytes = 64ull << 20;
  std::string dir_arg, csi_log_level = "info";
  for (int i = 3; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--n") {
      n = std::atoi(argv[i + 1]);
    } else if (a == "--dir") {
      dir_arg = argv[i + 1];
    } else if (a == "--size") {
      size_bytes = std::strtoull(argv[i + 1], nullptr, 10);
    } else if (a == "--csi-log-level") {
      csi_log_level = argv[i + 1];
    } else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  if (n < 2 || size_bytes == 0 || size_bytes % 4096 != 0) {
    std::fprintf(stderr, "--n must be >= 2 and --size a positive multiple of 4096\n");
    return 2;
  }

  fs::path dir;
  if (dir_arg.empty()) {
    char tmpl[] = "/tmp/strata-bench-csi.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return 1;
    dir = tmpl;
  } else {
    dir = dir_arg;
    fs::create_directories(dir);
  }
  int rc = 0;
  {
    const fs::path ready = dir / "stored.ready";
    Child dev({stored, "--device", "bench-dev", "--tier",
               "ssd=" + (dir / "ssd").string() + ":16GiB", "--portal", "127.0.0.1:0", "--grpc",
               "127.0.0.1:0", "--insecure", "--ready-file", ready.string()},
              (dir / "stored.log").string());
    dev.set_stop_signal(SIGTERM);
    if (!WaitFor([&] { return fs::exists(ready) && fs::file_size(ready) > 0; }, 30, &dev)) {
      std::fprintf(stderr, "strata-stored did not start; see %s/stored.log\n", dir.c_str());
      return 1;
    }
    const std::string grpc_addr = GrpcFromReadyFile(ready);
    const fs::path sock = dir / "csi.sock";
    Child driver({csi, "--endpoint", "unix://" + sock.string(), "--insecure", "--mode",
                  "controller", "--device", "bench-dev=" + grpc_addr, "--log-level", csi_log_level},
                 (dir / "csi.log").string());
    driver.set_stop_signal(SIGTERM);
    // Connect only once the socket exists (an early failed connect backs off for seconds).
    if (!WaitFor([&] { return fs::exists(sock); }, 30, &driver)) {
      std::fprintf(stderr, "strata-csi did not start; see %s/csi.log\n", dir.c_str());
      return 1;
    }
    Bench bench(grpc::CreateChannel("unix://" + sock.string(), grpc::InsecureChannelCredentials()),
                grpc::CreateChannel(grpc_addr, grpc::InsecureChannelCredentials()), size_bytes);
    const int warmup = std::min(20, n / 10 + 1);
    for (int i = 0; i < warmup; ++i) bench.Round(-1 - i, false);
    const auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) bench.Round(i, true);
    const std::chrono::duration<double> wall = Clock::now() - t0;
    std::printf(
        "%d rounds (+%d warm-up), %llu-byte volumes, tier in %s, csi log level %s, %.1f s\n", n,
        warmup, static_cast<unsigned long long>(size_bytes), dir.c_str(), csi_log_level.c_str(),
        wall.count());
    PrintTable(bench.samples());
    rc = driver.Running() && dev.Running() ? 0 : 1;
  }
  if (dir_arg.empty() && rc == 0) fs::remove_all(dir);
  return rc;
}
