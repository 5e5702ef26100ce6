// strata-csi: the Strata CSI driver (csi.v1). Thin main: parse flags, build the
// device clients, serve Identity (+ Controller) on a unix socket until SIGINT/SIGTERM.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "controller_server.h"
#include "identity_server.h"
#include "nbd_tls_client.h"
#include "node_server.h"
#include "strata/common/logging.h"
#include "strata/common/net_address.h"
#include "strata/common/process.h"
#include "strata/csi/device_client.h"
#include "strata/csi/device_registry.h"
#include "strata/device/channel.h"
#ifdef STRATA_CSI_CLUSTER
#include "cluster_devices.h"
#include "strata/common/env.h"
#include "strata/kube/config.h"
#include "strata/kube/http_client.h"
#endif

namespace po = boost::program_options;
using strata::Result;
using strata::Status;

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr std::chrono::milliseconds kDeviceCallTimeout{10000};

struct DeviceFlag {
  std::string name;
  std::string address;
};

struct Flags {
  std::string endpoint;
  std::string socket_path;
  std::string mode;
  std::string node_id;
  std::vector<DeviceFlag> devices;
  std::map<std::string, std::string> zones;  // device name -> zone
  std::string zone;                          // this node's zone
  std::string state_dir;
  std::string dm_prefix;
  int64_t max_volumes = 0;
  int64_t path_check_ms = 0;
  int64_t no_path_queue_s = 60;
  std::string log_level;
  std::string log_format;
  bool devices_from_cluster = false;
  std::string kubeconfig;
  std::string kube_context;
  std::string devices_selector;
  // How this plugin reaches strata-stored's management API (--tls-* or --insecure).
  std::string tls_cert, tls_key, tls_ca, tls_crl;
  bool insecure = false;
  strata::device::ClientTls device_tls;
  // The node's NBD data path (--nbd-tls*).
  std::string nbd_tls_mode;
  strata::csi::NbdClientTls nbd_tls;
};

