// strata-operator: flags and wiring only. See docs/architecture.md.
#include <malloc.h>
#include <prometheus/exposer.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <iostream>
#include <thread>

#include "strata/common/env.h"
#include "strata/common/logging.h"
#include "strata/common/process.h"
#include "strata/controller/health_server.h"
#include "strata/controller/manager.h"
#include "strata/controller/metrics.h"
#include "strata/device/channel.h"
#include "strata/device/client.h"
#include "strata/kube/config.h"
#include "strata/kube/events.h"
#include "strata/kube/http_client.h"
#include "strata/kube/informer.h"
#include "strata/kube/labels.h"
#include "strata/operator/dedup_policy_reconciler.h"
#include "strata/operator/device_client.h"
#include "strata/operator/maintenance_window_reconciler.h"
#include "strata/operator/move_watcher.h"
#include "strata/operator/storage_device_reconciler.h"
#include "strata/operator/tiering_policy_reconciler.h"
#include "strata/operator/usage_ledger.h"
#include "strata/operator/volume_inventory.h"

namespace po = boost::program_options;
using namespace strata;

namespace {

struct Flags {
  std::string kubeconfig;
  std::string context;
  bool leader_elect = false;
  std::string lease_namespace;
  std::string lease_name = "strata-operator";
  std::string identity;
  double lease_duration = 15, renew_deadline = 10, retry_period = 2;
  std::string metrics_addr = ":8080";
  std::string health_addr = ":8081";
  std::string watch_namespace;
  std::string label_selector;
  std::string log_level = "info";
  std::string log_format = "text";
  double device_resync = 5;
  double device_timeout = 2;
  double volume_resync = 5;
  double window_poll = 2;
  double usage_interval = 30;
  int workers = 2;
  double kube_qps = 20;
  int kube_burst = 30;
  // strata-stored's management API: --tls-cert/--tls-key/--tls-ca, or --insecure.
  std::string tls_cert, tls_key, tls_ca, tls_crl;
  bool insecure = false;
  device::ClientTls device_tls;
};

// 0 ok, 2 usage error (printed), -1 --help (printed).
int ParseFlags(int argc, char** argv, Flags* f) {
  po::options_description desc(
      "usage: strata-operator [--kubeconfig PATH] [--leader-elect] [options]\n"
      "In a pod, with no --kubeconfig, it uses the service account.\n\nOptions");
  desc.add_options()("help,h", "show this help")("kubeconfig", po::value(&f->kubeconfig),
                                                 "kubeconfig file (out of cluster)")(
      "context", po::value(&f->context), "kubeconfig context (default: current-context)")(
      "leader-elect", po::bool_switch(&f->leader_elect),
      "run the controllers only while holding the leader Lease")(
      "leader-elect-namespace", po::value(&f->lease_namespace),
      "namespace of the Lease (default: the pod's or the kubeconfig context's)")(
      "leader-elect-name", po::value(&f->lease_name)->default_value(f->lease_name), "Lease name")(
      "leader-elect-identity", po::value(&f->identity),
      "this candidate's identity (default HOST_PID)")(
      "leader-elect-lease-duration", po::value(&f->lease_duration)->default_value(15), "seconds")(
      "leader-elect-renew-deadline", po::value(&f->renew_deadline)->default_value(10), "seconds")(
      "leader-elect-retry-period", po::value(&f->retry_period)->default_value(2), "seconds")(
      "metrics-addr", po::value(&f->metrics_addr)->default_value(f->metrics_addr),
      "Prometheus /metrics on HOST:PORT or :PORT; 0 disables")(
      "health-addr", po::value(&f->health_addr)->default_value(f->health_addr),
      "/healthz and /readyz on HOST:PORT or :PORT; 0 disables")(
      "watch-namespace", po::value(&f->watch_namespace),
      "only watch namespaced objects in this namespace (default: all)")(
      "label-selector", po::value(&f->label_selector),
      "only reconcile objects with these labels, e.g. strata.io/shard=a (default: all)")(
      "log-level", po::value(&f->log_level)->default_value(f->log_level),
      "trace|debug|info|warn|error")(
      "log-format", po::value(&f->log_format)->default_value(f->log_format), "text|json")(
      "device-resync", po::value(&f->device_resync)->default_value(5),
      "seconds between polls of each StorageDevice's management endpoint")(
      "device-timeout", po::value(&f->device_timeout)->default_value(2),
      "seconds a device may take to answer")(
      "volume-resync", po::value(&f->volume_resync)->default_value(5),
      "seconds between sweeps of every device's LUNs and their I/O statistics (what the policies "
      "act on)")("window-poll", po::value(&f->window_poll)->default_value(2),
                 "at most this many seconds (and at most --volume-resync) between a "
                 "MaintenanceWindow's looks at its moves; a move's end requeues it at once")(
      "usage-interval", po::value(&f->usage_interval)->default_value(30),
      "seconds between writes of a namespace's UsageReport while its volumes do not "
      "change")("workers", po::value(&f->workers)->default_value(2),
                "reconcile workers per controller")(
      "kube-qps", po::value(&f->kube_qps)->default_value(20), "client-side API request rate")(
      "kube-burst", po::value(&f->kube_burst)->default_value(30), "client-side API burst")(
      "tls-cert", po::value(&f->tls_cert),
      "client certificate for strata-stored's management API, PEM (tls.crt); re-read on change")(
      "tls-key", po::value(&f->tls_key), "its private key, PEM (tls.key)")(
      "tls-ca", po::value(&f->tls_ca),
      "CA bundle the devices' server certificates must chain to, PEM (ca.crt)")(
      "tls-crl", po::value(&f->tls_crl),
      "revocation lists (PEM, signed by a CA of --tls-ca) every device's server certificate is "
      "checked against at each connection; re-read on change")(
      "insecure", po::bool_switch(&f->insecure),
      "plaintext to the devices (devices started with --insecure)");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
    if (vm.count("help")) {
      std::cout << desc << "\n";
      return -1;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "strata-operator: " << e.what() << "\n" << desc << "\n";
    return 2;
  }
  auto bad = [](const std::string& m) {
    std::cerr << "strata-operator: " << m << "\n";
    return 2;
  };
  if (f->log_format != "text" && f->log_format != "json") {
    return bad("--log-format: '" + f->log_format + "' is not text or json");
  }
  if (f->device_resync <= 0) return bad("--device-resync: must be > 0 seconds");
  if (f->device_timeout <= 0) return bad("--device-timeout: must be > 0 seconds");
  if (f->volume_resync <= 0) return bad("--volume-resync: must be > 0 seconds");
  if (f->window_poll <= 0) return bad("--window-poll: must be > 0 seconds");
  if (f->usage_interval <= 0) return bad("--usage-interval: must be > 0 seconds");
  if (f->workers < 1) return bad("--workers: must be >= 1");
  if (f->kube_qps <= 0 || f->kube_burst < 1)
    return bad("--kube-qps must be > 0 and --kube-burst >= 1");
  if (!(f->lease_duration > f->renew_deadline && f->renew_deadline > f->retry_period &&
        f->retry_period > 0)) {
    return bad("leader election: need lease-duration > renew-deadline > retry-period > 0");
  }
  auto tls =
      device::ClientTlsFromFlags(f->tls_cert, f->tls_key, f->tls_ca, f->insecure, f->tls_crl);
  if (!tls.ok()) return bad(tls.status().message());
  f->device_tls = *tls;
  return 0;
}

kube::Duration Seconds(double s) {
  return std::chrono::duration_cast<kube::Duration>(std::chrono::duration<double>(s));
}

std::string DefaultIdentity() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return std::string(host) + "_" + std::to_string(getpid());
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  if (int rc = ParseFlags(argc, argv, &f); rc != 0) return rc < 0 ? 0 : rc;
  if (Status st = InitLogging(f.log_level, f.log_format); !st.ok()) {
    std::cerr << "strata-operator: --log-level/--log-format: " << st.message() << "\n";
    return 2;
  }

