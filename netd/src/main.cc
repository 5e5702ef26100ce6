// strata-netd: the node network agent (one per node, a DaemonSet). Flags and wiring only; see
// netd/README.md and docs/architecture.md.
#include <malloc.h>
#include <prometheus/exposer.h>
#include <prometheus/registry.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "strata/common/env.h"
#include "strata/common/file_util.h"
#include "strata/common/logging.h"
#include "strata/common/process.h"
#include "strata/controller/health_server.h"
#include "strata/controller/manager.h"
#include "strata/controller/metrics.h"
#include "strata/kube/config.h"
#include "strata/kube/events.h"
#include "strata/kube/http_client.h"
#include "strata/net/attachment.h"
#include "strata/net/linux_netlink.h"
#include "strata/netd/bandwidth_agent.h"
#include "strata/netd/cni_installer.h"
#include "strata/netd/link_probe.h"
#include "strata/netd/node_network_policy_reconciler.h"
#include "strata/netd/pod_index_reconciler.h"
#include "strata/netd/sriov_device_plugin_manager.h"
#include "strata/netd/uplink_static.h"
#include "strata/netd/usage_metrics.h"
#include "strata/netd/virtual_network_config_reconciler.h"
#include "strata/vnc/node_store.h"

namespace po = boost::program_options;
using namespace strata;

