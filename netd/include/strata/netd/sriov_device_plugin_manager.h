#pragma once

// Runs strata-netd's SR-IOV device plugins: for each pool, a SriovDevicePlugin served on
// <dir>/strata-sriov-<pool>.sock and registered with the kubelet (<dir>/kubelet.sock, version
// v1beta1, resource <prefix>/sriov-<pool>). One thread watches the directory (inotify) and rescans
// the VFs every health interval:
//   - VF health changes (PF link down/up, VF gone) are pushed through ListAndWatch at once;
//   - a kubelet restart recreates kubelet.sock and deletes the plugins' sockets: each plugin whose
//     socket is gone is served again, and every plugin registers again with the new kubelet.
// A kubelet that is not there yet (no kubelet.sock) is not an error: registration happens when
// it appears.

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "strata/cni/sysfs.h"
#include "strata/common/status.h"
#include "strata/netd/link_probe.h"
#include "strata/netd/sriov_device_plugin.h"
#include "strata/netd/sriov_inventory.h"
#include "strata/netd/sriov_pool.h"

namespace grpc {
class Server;
}

namespace strata::netd {

struct SriovDevicePluginOptions {
  std::string device_plugin_dir = "/var/lib/kubelet/device-plugins";  // --device-plugin-dir
  std::string resource_prefix = "strata.io";                          // --sriov-resource-prefix
  std::chrono::milliseconds health_interval{5000};                    // --sriov-health-interval
  std::vector<SriovPoolSpec> pools;                                   // --sriov-pool
};

// Start/Stop from one thread; the state below is the manager thread's own. Registered() and
// Plugin() may be called from any thread (tests).
class SriovDevicePluginManager {
 public:
  // `sysfs` and `links` must outlive the manager.
  SriovDevicePluginManager(SriovDevicePluginOptions options, cni::Sysfs* sysfs, LinkProbe* links);
  ~SriovDevicePluginManager();

  // Scans, serves every pool's socket, registers with the kubelet if it is there, and starts the
  // watch thread. An error (the directory cannot be watched, a socket cannot be served) leaves
  // nothing running.
  Status Start();
  // Stops the thread, ends the streams, shuts the servers down and removes their sockets.
  void Stop();

  // How many times a Register call to the kubelet succeeded, over all pools (for tests and logs).
  int registrations() const { return registrations_.load(); }

 private:
  struct Pool {
    SriovPoolSpec spec;
    std::string resource;
    std::string endpoint;  // socket file name inside the directory
    std::shared_ptr<SriovDevicePlugin> plugin;
    std::unique_ptr<grpc::Server> server;
    ino_t socket_ino = 0;          // of the socket we serve; 0 when not serving
    ino_t registered_kubelet = 0;  // inode of the kubelet.sock we registered with; 0: not yet
  };

  Status Serve(Pool& pool);
  void StopServing(Pool& pool);
  Status Register(Pool& pool);
  // One pass: rescan VFs, re-serve pools whose socket vanished, register where needed.
  void Reconcile();
  void Loop();

  const SriovDevicePluginOptions options_;
  SriovInventory inventory_;
  std::vector<Pool> pools_;
  int inotify_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: Stop() wakes the loop
  std::atomic<bool> stopping_{false};
  std::atomic<int> registrations_{0};
  std::thread thread_;
};

}  // namespace strata::netd