Result<Flags> ParseFlags(int argc, char** argv, bool* help) {
  Flags f;
  std::vector<std::string> devices, device_zones;
  po::options_description desc(
      "strata-csi: the Strata CSI driver (" + std::string(strata::csi::kDriverName) +
      ")\n\nUsage: strata-csi --endpoint unix:///PATH --mode controller --device NAME=HOST:PORT..."
      "\n\nOptions");
  desc.add_options()("help,h", "show this help")("endpoint", po::value(&f.endpoint)->required(),
                                                 "CSI endpoint, unix:///PATH")(
      "mode", po::value(&f.mode)->default_value("controller"), "controller|node|all")(
      "node-id", po::value(&f.node_id),
      "this node's id, NAME@IP: the IP its NBD connections come from, which "
      "ControllerPublishVolume puts on the LUN's access list (node and all modes)")(
      "device", po::value(&devices),
      "a strata-stored device the controller manages: NAME=HOST:PORT (its --grpc address); "
      "repeatable")("device-topology", po::value(&device_zones),
                    "NAME=ZONE: the zone of a --device (topology key "
                    "topology.block.csi.strata.io/zone); repeatable")(
      "zone", po::value(&f.zone), "this node's zone (node and all modes)")(
      "devices-from-cluster", po::bool_switch(&f.devices_from_cluster),
      "also manage the devices of the cluster's StorageDevice objects (strata.io): name = "
      "object name, address = spec.endpoint, zone = label topology.kubernetes.io/zone (else "
      "spec.region); none in Maintenance or Offline gets new volumes (controller mode)")(
      "kubeconfig", po::value(&f.kubeconfig),
      "kubeconfig for --devices-from-cluster (default: the pod's service account)")(
      "context", po::value(&f.kube_context), "kubeconfig context (default: current-context)")(
      "devices-selector", po::value(&f.devices_selector),
      "label selector for --devices-from-cluster (default: every StorageDevice)")(
      "state-dir", po::value(&f.state_dir)->default_value("/var/lib/strata-csi/node"),
      "where the node remembers the volumes it staged (node and all modes)")(
      "dm-prefix", po::value(&f.dm_prefix)->default_value("strata-"),
      "prefix of the dm-multipath device names (PREFIX<wwn>)")(
      "max-volumes", po::value(&f.max_volumes)->default_value(0),
      "NodeGetInfo max_volumes_per_node (0: no limit)")(
      "path-check-interval-ms", po::value(&f.path_check_ms)->default_value(2000),
      "how often the path checker probes every path of every staged volume (0: never)")(
      "no-path-queue-seconds", po::value(&f.no_path_queue_s)->default_value(60),
      "how long I/O to a volume with no path left is queued before it fails")(
      "log-level", po::value(&f.log_level)->default_value("info"),
      "trace|debug|info|warn|error|critical|off")(
      "log-format", po::value(&f.log_format)->default_value("text"), "text|json")(
      "tls-cert", po::value(&f.tls_cert),
      "client certificate for strata-stored's management API, PEM (tls.crt); re-read on change")(
      "tls-key", po::value(&f.tls_key), "its private key, PEM (tls.key)")(
      "tls-ca", po::value(&f.tls_ca),
      "CA bundle the devices' server certificates must chain to, PEM (ca.crt)")(
      "tls-crl", po::value(&f.tls_crl),
      "revocation lists (PEM, signed by a CA of --tls-ca) every device's server certificate is "
      "checked against at each connection; re-read on change")(
      "insecure", po::bool_switch(&f.insecure),
      "plaintext to the devices (devices started with --insecure); every mode needs this or "
      "--tls-*")(
      "nbd-tls", po::value(&f.nbd_tls_mode)->default_value("off"),
      "off|require: the NBD data path of node mode. require: every path does NBD_OPT_STARTTLS "
      "and TLS 1.2 (AES-GCM) with --nbd-tls-cert, then kernel TLS carries the kernel nbd "
      "device's I/O; never plaintext. off: plaintext (a device started with --nbd-tls "
      "require then fails NodeStageVolume with FAILED_PRECONDITION)")(
      "nbd-tls-cert", po::value(&f.nbd_tls.cert_file),
      "the node's NBD client certificate, PEM (tls.crt); re-read at every dial")(
      "nbd-tls-key", po::value(&f.nbd_tls.key_file), "its private key, PEM (tls.key)")(
      "nbd-tls-ca", po::value(&f.nbd_tls.ca_file),
      "CA bundle the devices' NBD certificates must chain to, PEM (ca.crt); the portal's IP or "
      "host name must be in the device certificate's subjectAltName")(
      "nbd-tls-crl", po::value(&f.nbd_tls.crl_file),
      "CRL of that CA, PEM (optional): a revoked device certificate is refused");
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
  constexpr std::string_view kUnix = "unix://";
  if (f.endpoint.rfind(kUnix, 0) != 0 || f.endpoint.size() <= kUnix.size() ||
      f.endpoint[kUnix.size()] != '/') {
    return strata::InvalidArgumentError("--endpoint: '" + f.endpoint +
                                        "' is not unix:///ABSOLUTE/PATH");
  }
  f.socket_path = f.endpoint.substr(kUnix.size());
  if (f.mode != "controller" && f.mode != "node" && f.mode != "all") {
    return strata::InvalidArgumentError("--mode: '" + f.mode +
                                        "' is not one of controller, node, all");
  }
  const bool controller = f.mode != "node";
  if (f.max_volumes < 0) return strata::InvalidArgumentError("--max-volumes: must be >= 0");
  if (f.no_path_queue_s < 0) {
    return strata::InvalidArgumentError("--no-path-queue-seconds: must be >= 0");
  }
  if (f.path_check_ms < 0) {
    return strata::InvalidArgumentError("--path-check-interval-ms: must be >= 0");
  }
  if (f.dm_prefix.empty() || f.dm_prefix.find('/') != std::string::npos) {
    return strata::InvalidArgumentError("--dm-prefix: must be non-empty and without '/'");
  }
  if (f.nbd_tls_mode != "off" && f.nbd_tls_mode != "require") {
    return strata::InvalidArgumentError("--nbd-tls: '" + f.nbd_tls_mode +
                                        "' is not one of off, require");
  }
  f.nbd_tls.require = f.nbd_tls_mode == "require";
  if (f.nbd_tls.require) {
    if (f.mode == "controller") {
      return strata::InvalidArgumentError(
          "--nbd-tls: require is for node and all modes (the controller has no NBD path)");
    }
    // The files load now, so a typo fails at start and not at the first stage.
    STRATA_RETURN_IF_ERROR(strata::csi::CheckNbdClientTls(f.nbd_tls));
  } else if (!f.nbd_tls.cert_file.empty() || !f.nbd_tls.key_file.empty() ||
             !f.nbd_tls.ca_file.empty() || !f.nbd_tls.crl_file.empty()) {
    return strata::InvalidArgumentError(
        "--nbd-tls-cert/-key/-ca/-crl: given with --nbd-tls=off (say --nbd-tls=require)");
  }
  if (f.mode != "controller") {
    if (!strata::csi::ParseNodeId(f.node_id).ok()) {
      return strata::InvalidArgumentError("--node-id: '" + f.node_id +
                                          "' is not NAME@IP (the IP the node's NBD traffic "
                                          "comes from)");
    }
  }
  std::set<std::string> names;
  for (const std::string& d : devices) {
    auto eq = d.find('=');
    if (eq == std::string::npos || eq == 0) {
      return strata::InvalidArgumentError("--device: '" + d + "' is not NAME=HOST:PORT");
    }
    DeviceFlag df{d.substr(0, eq), d.substr(eq + 1)};
    if (df.name.find('/') != std::string::npos) {
      return strata::InvalidArgumentError("--device: name '" + df.name + "' contains '/'");
    }
    STRATA_RETURN_IF_ERROR(strata::ParseHostPort(df.address, "--device " + df.name).status());
    if (!names.insert(df.name).second) {
      return strata::InvalidArgumentError("--device: '" + df.name + "' given twice");
    }
    f.devices.push_back(std::move(df));
  }
  for (const std::string& z : device_zones) {
    auto eq = z.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == z.size()) {
      return strata::InvalidArgumentError("--device-topology: '" + z + "' is not NAME=ZONE");
    }
    if (!names.count(z.substr(0, eq))) {
      return strata::InvalidArgumentError("--device-topology: '" + z.substr(0, eq) +
                                          "' is not a --device");
    }
    f.zones[z.substr(0, eq)] = z.substr(eq + 1);
  }
  if (controller && f.devices.empty() && !f.devices_from_cluster) {
    return strata::InvalidArgumentError(
        "--device: at least one is required in controller mode (or --devices-from-cluster)");
  }