  IgnoreSigpipe();
  device::SetClientTls(f.device_tls);
  // Many threads (workers, informers, gRPC and cpprestsdk pools) each get a malloc arena by
  // default (8 per core): the operator's heap is small objects and JSON churn, so two arenas
  // keep its RSS near what it holds (bench/operator/policy_scale.sh).
  mallopt(M_ARENA_MAX, 2);
  // Signals go to one thread that turns them into a stop request.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::stop_source shutdown;
  std::thread([&signals, &shutdown] {
    int sig = 0;
    sigwait(&signals, &sig);
    spdlog::info("signal {}: shutting down", sig);
    shutdown.request_stop();
  }).detach();

  auto config = f.kubeconfig.empty()
                    ? kube::LoadInClusterConfig(Env::Default())
                    : kube::LoadKubeconfig(Env::Default(), f.kubeconfig, f.context);
  if (!config.ok()) {
    spdlog::error("{}", config.status().ToString());
    return 1;
  }
  config->qps = f.kube_qps;
  config->burst = f.kube_burst;
  auto client_or = kube::NewHttpApiClient(*config, Env::Default());
  if (!client_or.ok()) {
    spdlog::error("{}", client_or.status().ToString());
    return 1;
  }
  kube::ApiClient* client = client_or->get();
  if (f.identity.empty()) f.identity = DefaultIdentity();
  if (f.lease_namespace.empty()) f.lease_namespace = config->default_namespace;

