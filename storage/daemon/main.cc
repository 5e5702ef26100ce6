// strata-stored: one cloud storage device. Thin main: parse flags, open the
// Device, serve the management API and metrics until SIGINT/SIGTERM.
#include <grpcpp/grpcpp.h>
#include <malloc.h>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "auth/authorizing_service.h"
#include "auth/server_tls.h"
#include "grpc_remote_device.h"
#include "grpc_service.h"
#include "nbd_collector.h"
#include "strata/common/file_util.h"
#include "strata/common/logging.h"
#include "strata/common/net_address.h"
#include "strata/common/process.h"
#include "strata/common/units.h"
#include "strata/device/channel.h"
#include "strata/nbd/server.h"
#include "strata/nbd/server_flags.h"
#include "strata/storage/copy_pacing.h"
#include "strata/storage/copy_priority.h"
#include "strata/storage/device.h"

namespace po = boost::program_options;
using strata::Result;
using strata::Status;
using strata::storage::Device;
using strata::storage::DeviceConfig;

namespace {

struct Flags {
  DeviceConfig device;
  std::string grpc_addr;
  std::string metrics_addr;
  std::string ready_file;
  std::string log_level;
  std::string log_format;
  bool verify_moves = true;
  strata::storage::MoveDataPath move_data_path = strata::storage::MoveDataPath::kAuto;
  strata::storage::CopyPriority copy_priority = strata::storage::CopyPriority::kIdle;
  strata::nbd::NbdServerFlags nbd_flags;
  strata::nbd::NbdServerOptions nbd;
  strata::storage::auth::ServerTls tls;
  // Device-to-device moves: this device's certificate as client certificate, and the CA
  // the target device's server certificate must chain to.
  strata::device::ClientTls peer_tls;
};

// Exit codes: 0 clean stop, 1 runtime failure, 2 bad flags.
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

Result<Flags> ParseFlags(int argc, char** argv, bool* help) {
  Flags f;
  std::vector<std::string> tiers, portals;
  std::string block_size;
  std::string max_pending_free;
  std::string copy_rate_with_clients;
  std::string copy_rate_floor;
  std::string copy_rate_ceiling;
  std::string copy_latency_target;
  std::string dedup;
  std::string verify_moves;
  std::string move_data_path;
  std::string copy_priority;
  std::string peer_ca;
  std::string nbd_tls;
  strata::nbd::NbdTlsOptions tls;
  po::options_description desc(
      "strata-stored: a Strata cloud storage device\n\n"
      "Usage: strata-stored --device NAME --tier CLASS=PATH[:CAPACITY[:PRICE]]... "
      "[--portal ADDR:PORT]... --grpc ADDR:PORT [--metrics ADDR:PORT]\n"
      "       (--tls-cert FILE --tls-key FILE --tls-client-ca FILE [--tls-crl FILE] "
      "[--authz FILE] | --insecure)\n\nOptions");
  desc.add_options()("help,h", "show this help")("device", po::value(&f.device.name)->required(),
                                                 "device name (unique in the cluster)")(
      "tier", po::value(&tiers)->required(),
      "disk group: CLASS=PATH[:CAPACITY[:PRICE]], CLASS one of ssd|sas|sata, PATH a directory "
      "or block device, CAPACITY like 100GiB (default: the file system's size), PRICE per "
      "GiB-hour; repeatable")("portal", po::value(&portals),
                              "NBD portal to listen on, ADDR:PORT; repeatable")(
      "grpc", po::value(&f.grpc_addr)->required(),
      "management API address ADDR:PORT (port 0: any free port)")(
      "metrics", po::value(&f.metrics_addr), "Prometheus metrics address ADDR:PORT")(
      "dedup", po::value(&dedup)->default_value("on"),
      "on: LUNs may ask for inline dedup; off: dedup is off for the whole device")(
      "block-size", po::value(&block_size)->default_value("4KiB"),
      "dedup and allocation unit, 4KiB to 64KiB, a power of two")(
      "max-pending-free", po::value(&max_pending_free)->default_value("64MiB"),
      "blocks replaced by copy-on-write stay allocated until the next flush: flush on our "
      "own once this much waits in a tier (capped at 1/8 of the tier), so overwrites without "
      "flushes fit in the tier; 0: only when the tier runs out")(
      "copy-rate-with-clients", po::value(&copy_rate_with_clients)->default_value("auto"),
      "client I/O first: while this device's NBD clients are busy (a request in flight, or "
      "one in the last 100 ms from a client still connected), device moves in and out copy at most "
      "this much per second, all together: "
      "auto (a rate that follows the clients' latency: see --copy-client-latency-target), "
      "a fixed rate (e.g. 128MiB) or 0 (no cap); an idle device copies at full speed")(
      "copy-client-latency-target",
      po::value(&copy_latency_target)
          ->default_value(strata::storage::kDefaultCopyClientLatencyTarget),
      "--copy-rate-with-clients auto: the clients' p99 request latency (the NBD server's, "
      "per 100 ms) the copies may cause: a factor of their p99 without a copy (e.g. 3x) or "
      "a latency (e.g. 2ms, 500us); the copy rate rises while under it, halves when over")(
      "copy-rate-floor", po::value(&copy_rate_floor)->default_value("32MiB"),
      "--copy-rate-with-clients auto: the lowest rate, so a move always progresses")(
      "copy-rate-ceiling", po::value(&copy_rate_ceiling)->default_value("0"),
      "--copy-rate-with-clients auto: the highest rate while clients are busy; 0: none")(
      "ready-file", po::value(&f.ready_file),
      "write {\"grpc\":\"ADDR:PORT\",\"nbd\":[\"ADDR:PORT\",...],\"metrics\":\"ADDR:PORT\"} "
      "here once serving (the addresses as bound: port 0 picks a free one)")(
      "log-level", po::value(&f.log_level)->default_value("info"),
      "trace|debug|info|warn|error|critical|off")(
      "log-format", po::value(&f.log_format)->default_value("text"), "text|json")(
      "tls-cert", po::value(&f.tls.cert_file),
      "management API server certificate chain, PEM (tls.crt); re-read when it changes")(
      "tls-key", po::value(&f.tls.key_file), "its private key, PEM (tls.key)")(
      "tls-client-ca", po::value(&f.tls.client_ca_file),
      "CA bundle client certificates must chain to, PEM (ca.crt): every caller needs one")(
      "tls-crl", po::value(&f.tls.crl_file),
      "certificate revocation lists, PEM, signed by --tls-client-ca; re-read when it changes "
      "(a revoked certificate is refused from the next call on); other devices' server "
      "certificates are checked against it too when --tls-ca is not given")(
      "authz", po::value(&f.tls.authz_file),
      "access policy JSON: role (admin|device|tenant) and owners per certificate identity (first "
      "URI SAN, else CN); re-read when it changes. Without it every verified client is an admin")(
      "tls-ca", po::value(&peer_ca),
      "CA bundle other devices' server certificates must chain to, for device-to-device moves "
      "(default: --tls-client-ca); the moves present --tls-cert/--tls-key")(
      "insecure", po::bool_switch(&f.tls.insecure),
      "serve the management API (and make device-to-device moves) in plaintext, without "
      "authentication: only on a loopback or otherwise trusted network")(
      "verify-moves", po::value(&verify_moves)->default_value("on"),
      "on: a move to another device compares per-range checksums of the whole LUN from both "
      "devices before it switches (I/O of that LUN paused meanwhile); off: switch unverified")(
      "move-data-path", po::value(&move_data_path)->default_value("auto"),
      "how a move to another device sends the LUN's data: auto (over NBD into a per-move "
      "export of the target's incoming copy when the target offers one, else over gRPC "
      "WriteLunData); grpc (always WriteLunData). Control, verification and the switch stay "
      "on gRPC either way")(
      "copy-priority", po::value(&copy_priority)->default_value("idle"),
      "CPU scheduling of background copies (device moves on both sides, tier moves, dedup "
      "folds) against client I/O: normal; batch (SCHED_BATCH: a copy never preempts a client "
      "request); idle (SCHED_IDLE: client requests, and everything else, always run first; "
      "while the copies move under half of --copy-rate-floor for 500 ms because other work "
      "keeps the CPUs busy, they are raised to batch)")(
      "nbd-tls", po::value(&nbd_tls)->default_value("off"),
      "NBD TLS (NBD_OPT_STARTTLS): off; allow (clients choose); require (nothing but STARTTLS "
      "before TLS: NBD_REP_ERR_TLS_REQD)")(
      "nbd-tls-cert", po::value(&tls.cert_file),
      "NBD TLS server certificate (PEM, chain after the leaf); re-read when it changes")(
      "nbd-tls-key", po::value(&tls.key_file), "NBD TLS server private key (PEM)")(
      "nbd-tls-client-ca", po::value(&tls.client_ca_file),
      "CA certificates (PEM) NBD clients' certificates must chain to; set: client "
      "certificates required, their identities usable in access lists")(
      "nbd-tls-crl", po::value(&tls.crl_file),
      "certificate revocation lists (PEM) for NBD client certificates; re-read when it "
      "changes");
  strata::nbd::AddNbdServerFlags(&desc, &f.nbd_flags);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
    if (vm.count("help")) {
      std::cout << desc << "\n";
      *help = true;
      return f;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    return strata::InvalidArgumentError(std::string(e.what()) + " (see --help)");
  }
  for (const std::string& t : tiers) {
    STRATA_ASSIGN_OR_RETURN(auto tier, strata::storage::ParseTierFlag(t));
    f.device.tiers.push_back(std::move(tier));
  }
  for (const std::string& p : portals) {
    STRATA_ASSIGN_OR_RETURN(auto hp, strata::ParseHostPort(p, "--portal", true));
    f.device.portals.push_back(std::move(hp));
  }
  auto bs = strata::ParseSize(block_size);
  if (!bs.ok()) return bs.status().WithContext("--block-size");
  if (*bs < 4096 || *bs > 65536 || (*bs & (*bs - 1)) != 0) {
    return strata::InvalidArgumentError("--block-size: '" + block_size +
                                        "' is not a power of two from 4KiB to 64KiB");
  }
  f.device.block_size = static_cast<uint32_t>(*bs);
  auto pending = strata::ParseSize(max_pending_free);
  if (!pending.ok()) return pending.status().WithContext("--max-pending-free");
  f.device.max_pending_free_bytes = *pending;
  STRATA_ASSIGN_OR_RETURN(f.device.copy_pacing,
                          strata::storage::ParseCopyPacing(copy_rate_with_clients, copy_rate_floor,
                                                           copy_rate_ceiling, copy_latency_target));
  if (dedup != "on" && dedup != "off") {
    return strata::InvalidArgumentError("--dedup: '" + dedup + "' is not one of on, off");
  }
  f.device.dedup_enabled = dedup == "on";
  if (verify_moves != "on" && verify_moves != "off") {
    return strata::InvalidArgumentError("--verify-moves: '" + verify_moves +
                                        "' is not one of on, off");
  }
  f.verify_moves = verify_moves == "on";
  STRATA_ASSIGN_OR_RETURN(f.move_data_path,
                          strata::storage::ParseMoveDataPath(move_data_path, "--move-data-path"));
  STRATA_ASSIGN_OR_RETURN(f.copy_priority,
                          strata::storage::ParseCopyPriority(copy_priority, "--copy-priority"));
  STRATA_RETURN_IF_ERROR(strata::ParseHostPort(f.grpc_addr, "--grpc", true).status());
  if (!f.metrics_addr.empty()) {
    STRATA_RETURN_IF_ERROR(strata::ParseHostPort(f.metrics_addr, "--metrics", true).status());
  }
  STRATA_ASSIGN_OR_RETURN(f.nbd, strata::nbd::NbdServerOptionsFromFlags(f.nbd_flags));
  STRATA_ASSIGN_OR_RETURN(f.tls, strata::storage::auth::ServerTlsFromFlags(f.tls));
  if (f.tls.insecure) {
    if (!peer_ca.empty())
      return strata::InvalidArgumentError("--tls-ca: needs TLS, not --insecure");
    f.peer_tls.insecure = true;
  } else {
    // Peers' server certificates are checked against --tls-crl when they chain to the same CA
    // as clients' (no --tls-ca of its own): the CRL is signed by that CA.
    STRATA_ASSIGN_OR_RETURN(
        f.peer_tls,
        strata::device::ClientTlsFromFlags(
            f.tls.cert_file, f.tls.key_file, peer_ca.empty() ? f.tls.client_ca_file : peer_ca,
            /*insecure=*/false, peer_ca.empty() ? f.tls.crl_file : std::string()));
  }
  STRATA_ASSIGN_OR_RETURN(tls.mode, strata::nbd::ParseNbdTlsMode(nbd_tls, "--nbd-tls"));
  if (tls.mode == strata::nbd::NbdTlsMode::kOff &&
      !(tls.cert_file.empty() && tls.key_file.empty() && tls.client_ca_file.empty() &&
        tls.crl_file.empty())) {
    return strata::InvalidArgumentError(
        "--nbd-tls-*: TLS files given but --nbd-tls is off (set --nbd-tls allow or require)");
  }
  f.nbd.tls = tls;
  STRATA_RETURN_IF_ERROR(strata::storage::ValidateDeviceConfig(f.device));
  return f;
}

// Builds the metric families from a fresh Device::Status() at every scrape, so the
// exported values can never drift from what the management API reports.
class DeviceCollector final : public prometheus::Collectable {
 public:
  explicit DeviceCollector(Device* device) : device_(device) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    auto st = device_->Status();
    prometheus::MetricFamily cap{"strata_tier_capacity_bytes",
                                 "Capacity of a disk group",
                                 prometheus::MetricType::Gauge,
                                 {}};
    prometheus::MetricFamily used{
        "strata_tier_used_bytes", "Bytes used in a disk group", prometheus::MetricType::Gauge, {}};
    prometheus::MetricFamily healthy{"strata_tier_healthy",
                                     "1 when the disk group is healthy",
                                     prometheus::MetricType::Gauge,
                                     {}};
    for (const auto& t : st.tiers) {
      std::string cls(strata::storage::TierClassName(t.config.tier_class));
      auto add = [&](prometheus::MetricFamily& fam, double v) {
        prometheus::ClientMetric m;
        m.label = {{"device", st.name}, {"tier", cls}};
        m.gauge.value = v;
        fam.metric.push_back(std::move(m));
      };
      add(cap, static_cast<double>(t.capacity_bytes));
      add(used, static_cast<double>(t.used_bytes));
      add(healthy, t.healthy ? 1 : 0);
    }
    auto gauge = [](const std::string& name, const std::string& help) {
      return prometheus::MetricFamily{name, help, prometheus::MetricType::Gauge, {}};
    };
    auto counter = [](const std::string& name, const std::string& help) {
      return prometheus::MetricFamily{name, help, prometheus::MetricType::Counter, {}};
    };
    auto logical = gauge("strata_lun_logical_bytes", "Bytes mapped in a LUN");
    auto unique =
        gauge("strata_lun_unique_bytes", "Physical bytes a LUN costs (shared blocks split)");
    auto ops = counter("strata_lun_io_ops_total", "I/O requests served, by kind");
    auto bytes = counter("strata_lun_io_bytes_total", "Bytes moved, by kind");
    auto errors = counter("strata_lun_io_errors_total", "Failed I/O requests, by kind");
    static const char* kKinds[] = {"read", "write", "flush", "trim", "write_zeroes"};
    for (const auto& lun : device_->engine()->ListLuns()) {
      auto add = [&](prometheus::MetricFamily& fam, double v, const char* kind, bool is_counter) {
        prometheus::ClientMetric m;
        m.label = {{"device", st.name}, {"lun", lun.name}, {"owner", lun.owner}};
        if (kind) m.label.push_back({"kind", kind});
        if (is_counter) {
          m.counter.value = v;
        } else {
          m.gauge.value = v;
        }
        fam.metric.push_back(std::move(m));
      };
      add(logical, static_cast<double>(lun.space.logical_bytes), nullptr, false);
      add(unique, static_cast<double>(lun.space.unique_bytes), nullptr, false);
      auto io = device_->engine()->IoStats(lun.name);
      if (!io.ok()) continue;
      for (int k = 0; k < strata::storage::kIoKinds; ++k) {
        add(ops, static_cast<double>(io->kinds[k].ops), kKinds[k], true);
        add(bytes, static_cast<double>(io->kinds[k].bytes), kKinds[k], true);
        add(errors, static_cast<double>(io->kinds[k].errors), kKinds[k], true);
      }
    }
    auto ratio = gauge("strata_device_dedup_ratio", "Logical bytes over unique bytes");
    prometheus::ClientMetric rm;
    rm.label = {{"device", st.name}};
    rm.gauge.value = st.space.ratio();
    ratio.metric.push_back(std::move(rm));
    prometheus::MetricFamily up{
        "strata_device_uptime_seconds", "Seconds since start", prometheus::MetricType::Gauge, {}};
    prometheus::ClientMetric m;
    m.label = {{"device", st.name}};
    m.gauge.value = static_cast<double>(st.uptime_seconds);
    up.metric.push_back(std::move(m));
    // The copy starvation guard (--copy-priority idle): how often other work kept the
    // copies from moving, and whether it holds them raised now.
    auto raises = counter("strata_copy_starvation_raises_total",
                          "Times copies at SCHED_IDLE starved and were raised to SCHED_BATCH");
    prometheus::ClientMetric rc;
    rc.label = {{"device", st.name}};
    rc.counter.value = static_cast<double>(strata::storage::CopyStarvationRaises());
    raises.metric.push_back(std::move(rc));
    auto raised = gauge("strata_copy_threads_raised",
                        "1 while the starvation guard holds the copy threads at SCHED_BATCH");
    prometheus::ClientMetric rd;
    rd.label = {{"device", st.name}};
    rd.gauge.value = strata::storage::CopyThreadsRaised() ? 1 : 0;
    raised.metric.push_back(std::move(rd));
    // The copy pacing (--copy-rate-with-clients): how long it held copies back for busy
    // clients.
    auto paced = counter("strata_copy_paced_seconds_total",
                         "Seconds the copy pacing held background copies back for busy clients");
    prometheus::ClientMetric pm;
    pm.label = {{"device", st.name}};
    pm.counter.value = std::chrono::duration<double>(device_->engine()->CopyPacedTime()).count();
    paced.metric.push_back(std::move(pm));
    return {cap,   used,   healthy, up,     logical, unique, ops,
            bytes, errors, ratio,   raises, raised,  paced};
  }

