#pragma once

#include <memory>
#include <string>

#include "strata/common/result.h"
#include "strata/csi/device_registry.h"
#include "strata/kube/client.h"
#include "strata/kube/informer.h"

namespace strata::csi {

// The node label (and StorageDevice label) that names a zone.
inline constexpr std::string_view kKubeZoneLabel = "topology.kubernetes.io/zone";

// A StorageDevice object (strata.io/v1alpha1) as a device of the controller: name = object
// name, address = spec.endpoint, region = spec.region, zone = the object's
// topology.kubernetes.io/zone label (else the region); refusal set while spec.desiredState is
// Maintenance or status.phase is Maintenance or Offline. INVALID_ARGUMENT (naming the field)
// for an object the operator's typed API rejects or one without an endpoint.
Result<ClusterDevice> ClusterDeviceFromObject(const kube::Json& object);

// Keeps a DeviceSet in step with the cluster's StorageDevice objects through an Informer.
// Objects that do not parse, or whose name a --device already took, are logged and left out
// (an update that stops parsing removes the device). Thread-safe; Stop() before destroying the
// DeviceSet.
class ClusterDeviceWatcher {
 public:
  // `client` and `devices` must outlive the watcher.
  ClusterDeviceWatcher(kube::ApiClient* client, DeviceSet* devices,
                       kube::Informer::Options options = {});
  ~ClusterDeviceWatcher();

  void Start();
  // True once the first list is in the DeviceSet, within `timeout`.
  bool WaitForSync(kube::Duration timeout);
  void Stop();

 private:
  void Apply(const kube::Json& object);

  DeviceSet* const devices_;
  kube::Informer informer_;
};

}  // namespace strata::csi