#ifndef STRATA_CSI_CLUSTER
  if (f.devices_from_cluster) {
    return strata::InvalidArgumentError("--devices-from-cluster: not built in (no libs/kube)");
  }
#endif
  // Checked last so every other flag's error comes first. Every mode dials the devices (node
  // mode's path checker reads the LUNs it stages to follow moves): TLS or --insecure, chosen.
  STRATA_ASSIGN_OR_RETURN(
      f.device_tls,
      strata::device::ClientTlsFromFlags(f.tls_cert, f.tls_key, f.tls_ca, f.insecure, f.tls_crl));
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  // Block the stop signals before any thread exists (so every thread inherits the
  // mask); the main thread takes them with sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  strata::IgnoreSigpipe();

  bool help = false;
  auto flags = ParseFlags(argc, argv, &help);
  if (help) return 0;
  if (!flags.ok()) {
    std::cerr << "strata-csi: " << flags.status().message() << "\n";
    return kExitUsage;
  }
  if (Status s = strata::InitLogging(flags->log_level, flags->log_format); !s.ok()) {
    std::cerr << "strata-csi: " << s.message() << "\n";
    return kExitUsage;
  }
  strata::device::SetClientTls(flags->device_tls);

  const bool serve_controller = flags->mode != "node";
  const bool serve_node = flags->mode != "controller";
  auto devices = std::make_shared<strata::csi::DeviceSet>();
  if (serve_controller) {
    for (const auto& d : flags->devices) {
      auto z = flags->zones.find(d.name);
      strata::csi::DeviceInfo info{
          strata::csi::MakeGrpcDeviceClient(d.name, d.address, kDeviceCallTimeout),
          z == flags->zones.end() ? "" : z->second, "", ""};
      if (Status s = devices->AddFixed(std::move(info)); !s.ok()) {
        std::cerr << "strata-csi: --device: " << s.message() << "\n";
        return kExitUsage;
      }
    }
  }
