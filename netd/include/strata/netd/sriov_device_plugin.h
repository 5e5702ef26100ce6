#pragma once

// The kubelet device plugin service (v1beta1) of one SR-IOV pool: ListAndWatch advertises the
// pool's VFs (ID = PCI address) with their health, Allocate tells the kubelet what a container
// needs for the VFs it got. Served on a unix socket in the kubelet's device-plugins directory by
// SriovDevicePluginManager, which also registers it and feeds it the VF list.

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "deviceplugin/v1beta1/api.grpc.pb.h"
#include "strata/netd/sriov_inventory.h"

namespace strata::netd {

inline constexpr char kDevicePluginApiVersion[] = "v1beta1";
inline constexpr char kHealthy[] = "Healthy";
inline constexpr char kUnhealthy[] = "Unhealthy";

// Thread-safe: gRPC threads call the RPCs while the manager calls SetVfs/Shutdown.
class SriovDevicePlugin final : public v1beta1::DevicePlugin::Service {
 public:
  explicit SriovDevicePlugin(std::string resource_name);

  const std::string& resource_name() const { return resource_name_; }

  // Replaces the VF list with a scan's result. A VF advertised before and absent from `vfs` stays
  // in the list as Unhealthy (the kubelet then stops counting it; dropping it would look like a
  // device that never existed to pods that hold it). Wakes every ListAndWatch stream when the
  // list the kubelet sees changed; returns whether it did.
  bool SetVfs(const std::vector<SriovVf>& vfs);
  // Every VF known, by PCI address.
  std::vector<SriovVf> Vfs() const;
  // The list as ListAndWatch sends it.
  v1beta1::ListAndWatchResponse Devices() const;
  // Ends every ListAndWatch stream (before the gRPC server shuts down: Shutdown waits for them).
  void Shutdown();

  grpc::Status GetDevicePluginOptions(grpc::ServerContext* ctx, const v1beta1::Empty* req,
                                      v1beta1::DevicePluginOptions* resp) override;
  grpc::Status ListAndWatch(grpc::ServerContext* ctx, const v1beta1::Empty* req,
                            grpc::ServerWriter<v1beta1::ListAndWatchResponse>* writer) override;
  // Healthy VFs first, spread over PFs (one VF per PF in turn), must_include first of all.
  grpc::Status GetPreferredAllocation(grpc::ServerContext* ctx,
                                      const v1beta1::PreferredAllocationRequest* req,
                                      v1beta1::PreferredAllocationResponse* resp) override;
  // Per container: PCIDEVICE_<RESOURCE> = the VFs' PCI addresses, comma-separated (the convention
  // of sriov-network-device-plugin that KubeVirt and Multus users rely on); for VFs bound to
  // vfio-pci also /dev/vfio/vfio and /dev/vfio/<iommu group> ("mrw"). An ID that is not a VF of
  // this pool -> INVALID_ARGUMENT naming it; nothing is returned for any container then.
  grpc::Status Allocate(grpc::ServerContext* ctx, const v1beta1::AllocateRequest* req,
                        v1beta1::AllocateResponse* resp) override;
  grpc::Status PreStartContainer(grpc::ServerContext* ctx,
                                 const v1beta1::PreStartContainerRequest* req,
                                 v1beta1::PreStartContainerResponse* resp) override;

 private:
  v1beta1::ListAndWatchResponse DevicesLocked() const;

  const std::string resource_name_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::map<std::string, SriovVf> vfs_;  // by PCI address; guarded by mu_
  uint64_t version_ = 0;                // bumped on every visible change; guarded by mu_
  bool shutdown_ = false;               // guarded by mu_
};

}  // namespace strata::netd