namespace {

struct Flags {
  std::string node_name;
  std::string kubeconfig;
  std::string context;
  std::string cni_bin_dir = "/opt/cni/bin";
  std::string cni_conf_dir = "/etc/cni/net.d";
  std::string cni_source_dir = "/opt/strata/cni";
  std::string cni_plugins =
      "strata-cni,strata-bandwidth,strata-bond,strata-sriov,strata-podresources,strata-vnc";
  std::string cni_conf_source;
  std::string cni_conf_name = "10-strata.conflist";
  double cni_check_interval = 30;
  double vnc_sync_interval = 2;
  std::string state_dir = "/var/lib/strata-netd";
  std::string attachments_dir = strata::net::kDefaultAttachmentsDir;
  double status_interval = 2;
  std::string metrics_addr = ":9642";
  std::string health_addr = ":9643";
  std::string ready_file;
  std::string log_level = "info";
  std::string log_format = "text";
  int workers = 2;
  double kube_qps = 5;
  int kube_burst = 10;
  // SR-IOV device plugin (netd/README.md): none without --sriov-pool.
  std::vector<std::string> sriov_pools;
  std::string sriov_resource_prefix = "strata.io";
  std::string device_plugin_dir = "/var/lib/kubelet/device-plugins";
  double sriov_health_interval = 5;
  std::string sysfs_root = "/sys";
  // NodeNetworkPolicy (node uplinks).
  std::string node_network_policy_file;
  std::string node_network_policy_status_file;
  int uplink_sample_ms = 200;
};

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// 0 ok, 2 usage error (printed), -1 --help (printed).
int ParseFlags(int argc, char** argv, Flags* f) {
  if (const char* n = std::getenv("NODE_NAME"); n != nullptr) f->node_name = n;
  po::options_description desc(
      "usage: strata-netd --node-name NODE [--kubeconfig PATH] [options]\n"
      "In a pod, with no --kubeconfig, it uses the service account.\n\nOptions");
  auto add = desc.add_options();
  add("help,h", "show this help");
  add("node-name", po::value(&f->node_name),
      "the node this agent acts on (default: $NODE_NAME, from the downward API)");
  add("kubeconfig", po::value(&f->kubeconfig), "kubeconfig file (out of cluster)");
  add("context", po::value(&f->context), "kubeconfig context (default: current-context)");
  add("cni-bin-dir", po::value(&f->cni_bin_dir)->default_value(f->cni_bin_dir),
      "the host's CNI plugin dir: the plugins are installed there");
  add("cni-conf-dir", po::value(&f->cni_conf_dir)->default_value(f->cni_conf_dir),
      "the host's CNI conf dir: the network config list is kept there");
  add("cni-source-dir", po::value(&f->cni_source_dir)->default_value(f->cni_source_dir),
      "where this image keeps the plugins to install");
  add("cni-plugins", po::value(&f->cni_plugins)->default_value(f->cni_plugins),
      "comma-separated names to install from --cni-source-dir (empty: none)");
  add("cni-conf-source", po::value(&f->cni_conf_source),
      "a network config list (JSON) to keep in --cni-conf-dir (default: none is written)");
  add("cni-conf-name", po::value(&f->cni_conf_name)->default_value(f->cni_conf_name),
      "its file name in --cni-conf-dir");
  add("cni-check-interval", po::value(&f->cni_check_interval)->default_value(30),
      "seconds between full checks of the installed files (inotify acts at once)");
  add("vnc-sync-interval", po::value(&f->vnc_sync_interval)->default_value(2),
      "seconds between syncs of the VirtualNetworkConfig store (<state-dir>/vnc, read by the "
      "strata-vnc CNI plugin) with the cluster, and looks at the CNI's applied records for status");
  add("state-dir", po::value(&f->state_dir)->default_value(f->state_dir),
      "node-local state of the agent");
  add("attachments-dir", po::value(&f->attachments_dir)->default_value(f->attachments_dir),
      "where the CNI plugins record pod attachments (their attachmentsDir)");
  add("status-interval", po::value(&f->status_interval)->default_value(2),
      "seconds: at most one status write per BandwidthPolicy in this time");
  add("metrics-addr", po::value(&f->metrics_addr)->default_value(f->metrics_addr),
      "Prometheus /metrics on HOST:PORT or :PORT (port 0: any free one, see --ready-file); "
      "0 disables");
  add("health-addr", po::value(&f->health_addr)->default_value(f->health_addr),
      "/healthz and /readyz on HOST:PORT or :PORT; 0 disables");
  add("ready-file", po::value(&f->ready_file),
      "written once serving: {\"metrics\": \"HOST:PORT\"} (for tests: no fixed ports)");
  add("log-level", po::value(&f->log_level)->default_value(f->log_level),
      "trace|debug|info|warn|error");
  add("log-format", po::value(&f->log_format)->default_value(f->log_format), "text|json");
  add("workers", po::value(&f->workers)->default_value(2), "reconcile workers per controller");
  add("kube-qps", po::value(&f->kube_qps)->default_value(5),
      "client-side API request rate (one agent per node: keep it low)");
  add("kube-burst", po::value(&f->kube_burst)->default_value(10), "client-side API burst");
  add("sriov-pool", po::value(&f->sriov_pools)->composing(),
      "NAME=PF[,PF...]: every VF of these PFs (interface names or PCI addresses) is a device of "
      "the kubelet extended resource <prefix>/sriov-NAME (repeatable; none: no device plugin)");
  add("sriov-resource-prefix",
      po::value(&f->sriov_resource_prefix)->default_value(f->sriov_resource_prefix),
      "domain of the SR-IOV resources");
  add("device-plugin-dir", po::value(&f->device_plugin_dir)->default_value(f->device_plugin_dir),
      "the kubelet's device plugin dir (its kubelet.sock; the plugins' sockets go there)");
  add("sriov-health-interval", po::value(&f->sriov_health_interval)->default_value(5),
      "seconds between rescans of the VFs' health (kubelet socket changes act at once)");
  add("sysfs-root", po::value(&f->sysfs_root)->default_value(f->sysfs_root),
      "where sysfs is (the VFs are found there)");
  add("node-network-policy-file", po::value(&f->node_network_policy_file),
      "a NodeNetworkPolicy (YAML/JSON) applied to this node WITHOUT an apiserver, like a static "
      "pod: only the CNI install step and the uplinks run (removing the file removes the bond)");
  add("node-network-policy-status-file", po::value(&f->node_network_policy_status_file),
      "with --node-network-policy-file: where the node's status entry is written "
      "(default: STATE_DIR/uplinks-status.json)");
  add("uplink-sample-interval-ms", po::value(&f->uplink_sample_ms)->default_value(200),
      "how often the uplink bonds are sampled (link state, active slave) for status and metrics");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
    if (vm.count("help")) {
      std::cout << desc << "\n";
      return -1;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "strata-netd: " << e.what() << "\n" << desc << "\n";
    return 2;
  }
  auto bad = [](const std::string& m) {
    std::cerr << "strata-netd: " << m << "\n";
    return 2;
  };
  if (f->node_name.empty()) return bad("--node-name: required (or $NODE_NAME)");
  if (f->log_format != "text" && f->log_format != "json") {
    return bad("--log-format: '" + f->log_format + "' is not text or json");
  }
  if (f->cni_check_interval <= 0) return bad("--cni-check-interval: must be > 0 seconds");
  if (f->vnc_sync_interval <= 0) return bad("--vnc-sync-interval: must be > 0 seconds");
  if (f->status_interval < 0) return bad("--status-interval: must be >= 0 seconds");
  if (f->workers < 1) return bad("--workers: must be >= 1");
  if (f->sriov_health_interval <= 0) return bad("--sriov-health-interval: must be > 0 seconds");
  if (f->uplink_sample_ms < 10 || f->uplink_sample_ms > 60000) {
    return bad("--uplink-sample-interval-ms: must be 10..60000");
  }
  if (f->kube_qps <= 0 || f->kube_burst < 1) {
    return bad("--kube-qps must be > 0 and --kube-burst >= 1");
  }
  return 0;
}

std::string ListenAddress(const std::string& flag) {
  return flag.starts_with(":") ? "0.0.0.0" + flag : flag;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  if (int rc = ParseFlags(argc, argv, &f); rc != 0) return rc < 0 ? 0 : rc;
  if (Status st = InitLogging(f.log_level, f.log_format); !st.ok()) {
    std::cerr << "strata-netd: --log-level/--log-format: " << st.message() << "\n";
    return 2;
  }
  IgnoreSigpipe();
  // A small agent on every node: two malloc arenas keep its RSS near what it holds.
  mallopt(M_ARENA_MAX, 2);
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

  ctrl::Metrics metrics("strata_netd");
  // The CNI install step first, and independent of the apiserver: pods on this node need the
  // plugins whether or not the API answers.
  netd::CniInstaller::Options io;
  io.source_dir = f.cni_source_dir;
  io.names = SplitList(f.cni_plugins);
  io.bin_dir = f.cni_bin_dir;
  io.conf_dir = f.cni_conf_dir;
  io.conf_name = f.cni_conf_name;
  io.registry = metrics.registry().get();
  io.period = std::chrono::milliseconds(static_cast<int64_t>(f.cni_check_interval * 1000));
  if (!f.cni_conf_source.empty()) {
    auto conf = ReadFileToString(f.cni_conf_source);
    if (!conf.ok()) {
      std::cerr << "strata-netd: --cni-conf-source: " << conf.status().message() << "\n";
      return 2;
    }
    io.conf_contents = *conf;
  }
  netd::CniInstaller installer(io);
  if (Status st = installer.Validate(); !st.ok()) {
    std::cerr << "strata-netd: " << st.message() << "\n";
    return 2;
  }
  std::jthread install_thread([&installer](std::stop_token s) { installer.Run(s); });

  if (!f.node_network_policy_file.empty()) {
    // Static mode (netd/src/uplink_static.cc): no apiserver; metrics and ready file as below.
    if (Status st = CreateDirectories(f.state_dir); !st.ok()) {
      spdlog::error("--state-dir: {}", st.ToString());
      return 1;
    }
    auto registry = std::make_shared<prometheus::Registry>();
    std::unique_ptr<prometheus::Exposer> static_exposer;
    std::string bound;
    if (f.metrics_addr != "0") {
      try {
        static_exposer = std::make_unique<prometheus::Exposer>(ListenAddress(f.metrics_addr));
        static_exposer->RegisterCollectable(registry);
        const std::string host = ListenAddress(f.metrics_addr);
        bound = host.substr(0, host.rfind(':')) + ":" +
                std::to_string(static_exposer->GetListeningPorts().at(0));
      } catch (const std::exception& e) {
        spdlog::error("--metrics-addr {}: {}", f.metrics_addr, e.what());
        return 1;
      }
    }
    auto netlink = net::NewLinuxNetlinkFactory();
    netd::UplinkAgent agent(netlink.get(), Env::Default(), f.state_dir + "/uplinks.json", registry,
                            kube::Clock::Real());
    if (Status st = agent.Start(); !st.ok()) {
      spdlog::error("uplinks: {}", st.ToString());
      return 1;
    }
    if (!f.ready_file.empty()) {
      nlohmann::json ready = {{"metrics", bound}, {"node", f.node_name}};
      if (Status st = WriteFileAtomically(f.ready_file, ready.dump()); !st.ok()) {
        spdlog::error("--ready-file: {}", st.ToString());
        return 1;
      }
    }
    netd::StaticUplinkOptions so;
    so.policy_file = f.node_network_policy_file;
    so.status_file = f.node_network_policy_status_file.empty()
                         ? f.state_dir + "/uplinks-status.json"
                         : f.node_network_policy_status_file;
    so.node_name = f.node_name;
    so.sample_interval = std::chrono::milliseconds(f.uplink_sample_ms);
    spdlog::info("strata-netd {} starting without an apiserver: node {}, NodeNetworkPolicy from {}",
                 "0.1.0", f.node_name, so.policy_file);
    Status run = netd::RunStaticUplinks(&agent, Env::Default(), so, kube::Clock::Real(),
                                        shutdown.get_token());
    install_thread.request_stop();
    install_thread.join();
    if (!run.ok()) {
      spdlog::error("{}; exiting", run.ToString());
      return 1;
    }
    spdlog::info("strata-netd stopped");
    return 0;
  }
  // The SR-IOV device plugin talks only to the kubelet: it runs whether or not the API answers.
  auto pools = netd::ParseSriovPools(f.sriov_pools);
  if (!pools.ok()) {
    std::cerr << "strata-netd: " << pools.status().message() << "\n";
    return 2;
  }
  auto sysfs = cni::NewSysfs(f.sysfs_root);
  auto link_probe = netd::NewIoctlLinkProbe();
  std::unique_ptr<netd::SriovDevicePluginManager> sriov;
  if (!pools->empty()) {
    netd::SriovDevicePluginOptions so;
    so.device_plugin_dir = f.device_plugin_dir;
    so.resource_prefix = f.sriov_resource_prefix;
    so.health_interval =
        std::chrono::milliseconds(static_cast<int64_t>(f.sriov_health_interval * 1000));
    so.pools = *pools;
    sriov = std::make_unique<netd::SriovDevicePluginManager>(so, sysfs.get(), link_probe.get());
    if (Status st = sriov->Start(); !st.ok()) {
      spdlog::error("sriov device plugin: {}", st.ToString());
      return 1;
    }
  }

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
  if (Status st = CreateDirectories(f.state_dir); !st.ok()) {
    spdlog::error("--state-dir: {}", st.ToString());
    return 1;
  }

  std::unique_ptr<prometheus::Exposer> exposer;
  std::string metrics_bound;
  if (f.metrics_addr != "0") {
    try {
      exposer = std::make_unique<prometheus::Exposer>(ListenAddress(f.metrics_addr));
      exposer->RegisterCollectable(metrics.registry());
      const std::string host = ListenAddress(f.metrics_addr);
      metrics_bound = host.substr(0, host.rfind(':')) + ":" +
                      std::to_string(exposer->GetListeningPorts().at(0));
    } catch (const std::exception& e) {
      spdlog::error("--metrics-addr {}: {}", f.metrics_addr, e.what());
      return 1;
    }
  }

  // Events go out on a thread and an API client of their own (as the operator's): a reconcile or
  // a bandwidth step never waits for the apiserver to take an Event, nor spends the reconcilers'
  // --kube-qps budget on them.
  auto event_client = kube::NewHttpApiClient(*config, Env::Default());
  if (!event_client.ok()) {
    spdlog::error("{}", event_client.status().ToString());
    return 1;
  }
  kube::ApiEventRecorder api_recorder(event_client->get(), "strata-netd", f.node_name);
  kube::QueuedEventRecorder recorder(&api_recorder);
  ctrl::Manager::Options mopts;
  mopts.workers = f.workers;
  mopts.events = &recorder;
  // Per node: no leader election (every agent acts on its own node), and only this node's pods.
  mopts.field_selectors["Pod"] = "spec.nodeName=" + f.node_name;
  mopts.field_selectors["Node"] = "metadata.name=" + f.node_name;  // its own Node's labels
  ctrl::Manager manager(client, mopts, &metrics);

  // Controllers and runnables are added here (one file each in netd/src).
  auto netlink = net::NewLinuxNetlinkFactory();

  // BandwidthPolicy: this node's pods (attachment records + the node-scoped Pod cache) get the
  // policies' rates live; elastic steps from the counters; usage metrics from the same samples.
  kube::Informer* pod_cache = manager.Informer(kube::resources::Pods());
  kube::Informer* bw_cache = manager.Informer(kube::resources::BandwidthPolicies());
  netd::BandwidthAgent::Options bwo;
  bwo.node_name = f.node_name;
  bwo.attachments_dir = f.attachments_dir;
  bwo.status_interval =
      std::chrono::duration_cast<kube::Duration>(std::chrono::duration<double>(f.status_interval));
  netd::BandwidthAgent bandwidth(client, &bw_cache->store(), &pod_cache->store(), netlink.get(),
                                 &recorder, kube::Clock::Real(), bwo);
  ctrl::Controller& bw_controller =
      manager.AddController("bandwidthpolicy", kube::resources::BandwidthPolicies(), &bandwidth)
          .Watches(pod_cache, [&bandwidth](const kube::Json& pod) {
            return bandwidth.PolicyKeysIn(
                pod.value("metadata", kube::Json::object()).value("namespace", ""));
          });
  bandwidth.SetRequeue(
      [&bw_controller](const std::string& key) { bw_controller.queue().Add(key); });
  manager.AddRunnable("bandwidth-sampler", [&bandwidth](std::stop_token s) { bandwidth.Run(s); });
  // The exposer keeps only a weak_ptr: main holds the collectable.
  auto usage = netd::NewUsageCollectable([&bandwidth] { return bandwidth.Usage(); });
  if (exposer) {
    exposer->RegisterCollectable(usage);
  }

  // VirtualNetworkConfig (seed 13.9): every object replicated to the node-local store the
  // strata-vnc CNI plugin reads (no apiserver on the CNI path), the node's pods indexed to their
  // workloads, status.nodes from the CNI's applied records.
  vnc::NodeStore vnc_store(f.state_dir + "/vnc");
  if (Status st = vnc_store.Init(); !st.ok()) {
    spdlog::error("--state-dir: {}", st.ToString());
    return 1;
  }
  kube::Informer* vnc_informer = manager.Informer(kube::resources::VirtualNetworkConfigs());
  kube::Informer* vnc_pods = manager.Informer(kube::resources::Pods());
  netd::VirtualNetworkConfigReconciler vnc_reconciler(client, &vnc_informer->store(), &vnc_store,
                                                      f.node_name, &recorder);
  ctrl::Controller& vnc_controller = manager.AddController(
      "virtualnetworkconfig", kube::resources::VirtualNetworkConfigs(), &vnc_reconciler);
  netd::PodIndexReconciler vnc_pod_index(&vnc_pods->store(), &vnc_store);
  manager.AddController("vnc-pod-index", kube::resources::Pods(), &vnc_pod_index);
  const auto vnc_period =
      std::chrono::milliseconds(static_cast<int64_t>(f.vnc_sync_interval * 1000));
  manager.AddRunnable("vnc-store-sync", [&](std::stop_token stop) {
    vnc_reconciler.RunSync(
        stop, &vnc_pods->store(),
        [&vnc_controller](const std::string& key) { vnc_controller.queue().Add(key); }, vnc_period);
  });
  // NodeNetworkPolicy: node uplinks (netd/src/node_network_policy_reconciler.cc).
  auto uplink_netlink = net::NewLinuxNetlinkFactory();
  netd::UplinkAgent uplinks(uplink_netlink.get(), Env::Default(), f.state_dir + "/uplinks.json",
                            metrics.registry(), kube::Clock::Real());
  if (Status st = uplinks.Start(); !st.ok()) {
    spdlog::error("uplinks: {}", st.ToString());
    return 1;
  }
  kube::Informer* nnp_informer = manager.Informer(kube::resources::NodeNetworkPolicies());
  kube::Informer* node_informer = manager.Informer(kube::resources::Nodes());
  netd::NodeNetworkPolicyReconciler nnp(client, &nnp_informer->store(), &node_informer->store(),
                                        &uplinks, f.node_name);
  // Any policy or this node's labels changing can change which policy applies here (the conflict
  // rule looks at all of them): every policy is re-checked.
  auto every_policy = [nnp_informer](const kube::Json&) { return nnp_informer->store().Keys(); };
  manager.AddController("nodenetworkpolicy", kube::resources::NodeNetworkPolicies(), &nnp)
      .Watches(node_informer, every_policy)
      .Watches(nnp_informer, every_policy);
  const auto sample_every = std::chrono::milliseconds(f.uplink_sample_ms);
  manager.AddRunnable("uplink-sampler", [&nnp, sample_every](std::stop_token stop) {
    if (Status st = nnp.CollectOrphans(); !st.ok()) {
      spdlog::error("uplinks: tearing down removed policies: {}", st.ToString());
    }
    while (kube::Clock::Real()->SleepFor(sample_every, stop)) nnp.SampleAndReport();
  });

  std::unique_ptr<ctrl::HealthServer> health;
  if (f.health_addr != "0") {
    auto h = ctrl::StartHealthServer(f.health_addr, [&manager, &installer] {
      return manager.Ready() && installer.last_status().ok();
    });
    if (!h.ok()) {
      spdlog::error("{}", h.status().ToString());
      return 1;
    }
    health = std::move(*h);
  }
  if (!f.ready_file.empty()) {
    nlohmann::json ready = {{"metrics", metrics_bound}, {"node", f.node_name}};
    if (Status st = WriteFileAtomically(f.ready_file, ready.dump()); !st.ok()) {
      spdlog::error("--ready-file: {}", st.ToString());
      return 1;
    }
  }

  spdlog::info("strata-netd {} starting: node {}, server {}, cni bin {}, conf {}", "0.1.0",
               f.node_name, config->server, f.cni_bin_dir,
               io.conf_contents.empty() ? "(none)" : f.cni_conf_dir + "/" + f.cni_conf_name);
  Status run = manager.Run(shutdown.get_token());
  install_thread.request_stop();
  install_thread.join();
  exposer.reset();  // its collectables read the agents below: stop scrapes first
  if (sriov) sriov->Stop();
  if (!run.ok()) {
    spdlog::error("{}; exiting", run.message());
    return 1;
  }
  spdlog::info("strata-netd stopped");
  return 0;
}