#ifdef STRATA_CSI_CLUSTER
  std::unique_ptr<strata::kube::ApiClient> kube_client;
  std::unique_ptr<strata::csi::ClusterDeviceWatcher> watcher;
  if (serve_controller && flags->devices_from_cluster) {
    auto config = flags->kubeconfig.empty()
                      ? strata::kube::LoadInClusterConfig(strata::Env::Default())
                      : strata::kube::LoadKubeconfig(strata::Env::Default(), flags->kubeconfig,
                                                     flags->kube_context);
    if (!config.ok()) {
      spdlog::critical("--devices-from-cluster: {}", config.status().message());
      return kExitFailure;
    }
    auto client = strata::kube::NewHttpApiClient(*config, strata::Env::Default());
    if (!client.ok()) {
      spdlog::critical("--devices-from-cluster: {}", client.status().message());
      return kExitFailure;
    }
    kube_client = std::move(*client);
    strata::kube::Informer::Options informer_options;
    informer_options.label_selector = flags->devices_selector;
    watcher = std::make_unique<strata::csi::ClusterDeviceWatcher>(kube_client.get(), devices.get(),
                                                                  informer_options);
    watcher->Start();
    // Serve anyway when the apiserver is slow: Probe says not ready while no device answers.
    if (!watcher->WaitForSync(std::chrono::seconds(30))) {
      spdlog::warn("--devices-from-cluster: StorageDevice objects not listed yet; serving");
    }
  }
#endif
  // Zones come from --device-topology or the StorageDevice objects.
  const bool topology =
      (serve_controller && (!flags->zones.empty() || flags->devices_from_cluster)) ||
      (serve_node && !flags->zone.empty());
  strata::csi::IdentityServer identity(STRATA_VERSION, serve_controller, topology, devices);
  strata::csi::ControllerServer controller(devices);
  strata::csi::NodeOptions node_options;
  node_options.node_id = flags->node_id;
  node_options.zone = flags->zone;
  if (serve_node) node_options.state_dir = flags->state_dir;
  node_options.dm_prefix = flags->dm_prefix;
  node_options.max_volumes = flags->max_volumes;
  node_options.no_path_queue = std::chrono::seconds(flags->no_path_queue_s);
  node_options.nbd_tls = flags->nbd_tls;
  strata::csi::NodeServer node(node_options);
  if (serve_node && flags->path_check_ms > 0) {
    node.StartPathChecker(std::chrono::milliseconds(flags->path_check_ms));
  }

  // A socket left by a previous run would make the bind fail.
  if (unlink(flags->socket_path.c_str()) != 0 && errno != ENOENT) {
    spdlog::critical("--endpoint: cannot remove stale {}: {}", flags->socket_path,
                     std::strerror(errno));
    return kExitFailure;
  }
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix://" + flags->socket_path, grpc::InsecureServerCredentials());
  builder.RegisterService(&identity);
  if (serve_controller) builder.RegisterService(&controller);
  if (serve_node) builder.RegisterService(&node);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    spdlog::critical("--endpoint: cannot listen on {}", flags->endpoint);
    return kExitFailure;
  }
  spdlog::info("strata-csi {} serving {} (mode {}, {} device(s), nbd tls {})", STRATA_VERSION,
               flags->endpoint, flags->mode, devices->Devices().size(), flags->nbd_tls_mode);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("signal {}: stopping", sig);
  // In-flight calls get a short grace period; the CO retries what was cut off.
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  unlink(flags->socket_path.c_str());
#ifdef STRATA_CSI_CLUSTER
  if (watcher) watcher->Stop();
#endif
  return 0;
}
