#include "cluster_devices.h"

#include <spdlog/spdlog.h>

#include "strata/operator/api/v1alpha1/storage_device.h"

namespace strata::csi {

namespace api = ::strata::op::api::v1alpha1;

Result<ClusterDevice> ClusterDeviceFromObject(const kube::Json& object) {
  auto typed = api::StorageDeviceFromJson(object);
  if (!typed.ok()) return typed.status();
  ClusterDevice d;
  d.name = typed->metadata.name;
  if (d.name.empty()) return InvalidArgumentError("StorageDevice: metadata.name: required");
  if (d.name.find('/') != std::string::npos) {
    return InvalidArgumentError("StorageDevice " + d.name + ": metadata.name contains '/'");
  }
  d.address = typed->spec.endpoint;
  if (d.address.empty()) {
    return InvalidArgumentError("StorageDevice " + d.name + ": spec.endpoint: required");
  }
  d.region = typed->spec.region.value_or("");
  auto zone = typed->metadata.labels.find(std::string(kKubeZoneLabel));
  d.zone = zone != typed->metadata.labels.end() ? zone->second : d.region;
  const std::string& phase = typed->status.phase;
  if (phase == "Offline" || phase == "Maintenance") {
    d.refusal = "StorageDevice " + d.name + " is " + phase + " (status.phase)";
    if (!typed->status.state_reason.empty()) d.refusal += ": " + typed->status.state_reason;
  } else if (typed->spec.desired_state == "Maintenance") {
    d.refusal = "StorageDevice " + d.name + " is going into Maintenance (spec.desiredState)";
  }
  return d;
}

ClusterDeviceWatcher::ClusterDeviceWatcher(kube::ApiClient* client, DeviceSet* devices,
                                           kube::Informer::Options options)
    : devices_(devices), informer_(client, kube::resources::StorageDevices(), std::move(options)) {
  informer_.AddHandlers(kube::EventHandlers{
      [this](const kube::Json& o) { Apply(o); },
      [this](const kube::Json&, const kube::Json& o) { Apply(o); },
      [this](const kube::Json& o) {
        std::string name = o.value("/metadata/name"_json_pointer, std::string());
        spdlog::info("StorageDevice {} deleted: no longer a device of this driver", name);
        devices_->Remove(name);
      }});
}

ClusterDeviceWatcher::~ClusterDeviceWatcher() { Stop(); }

void ClusterDeviceWatcher::Start() { informer_.Start(); }
bool ClusterDeviceWatcher::WaitForSync(kube::Duration timeout) {
  return informer_.WaitForSync(timeout);
}
void ClusterDeviceWatcher::Stop() { informer_.Stop(); }

void ClusterDeviceWatcher::Apply(const kube::Json& object) {
  auto d = ClusterDeviceFromObject(object);
  if (!d.ok()) {
    std::string name = object.value("/metadata/name"_json_pointer, std::string());
    spdlog::warn("{}; not a device of this driver until fixed", d.status().message());
    if (!name.empty()) devices_->Remove(name);
    return;
  }
  Status s = devices_->Upsert(*d);
  if (!s.ok()) {
    spdlog::warn("{}", s.message());
    return;
  }
  spdlog::debug("StorageDevice {} at {} (zone '{}'{})", d->name, d->address, d->zone,
                d->refusal.empty() ? "" : "; " + d->refusal);
}

}  // namespace strata::csi