 private:
  Device* const device_;
};

// A move's target receives its messages (up to 1 MiB each, over several streams) into
// buffers gRPC allocates and frees per read. With glibc's defaults those come from
// fresh mmaps or a heap trimmed back to the OS as soon as they are freed, so the
// kernel's receive copy faults in new pages all along: 60-100k page faults and ~20 % of
// the target's CPU per 512 MiB moved (docs/benchmarks.md, "Target-side hashing and
// vectored stores"). Keeping up to 64 MiB of freed heap (and allocations up to 8 MiB
// in the heap) makes them reuse warm pages. GLIBC_TUNABLES' malloc settings, when
// given, are left as they are.
void TuneMallocForReceiveBuffers() {
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables && std::strstr(tunables, "glibc.malloc.")) return;
  mallopt(M_MMAP_THRESHOLD, 8 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_TOP_PAD, 16 << 20);
}

int Run(int argc, char** argv) {
  TuneMallocForReceiveBuffers();
  bool help = false;
  auto flags = ParseFlags(argc, argv, &help);
  if (!flags.ok()) {
    std::fprintf(stderr, "strata-stored: %s\n", flags.status().message().c_str());
    return kExitUsage;
  }
  if (help) return 0;
  if (Status s = strata::InitLogging(flags->log_level, flags->log_format); !s.ok()) {
    std::fprintf(stderr, "strata-stored: %s\n", s.message().c_str());
    return kExitUsage;
  }

  strata::IgnoreSigpipe();
  // Block the stop signals in every thread; the main thread takes them with sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::unique_ptr<strata::storage::auth::Authorizer> authorizer;
  if (!flags->tls.insecure) {
    auto a = strata::storage::auth::NewAuthorizer(flags->tls);
    if (!a.ok()) {
      std::fprintf(stderr, "strata-stored: %s\n", a.status().message().c_str());
      return kExitUsage;
    }
    authorizer = std::move(*a);
  }
  strata::device::SetClientTls(flags->peer_tls);
  strata::storage::SetCopyPriority(flags->copy_priority);
  {
    // A copy held at the fixed --copy-rate-with-clients under the floor is not starved.
    const auto& pacing = flags->device.copy_pacing;
    strata::storage::CopyStarvationGuardOptions guard;
    guard.floor_bytes_per_second = pacing.floor_bytes_per_second;
    if (pacing.mode == strata::storage::CopyPacing::Mode::kFixed) {
      guard.floor_bytes_per_second =
          std::min(guard.floor_bytes_per_second, pacing.fixed_bytes_per_second);
    }
    strata::storage::StartCopyStarvationGuard(guard);
  }
  // Stopped on every way out of main (its thread must not outlive the loggers).
  struct StopStarvationGuard {
    ~StopStarvationGuard() { strata::storage::StopCopyStarvationGuard(); }
  } stop_starvation_guard;

  flags->device.remote_volume_factory = strata::storage::OpenGrpcRemoteVolume;
  auto device = Device::Open(strata::Env::Default(), flags->device);
  if (!device.ok()) {
    spdlog::critical("cannot open device: {}", device.status().ToString());
    return kExitFailure;
  }

  strata::storage::StorageDeviceService service(device->get(), STRATA_VERSION, flags->verify_moves);
  service.SetMoveDataPath(flags->move_data_path);
  // The NBD server serves the engine's LUNs and the per-move exports of incoming copies.
  strata::storage::MoveExportCatalog catalog((*device)->engine());
  if (!flags->device.portals.empty()) {
    service.SetMoveExports(&catalog, flags->nbd.tls.mode == strata::nbd::NbdTlsMode::kRequire);
  }
  // With TLS every call goes through the caller's grant first (auth/authorizing_service.h).
  std::unique_ptr<strata::storage::auth::AuthorizingService> authorizing;
  if (authorizer) {
    authorizing = std::make_unique<strata::storage::auth::AuthorizingService>(
        &service, device->get(), authorizer.get());
  }
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  builder.AddListeningPort(flags->grpc_addr,
                           strata::storage::auth::NewServerCredentials(flags->tls), &grpc_port);
  if (authorizing) {
    builder.RegisterService(authorizing.get());
  } else {
    spdlog::warn("--insecure: the management API on {} is plaintext and unauthenticated",
                 flags->grpc_addr);
    builder.RegisterService(&service);
  }
  // gRPC's threads (its pollers receive and send a move's messages with
  // --move-data-path grpc, its handlers store them) inherit the copy priority from this
  // thread, at most batch: they answer management calls too, which SCHED_IDLE would
  // leave waiting on a busy host. The NBD server's threads, started after it is back to
  // normal, keep the normal priority.
  std::unique_ptr<grpc::Server> server;
  {
    strata::storage::CopyThreadScope copy(/*idle_as_batch=*/true);
    server = builder.BuildAndStart();
  }
  if (!server || grpc_port == 0) {
    spdlog::critical("cannot listen on --grpc {}", flags->grpc_addr);
    return kExitFailure;
  }
  auto grpc_hp = *strata::ParseHostPort(flags->grpc_addr, "--grpc", true);
  grpc_hp.port = static_cast<uint16_t>(grpc_port);

  std::unique_ptr<prometheus::Exposer> exposer;
  auto collector = std::make_shared<DeviceCollector>(device->get());
  if (!flags->metrics_addr.empty()) {
    try {
      exposer = std::make_unique<prometheus::Exposer>(flags->metrics_addr);
    } catch (const std::exception& e) {
      spdlog::critical("cannot listen on --metrics {}: {}", flags->metrics_addr, e.what());
      server->Shutdown();
      return kExitFailure;
    }
    exposer->RegisterCollectable(collector);
  }
  // The metrics address as bound (port 0 asks for a free one), for the ready file.
  std::string metrics_json;
  if (exposer) {
    auto metrics_hp = *strata::ParseHostPort(flags->metrics_addr, "--metrics", true);
    auto ports = exposer->GetListeningPorts();
    if (!ports.empty()) metrics_hp.port = static_cast<uint16_t>(ports.front());
    metrics_json = ",\"metrics\":\"" + metrics_hp.ToString() + "\"";
  }

  // NBD portals: every LUN is an export, served on every portal (multipath).
  std::unique_ptr<strata::nbd::NbdServer> nbd;
  std::string nbd_json = "[";
  if (!flags->device.portals.empty()) {
    auto srv = strata::nbd::NbdServer::Start(&catalog, flags->device.portals, flags->nbd);
    if (!srv.ok()) {
      spdlog::critical("cannot serve NBD: {}", srv.status().ToString());
      server->Shutdown();
      return kExitFailure;
    }
    nbd = std::move(*srv);
    (*device)->SetPortals(nbd->bound_portals());
    for (const auto& p : nbd->bound_portals()) {
      nbd_json += (nbd_json.size() > 1 ? ",\"" : "\"") + p.ToString() + "\"";
    }
  }
  std::shared_ptr<strata::storage::NbdCollector> nbd_collector;
  if (exposer && nbd) {
    nbd_collector = std::make_shared<strata::storage::NbdCollector>(nbd.get(), flags->device.name);
    exposer->RegisterCollectable(nbd_collector);
  }
  nbd_json += "]";

  spdlog::info("device {} ({}) serving management API on {} ({}), NBD on {}", flags->device.name,
               (*device)->device_id(), grpc_hp.ToString(),
               flags->tls.insecure ? "plaintext" : "mutual TLS", nbd_json);
  if (!flags->ready_file.empty()) {
    Status s = strata::WriteFileAtomically(
        flags->ready_file,
        "{\"grpc\":\"" + grpc_hp.ToString() + "\",\"nbd\":" + nbd_json + metrics_json + "}\n");
    if (!s.ok()) {
      spdlog::critical("--ready-file: {}", s.ToString());
      server->Shutdown();
      return kExitFailure;
    }
  }

  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("signal {}: stopping", sig);
  if (nbd_collector) exposer->RemoveCollectable(nbd_collector);
  if (nbd) nbd->Stop();
  server->Shutdown();
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
