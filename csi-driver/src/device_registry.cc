#include "strata/csi/device_registry.h"

#include <utility>

namespace strata::csi {

namespace {
constexpr std::chrono::milliseconds kCallTimeout{10000};
}  // namespace

DeviceSet::DeviceSet(Factory factory)
    : factory_(factory ? std::move(factory)
                       : Factory([](const std::string& name, const std::string& address) {
                           return MakeGrpcDeviceClient(name, address, kCallTimeout);
                         })) {}

Status DeviceSet::AddFixed(DeviceInfo device) {
  std::lock_guard g(mu_);
  const std::string name = device.client->name();
  if (devices_.count(name)) return InvalidArgumentError("device '" + name + "' given twice");
  devices_[name] = Entry{std::move(device), true};
  return Status::Ok();
}

Status DeviceSet::Upsert(const ClusterDevice& d) {
  std::lock_guard g(mu_);
  auto it = devices_.find(d.name);
  if (it != devices_.end() && it->second.fixed) {
    return AlreadyExistsError("StorageDevice " + d.name +
                              ": a --device of that name is configured; ignoring the object");
  }
  DeviceClientPtr client;
  if (it != devices_.end() && it->second.info.client->address() == d.address) {
    client = it->second.info.client;
  } else {
    client = factory_(d.name, d.address);
  }
  devices_[d.name] = Entry{DeviceInfo{std::move(client), d.zone, d.region, d.refusal}, false};
  return Status::Ok();
}

void DeviceSet::Remove(const std::string& name) {
  std::lock_guard g(mu_);
  auto it = devices_.find(name);
  if (it != devices_.end() && !it->second.fixed) devices_.erase(it);
}

std::vector<DeviceInfo> DeviceSet::Devices() const {
  std::lock_guard g(mu_);
  std::vector<DeviceInfo> out;
  out.reserve(devices_.size());
  for (const auto& [name, e] : devices_) out.push_back(e.info);
  return out;
}

std::optional<DeviceInfo> DeviceSet::Find(const std::string& name) const {
  std::lock_guard g(mu_);
  auto it = devices_.find(name);
  if (it == devices_.end()) return std::nullopt;
  return it->second.info;
}

DeviceClientPtr DeviceSet::ForAddress(const std::string& address) {
  std::lock_guard g(mu_);
  for (const auto& [name, e] : devices_) {
    if (e.info.client->address() == address) return e.info.client;
  }
  DeviceClientPtr& c = by_address_[address];
  if (!c) c = factory_(address, address);
  return c;
}

}  // namespace strata::csi