  auto selector = kube::ParseLabelSelector(f.label_selector);
  if (!selector.ok()) {
    std::cerr << "strata-operator: --label-selector: " << selector.status().message() << "\n";
    return 2;
  }
  ctrl::Metrics metrics("strata_operator");
  // The pay-per-use ledger, fed by the volume inventory below; made before the exposer that
  // scrapes it (and so destroyed after it).
  op::UsageLedger ledger(client, {Seconds(f.usage_interval)});
  std::unique_ptr<prometheus::Exposer> exposer;
  if (f.metrics_addr != "0") {
    try {
      exposer = std::make_unique<prometheus::Exposer>(
          f.metrics_addr.starts_with(":") ? "0.0.0.0" + f.metrics_addr : f.metrics_addr);
      exposer->RegisterCollectable(metrics.registry());
      exposer->RegisterCollectable(metrics.leader_collectable());
      exposer->RegisterCollectable(ledger.Collectable());
    } catch (const std::exception& e) {
      spdlog::error("--metrics-addr {}: {}", f.metrics_addr, e.what());
      return 1;
    }
  }

  // Events go out on a thread and an API client of their own (with its own --kube-qps budget, as
  // controller-runtime's recorder has its own clientset): a reconcile never waits for them, and a
  // drain of many LUNs, an Event or two per LUN, does not spend the reconcilers' request budget.
  auto event_client = kube::NewHttpApiClient(*config, Env::Default());
  if (!event_client.ok()) {
    spdlog::error("{}", event_client.status().ToString());
    return 1;
  }
  kube::ApiEventRecorder api_recorder(event_client->get(), "strata-operator", f.identity);
  kube::QueuedEventRecorder recorder(&api_recorder);
  const auto device_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(f.device_timeout * 1000));
  auto devices = op::NewGrpcDeviceClient(device_timeout);

  ctrl::Manager::Options mopts;
  mopts.watch_namespace = f.watch_namespace;
  mopts.label_selector = *selector;
  mopts.workers = f.workers;
  mopts.events = &recorder;
  if (f.leader_elect) {
    kube::LeaderElectionConfig lc;
    lc.lease_namespace = f.lease_namespace;
    lc.lease_name = f.lease_name;
    lc.identity = f.identity;
    lc.lease_duration = Seconds(f.lease_duration);
    lc.renew_deadline = Seconds(f.renew_deadline);
    lc.retry_period = Seconds(f.retry_period);
    mopts.leader_election = lc;
  }
  ctrl::Manager manager(client, mopts, &metrics);

  // Every reconciler reads the Manager's shared caches; see docs/architecture.md for each.
  kube::Informer* device_cache = manager.Informer(kube::resources::StorageDevices());
  op::StorageDeviceReconciler device_reconciler(
      client, [device_cache](const std::string& key) { return device_cache->store().Get(key); },
      devices.get(), &recorder, {Seconds(f.device_resync), device_timeout});
  manager.AddController("storagedevice", kube::resources::StorageDevices(), &device_reconciler);

  // Every device's LUNs, their owners and I/O statistics, swept by the leader; the policy
  // controllers act on its snapshots.
  device::ClientCache device_clients([device_timeout](const std::string& address) {
    return device::NewGrpcClient(address, device_timeout);
  });
  op::VolumeInventory inventory(&device_cache->store(), &device_clients,
                                {Seconds(f.volume_resync)});
  manager.AddRunnable("volume-inventory", [&inventory](std::stop_token s) { inventory.Run(s); });

  // TieringPolicy: acts on the inventory's snapshots; a PVC change requeues the policies of its
  // namespace, a StorageDevice change and every sweep requeue all policies.
  kube::Informer* pvc_cache = manager.Informer(kube::resources::PersistentVolumeClaims());
  kube::Informer* tiering_cache = manager.Informer(kube::resources::TieringPolicies());
  op::TieringPolicyReconciler tiering_reconciler(
      client, [tiering_cache](const std::string& key) { return tiering_cache->store().Get(key); },
      [pvc_cache] { return pvc_cache->store().List(); },
      [&inventory] { return inventory.Current(); }, &device_clients, &recorder,
      {Seconds(f.volume_resync)});
  auto all_policies = [tiering_cache](const kube::Json&) { return tiering_cache->store().Keys(); };
  ctrl::Controller& tiering =
      manager
          .AddController("tieringpolicy", kube::resources::TieringPolicies(), &tiering_reconciler)
          .Watches(pvc_cache,
                   [tiering_cache](const kube::Json& pvc) {
                     std::vector<std::string> keys;
                     const std::string ns = kube::SplitKey(kube::ObjectKey(pvc)).first;
                     for (const auto& key : tiering_cache->store().Keys()) {
                       if (kube::SplitKey(key).first == ns) keys.push_back(key);
                     }
                     return keys;
                   })
          .Watches(device_cache, all_policies);
  inventory.AddListener(
      [&tiering, tiering_cache](const op::InventorySnapshot&, const op::InventorySnapshot&) {
        for (const auto& key : tiering_cache->store().Keys()) tiering.queue().Add(key);
      });

  // MaintenanceWindow: drains selected devices by live moves, holds them in Maintenance, brings
  // the LUNs back. Requeued by its devices' changes and after every inventory sweep.
  kube::Informer* window_cache = manager.Informer(kube::resources::MaintenanceWindows());
  op::MaintenanceWindowReconciler::Options window_options;
  window_options.poll = Seconds(std::min(f.volume_resync, f.window_poll));
  window_options.registry = metrics.registry();  // strata_maintenance_*
  window_options.device_lookup = [device_cache](const std::string& name) {
    return device_cache->store().Get(name);
  };
  // Each move in flight requeues its window the moment it ends, so a drain's next move starts
  // then rather than at the next poll (set to the controller below, before anything runs).
  ctrl::Controller* window_requeue = nullptr;
  op::MoveWatcher move_watcher(&device_clients, [&window_requeue](const std::string& key) {
    if (window_requeue) window_requeue->queue().Add(key);
  });
  window_options.watch_move = [&move_watcher](const std::string& endpoint, const std::string& lun,
                                              const std::string& key) {
    move_watcher.Watch(endpoint, lun, key);
  };
  op::MaintenanceWindowReconciler window_reconciler(
      client, [window_cache](const std::string& key) { return window_cache->store().Get(key); },
      [&inventory] { return inventory.Current(); }, &device_clients, &recorder, window_options);
  auto& window_controller =
      manager
          .AddController("maintenancewindow", kube::resources::MaintenanceWindows(),
                         &window_reconciler)
          .Watches(device_cache, [window_cache](const kube::Json& device) {
            return op::MaintenanceWindowReconciler::WindowsFor(window_cache->store(), device);
          });
  window_requeue = &window_controller;
  inventory.AddListener([window_cache, &window_controller](const op::InventorySnapshot&,
                                                           const op::InventorySnapshot&) {
    for (const auto& w : window_cache->store().List()) {
      window_controller.queue().Add(w["metadata"].value("name", ""));
    }
  });

  // DedupPolicy: policies of a namespace follow its PVCs, every policy follows the devices and
  // each inventory sweep (sizes, ratios, tiers change on the devices without an API event).
  kube::Informer* dedup_cache = manager.Informer(kube::resources::DedupPolicies());
  op::DedupPolicyReconciler dedup_reconciler(
      client, &dedup_cache->store(), &pvc_cache->store(),
      [&inventory] { return inventory.Current(); }, &device_clients, &recorder);
  ctrl::Controller& dedup_controller =
      manager.AddController("deduppolicy", kube::resources::DedupPolicies(), &dedup_reconciler)
          .Watches(pvc_cache,
                   [&dedup_reconciler](const kube::Json& pvc) {
                     return dedup_reconciler.PolicyKeysIn(
                         pvc.value("metadata", kube::Json::object()).value("namespace", ""));
                   })
          .Watches(device_cache, [&dedup_reconciler](const kube::Json&) {
            return dedup_reconciler.AllPolicyKeys();
          });
  inventory.AddListener([&dedup_controller, &dedup_reconciler](const op::InventorySnapshot&,
                                                               const op::InventorySnapshot&) {
    for (const auto& key : dedup_reconciler.AllPolicyKeys()) dedup_controller.queue().Add(key);
  });
  // The usage ledger integrates every sweep and keeps each namespace's UsageReport.
  inventory.AddListener(
      [&ledger](const op::InventorySnapshot& previous, const op::InventorySnapshot& current) {
        ledger.OnSweep(previous, current);
      });

  std::unique_ptr<ctrl::HealthServer> health;
  if (f.health_addr != "0") {
    auto h = ctrl::StartHealthServer(f.health_addr, [&manager] { return manager.Ready(); });
    if (!h.ok()) {
      spdlog::error("{}", h.status().ToString());
      return 1;
    }
    health = std::move(*h);
  }

  spdlog::info(
      "strata-operator {} starting: server {}, identity {}, leader election {}, namespace {}",
      "0.1.0", config->server, f.identity, f.leader_elect ? "on" : "off",
      f.watch_namespace.empty() ? "(all)" : f.watch_namespace);
  Status run = manager.Run(shutdown.get_token());
  int rc = 0;
  if (!run.ok()) {
    // Work begun as leader must not continue: exit, and let the orchestrator restart us as a
    // fresh candidate (what controller-runtime does too).
    spdlog::error("{}; exiting", run.message());
    rc = 1;
  }
  spdlog::info("strata-operator stopped");
  return rc;
}
