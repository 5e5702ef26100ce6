#pragma once

// A test kubelet for device plugins: the kubelet's side of the v1beta1 device plugin API and of
// the PodResources v1 API, from the same protos a real kubelet speaks, on real unix sockets.
//   - Registration on <device_plugin_dir>/kubelet.sock: checks the request as the kubelet's device
//     manager does (version "v1beta1", an endpoint socket that exists in the directory, a resource
//     name "domain/name"), records it, then dials the plugin, asks GetDevicePluginOptions and
//     keeps a ListAndWatch stream open, remembering every list it receives;
//   - Allocate(...) calls the plugin's Allocate for one pod container, as the kubelet does at pod
//     admission, and remembers the result;
//   - PodResourcesLister.List on `pod_resources_socket` reports those allocations per pod and
//     container (what Multus, and strata-sriov without Multus, read);
//   - Restart() does what a kubelet restart does to plugins: kubelet.sock goes away, every other
//     socket in the directory is removed, a new kubelet.sock appears.
// Thread-safe.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "deviceplugin/v1beta1/api.grpc.pb.h"
#include "podresources/v1/api.grpc.pb.h"
#include "strata/common/result.h"

namespace strata::testing {

class FakeKubelet {
 public:
  struct Registration {
    std::string version, endpoint, resource_name;
    v1beta1::DevicePluginOptions options;
  };

  FakeKubelet(std::string device_plugin_dir, std::string pod_resources_socket);
  ~FakeKubelet();

  Status Start();
  void Stop();
  // Stop, remove the plugins' sockets, Start.
  Status Restart();

  std::vector<Registration> registrations() const;
  // The last list ListAndWatch sent for `resource`, and how many lists came so far.
  std::optional<v1beta1::ListAndWatchResponse> Devices(const std::string& resource) const;
  int lists_received(const std::string& resource) const;
  // Waits (bounded) until `pred` holds; re-checked on every registration and list received.
  bool WaitFor(const std::function<bool()>& pred, std::chrono::seconds timeout) const;

  // Allocate on the plugin registered for `resource`; on success the devices are recorded for
  // PodResources List under namespace/pod/container (replacing an earlier allocation there).
  Result<v1beta1::ContainerAllocateResponse> Allocate(const std::string& resource,
                                                      const std::string& pod_namespace,
                                                      const std::string& pod_name,
                                                      const std::string& container,
                                                      const std::vector<std::string>& device_ids);
  // Records devices for PodResources List as if Allocate had given them (no plugin called).
  void RecordAllocation(const std::string& resource, const std::string& pod_namespace,
                        const std::string& pod_name, const std::string& container,
                        const std::vector<std::string>& device_ids);
  // The raw Allocate of the plugin for `resource` (for bad requests).
  grpc::Status AllocateRaw(const std::string& resource, const v1beta1::AllocateRequest& req,
                           v1beta1::AllocateResponse* resp);

 private:
  class RegistrationService;
  class PodResourcesService;
  struct Plugin {
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<grpc::ClientContext> watch_ctx;
    std::thread watcher;
  };
  struct Allocation {
    std::string ns, pod, container, resource;
    std::vector<std::string> ids;
  };

  grpc::Status OnRegister(const v1beta1::RegisterRequest& req);
  void Watch(std::string resource, std::shared_ptr<grpc::Channel> channel,
             grpc::ClientContext* ctx);
  v1::ListPodResourcesResponse ListPods() const;
  void StopPlugins();

  const std::string dir_;
  const std::string pod_resources_socket_;
  std::unique_ptr<RegistrationService> registration_;
  std::unique_ptr<PodResourcesService> pod_resources_;
  std::unique_ptr<grpc::Server> server_, pod_resources_server_;

  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  std::vector<Registration> registrations_;                       // guarded by mu_
  std::map<std::string, v1beta1::ListAndWatchResponse> devices_;  // guarded by mu_
  std::map<std::string, int> lists_;                              // guarded by mu_
  std::map<std::string, std::unique_ptr<Plugin>> plugins_;        // guarded by mu_
  std::vector<Allocation> allocations_;                           // guarded by mu_
};

}  // namespace strata::testing
