#include "strata/operator/volume_inventory.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "strata/device/tier.h"
#include "strata/operator/api/v1alpha1/storage_device.h"

namespace strata::op {

namespace pb = storage::v1;

const DeviceView::Tier* DeviceView::FindTier(const std::string& class_) const {
  for (const auto& t : tiers) {
    if (t.class_ == class_) return &t;
  }
  return nullptr;
}

uint64_t DeviceView::FreeBytes(const std::string& class_) const {
  const Tier* t = FindTier(class_);
  if (!t || !t->healthy || t->used_bytes >= t->capacity_bytes) return 0;
  return t->capacity_bytes - t->used_bytes;
}

bool DeviceView::AcceptsVolumes() const {
  return reachable && desired_state == "Online" && status.state() == pb::DEVICE_STATE_ONLINE;
}

const DeviceView* InventorySnapshot::Device(const std::string& name) const {
  auto it = devices.find(name);
  return it == devices.end() ? nullptr : &it->second;
}

const pb::Lun* InventorySnapshot::Lun(const VolumeRef& ref) const {
  const DeviceView* d = Device(ref.device);
  if (!d) return nullptr;
  for (const auto& l : d->luns) {
    if (l.name() == ref.lun) return &l;
  }
  return nullptr;
}

const pb::LunStats* InventorySnapshot::Stats(const VolumeRef& ref) const {
  const DeviceView* d = Device(ref.device);
  if (!d) return nullptr;
  auto it = d->stats.find(ref.lun);
  return it == d->stats.end() ? nullptr : &it->second;
}

std::optional<VolumeRef> InventorySnapshot::FindPvc(const std::string& ns,
                                                    const std::string& name) const {
  auto it = by_pvc.find({ns, name});
  if (it == by_pvc.end()) return std::nullopt;
  return it->second;
}

void AddProxiedStats(const pb::LunStats& stub, pb::LunStats* holder) {
  auto add = [](const pb::IoKindStats& from, pb::IoKindStats* to) {
    to->set_ops(to->ops() + from.ops());
    to->set_bytes(to->bytes() + from.bytes());
    to->set_errors(to->errors() + from.errors());
    to->set_iops(to->iops() + from.iops());
    to->set_bytes_per_second(to->bytes_per_second() + from.bytes_per_second());
    // Latency percentiles do not add: the holder's stay (the stub's include the forwarding).
  };
  add(stub.read(), holder->mutable_read());
  add(stub.write(), holder->mutable_write());
  add(stub.flush(), holder->mutable_flush());
  add(stub.trim(), holder->mutable_trim());
  add(stub.write_zeroes(), holder->mutable_write_zeroes());
  holder->set_idle_seconds(std::min(holder->idle_seconds(), stub.idle_seconds()));
}

VolumeInventory::VolumeInventory(const kube::Store* devices, device::ClientCache* clients,
                                 Options options, kube::Clock* clock)
    : devices_(devices),
      clients_(clients),
      options_(options),
      clock_(clock),
      current_(std::make_shared<InventorySnapshot>()) {}

void VolumeInventory::AddListener(Listener listener) { listeners_.push_back(std::move(listener)); }

std::shared_ptr<const InventorySnapshot> VolumeInventory::Current() const {
  std::lock_guard g(mu_);
  return current_;
}

std::shared_ptr<const InventorySnapshot> VolumeInventory::Sweep() {
  std::lock_guard one(sweep_mu_);
  auto previous = Current();
  auto snap = std::make_shared<InventorySnapshot>();
  snap->sweep = previous->sweep + 1;
  snap->taken = clock_->WallNow();
  // (endpoint, LUN) pairs that are the target of a move still copying: not yet the volume.
  std::set<std::pair<std::string, std::string>> incoming;
  // Statistics of stubs left by moves, by (PVC namespace, PVC name).
  std::vector<std::pair<std::pair<std::string, std::string>, pb::LunStats>> proxied;

  for (const auto& object : devices_->List()) {
    auto parsed = api::v1alpha1::StorageDeviceFromJson(object);
    if (!parsed.ok() || parsed->metadata.deletion_timestamp) continue;  // its reconciler reports
    DeviceView d;
    d.name = parsed->metadata.name;
    d.endpoint = parsed->spec.endpoint;
    d.region = parsed->spec.region.value_or("");
    d.jurisdiction = parsed->spec.jurisdiction.value_or("");
    d.desired_state = parsed->spec.desired_state;
    d.labels = parsed->metadata.labels;
    std::map<std::string, double> prices;
    for (const auto& t : parsed->spec.tiers) prices[t.class_] = t.price_per_gib_hour.value_or(0);

    auto client = clients_->Get(d.endpoint);
    auto status = client->GetDeviceStatus();
    if (!status.ok()) {
      d.error = status.status().message();
      snap->devices.emplace(d.name, std::move(d));
      continue;
    }
    d.status = std::move(*status);
    for (const auto& t : d.status.tiers()) {
      const std::string cls(device::TierName(t.class_()));
      if (cls.empty()) continue;
      d.tiers.push_back({cls, t.capacity_bytes(), t.used_bytes(),
                         prices.contains(cls) ? prices[cls] : t.price_per_gib_hour(), t.healthy()});
    }
    auto luns = client->ListLuns();
    if (!luns.ok()) {
      d.error = luns.status().message();
      snap->devices.emplace(d.name, std::move(d));
      continue;
    }
    d.reachable = true;
    for (auto& lun : *luns) {
      if (!lun.moved_to().empty()) {
        // A stub proxying to where the LUN lives now. Clients not yet switched to the new
        // device's portals still do their I/O here: it counts for the volume.
        auto ns = lun.metadata().find(kPvcNamespaceKey);
        auto pvc = lun.metadata().find(kPvcNameKey);
        if (ns != lun.metadata().end() && pvc != lun.metadata().end()) {
          auto stats = client->GetLunStats(lun.name());
          if (stats.ok()) proxied.emplace_back(std::make_pair(ns->second, pvc->second), *stats);
        }
        continue;
      }
      const auto& m = lun.migration();
      if (m.state() == pb::MIGRATION_STATE_RUNNING) {
        ++d.running_migrations;
        if (!m.to_device().empty()) incoming.insert({m.to_device(), lun.name()});
      }
      if (lun.metadata().contains(kPvcNameKey)) {
        auto stats = client->GetLunStats(lun.name());
        if (stats.ok()) d.stats[lun.name()] = std::move(*stats);
      }
      d.luns.push_back(std::move(lun));
    }
    snap->devices.emplace(d.name, std::move(d));
  }

  for (auto& [name, d] : snap->devices) {
    std::erase_if(d.luns, [&](const pb::Lun& l) {
      if (!incoming.contains({d.endpoint, l.name()})) return false;
      d.stats.erase(l.name());
      return true;
    });
    for (const auto& l : d.luns) {
      auto ns = l.metadata().find(kPvcNamespaceKey);
      auto pvc = l.metadata().find(kPvcNameKey);
      if (ns == l.metadata().end() || pvc == l.metadata().end()) continue;
      snap->by_pvc[{ns->second, pvc->second}] = VolumeRef{name, l.name()};
    }
  }

  for (const auto& [pvc, stub] : proxied) {
    auto ref = snap->by_pvc.find(pvc);
    if (ref == snap->by_pvc.end()) continue;
    auto& d = snap->devices.at(ref->second.device);
    auto it = d.stats.find(ref->second.lun);
    if (it == d.stats.end()) continue;
    AddProxiedStats(stub, &it->second);
  }

  {
    std::lock_guard g(mu_);
    current_ = snap;
  }
  for (const auto& listener : listeners_) listener(*previous, *snap);
  return snap;
}

void VolumeInventory::Run(std::stop_token stop) {
  do {
    Sweep();
  } while (clock_->SleepFor(options_.period, stop));
}

}  // namespace strata::op
