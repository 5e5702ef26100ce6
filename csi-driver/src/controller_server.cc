#include "controller_server.h"

#include <algorithm>
#include <utility>

#include "call_logging.h"
#include "volume_params.h"

namespace strata::csi {

namespace v1 = ::csi::v1;
namespace sv1 = ::strata::storage::v1;

namespace {

std::string JoinPortals(const sv1::Lun& lun) {
  std::string out;
  for (const auto& p : lun.portals()) {
    if (!out.empty()) out += ",";
    out += p;
  }
  return out;
}

// The tier a LUN of class `tier` lands on: that class, or the device's first tier.
const sv1::TierStatus* FindTier(const sv1::DeviceStatus& st, sv1::TierClass tier) {
  for (const auto& t : st.tiers()) {
    if (tier == sv1::TIER_CLASS_UNSPECIFIED || t.class_() == tier) return &t;
  }
  return nullptr;
}

uint64_t FreeBytes(const sv1::TierStatus& t) {
  return t.capacity_bytes() > t.used_bytes() ? t.capacity_bytes() - t.used_bytes() : 0;
}

// The tier a LUN is on or, while it moves (to another tier, or to a named tier of another
// device), the tier it moves to.
sv1::TierClass TargetTier(const sv1::Lun& lun) {
  const sv1::Migration& m = lun.migration();
  if (m.state() == sv1::MIGRATION_STATE_RUNNING && m.to_tier() != sv1::TIER_CLASS_UNSPECIFIED) {
    return m.to_tier();
  }
  return lun.tier();
}

bool Contains(const sv1::Lun& lun, const std::string& client) {
  const auto& c = lun.access().allowed_clients();
  return std::find(c.begin(), c.end(), client) != c.end();
}

// Whether the device recorded `node_id` as published with `entry`.
bool Recorded(const sv1::Lun& lun, const std::string& node_id, const std::string& entry) {
  for (const auto& p : lun.publications()) {
    if (p.node_id() != node_id) continue;
    const auto& e = p.access_entries();
    return std::find(e.begin(), e.end(), entry) != e.end();
  }
  return false;
}

bool HasPublication(const sv1::Lun& lun, const std::string& node_id) {
  const auto& p = lun.publications();
  return std::any_of(p.begin(), p.end(),
                     [&](const sv1::Publication& x) { return x.node_id() == node_id; });
}

bool IsUnimplemented(const Status& s) { return s.code() == StatusCode::kUnimplemented; }

bool IsUnreachable(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDeadlineExceeded;
}

}  // namespace

void FillVolume(const std::string& device, const std::string& zone, const sv1::Lun& lun,
                v1::Volume* out) {
  if (!zone.empty()) (*out->add_accessible_topology()->mutable_segments())[kZoneKey] = zone;
  out->set_volume_id(VolumeId{device, lun.name()}.ToString());
  out->set_capacity_bytes(static_cast<int64_t>(lun.size_bytes()));
  auto& ctx = *out->mutable_volume_context();
  ctx["device"] = device;
  ctx["wwn"] = lun.wwn();
  ctx["exportName"] = lun.export_name().empty() ? lun.name() : lun.export_name();
  ctx["portals"] = JoinPortals(lun);
}

namespace {
// The node ids the device(s) recorded as published, over the chain of a moved LUN (a node
// published before the move is recorded at the source), each once, ordered.
template <typename VolumeStatus>
void FillPublishedNodes(const std::vector<const sv1::Lun*>& chain, VolumeStatus* out) {
  std::set<std::string> nodes;
  for (const sv1::Lun* lun : chain) {
    for (const auto& p : lun->publications()) nodes.insert(p.node_id());
  }
  for (const auto& n : nodes) out->add_published_node_ids(n);
}
}  // namespace

ControllerServer::ControllerServer(std::shared_ptr<DeviceRegistry> devices)
    : devices_(std::move(devices)) {}

namespace {
std::shared_ptr<DeviceRegistry> FixedDevices(std::vector<DeviceClientPtr> devices,
                                             const std::map<std::string, std::string>& zones) {
  auto set = std::make_shared<DeviceSet>();
  for (auto& d : devices) {
    auto z = zones.find(d->name());
    DeviceInfo info{d, z == zones.end() ? "" : z->second, "", ""};
    Status s = set->AddFixed(std::move(info));
    if (!s.ok()) spdlog::error("ControllerServer: {}", s.message());
  }
  return set;
}
}  // namespace

ControllerServer::ControllerServer(std::vector<DeviceClientPtr> devices,
                                   std::map<std::string, std::string> zones)
    : ControllerServer(FixedDevices(std::move(devices), zones)) {}

std::string ControllerServer::ZoneOf(const DeviceClientPtr& device) const {
  auto d = devices_->Find(device->name());
  return d && d->client == device ? d->zone : "";
}

Result<DeviceClientPtr> ControllerServer::DeviceOf(const VolumeId& id) const {
  auto d = devices_->Find(id.device);
  if (!d) {
    return NotFoundError("volume_id '" + id.ToString() + "': no such volume (unknown device '" +
                         id.device + "')");
  }
  return d->client;
}

Status ControllerServer::Follow(const VolumeId& id, const DeviceClientPtr& first,
                                std::vector<Hop>* hops) {
  hops->clear();
  DeviceClientPtr device = first;
  std::set<std::string> seen;
  for (int hop = 0;; ++hop) {
    auto lun = device->GetLun(id.lun);
    if (!lun.ok()) {
      if (hop > 0 && lun.status().code() == StatusCode::kNotFound) {
        return NotFoundError("volume " + id.ToString() + " moved to " + device->address() +
                             ", which has no LUN " + id.lun);
      }
      return lun.status();
    }
    std::string next = lun->moved_to();
    hops->push_back(Hop{device, std::move(*lun)});
    if (next.empty()) return Status::Ok();
    if (!device->address().empty()) seen.insert(device->address());
    if (hop + 1 > kMaxMoveHops || seen.count(next)) {
      return FailedPreconditionError("volume " + id.ToString() + ": more than " +
                                     std::to_string(kMaxMoveHops) +
                                     " moves to follow, or a loop (last: " + next + ")");
    }
    device = devices_->ForAddress(next);
  }
}

// --- CreateVolume ------------------------------------------------------------------

Status ControllerServer::Create(const v1::CreateVolumeRequest& req,
                                v1::CreateVolumeResponse* resp) {
  if (req.name().empty()) return InvalidArgumentError("name: required");
  STRATA_RETURN_IF_ERROR(ValidateCapabilities(req.volume_capabilities(), "volume_capabilities"));
  const v1::CapacityRange* range = req.has_capacity_range() ? &req.capacity_range() : nullptr;
  auto size = SizeForRange(range);
  if (!size.ok()) return size.status();
  auto params = ParseCreateParams(req.parameters());
  if (!params.ok()) return params.status();
  // A VolumeAttributesClass named by the claim: its keys win over the StorageClass's.
  auto mutable_params = ParseMutableParams(req.mutable_parameters(), "mutable_parameters");
  if (!mutable_params.ok()) return mutable_params.status();
  ApplyMutableParams(*mutable_params, &*params);

  std::vector<DeviceInfo> candidates = devices_->Devices();
  // A clone or a restore: made on the source's device by the device itself (shared blocks,
  // nothing copied), at least the source's size. A clone starts on its source's tier and a
  // restore on its snapshot's; another tier is a live tier move started right away. When the
  // source's device lacks room, the new LUN is still made there and at once moved to a device
  // of the same zone that has room (a device-to-device move; its id keeps naming the source's
  // device, as every moved volume's does).
  std::string clone_from;
  std::string from_snapshot;
  DeviceClientPtr source_device;
  if (req.has_volume_content_source()) {
    const auto& src = req.volume_content_source();
    uint64_t source_size = 0;
    std::string source_what;
    if (src.has_snapshot()) {
      auto snap_id = ParseSnapshotId(src.snapshot().snapshot_id());
      if (!snap_id.ok()) {
        return snap_id.status().WithContext("volume_content_source.snapshot.snapshot_id");
      }
      auto d = devices_->Find(snap_id->device);
      if (!d) {
        return NotFoundError("volume_content_source.snapshot.snapshot_id: snapshot " +
                             snap_id->ToString() + " does not exist (unknown device '" +
                             snap_id->device + "')");
      }
      auto snap = d->client->GetSnapshot(snap_id->name);
      if (!snap.ok()) {
        if (snap.status().code() == StatusCode::kNotFound) {
          return NotFoundError("volume_content_source.snapshot.snapshot_id: snapshot " +
                               snap_id->ToString() + " does not exist");
        }
        return snap.status();
      }
      if (!snap->ready_to_use()) {
        return UnavailableError("volume_content_source.snapshot.snapshot_id: snapshot " +
                                snap_id->ToString() + " is not ready to use yet");
      }
      source_device = d->client;
      source_size = snap->size_bytes();
      source_what = "snapshot";
      from_snapshot = snap_id->name;
    } else if (src.has_volume()) {
      auto sid = ParseVolumeId(src.volume().volume_id());
      if (!sid.ok()) {
        return sid.status().WithContext("volume_content_source.volume.volume_id");
      }
      auto sdev = DeviceOf(*sid);
      if (!sdev.ok()) return sdev.status();
      std::vector<Hop> hops;
      Status found = Follow(*sid, *sdev, &hops);
      if (!found.ok()) {
        if (found.code() == StatusCode::kNotFound) {
          return NotFoundError("volume_content_source.volume.volume_id: volume " + sid->ToString() +
                               " does not exist");
        }
        return found;
      }
      // On the device that holds the source now (a device it moved to may be one this
      // driver knows only by address).
      source_device = hops.back().device;
      source_size = hops.back().lun.size_bytes();
      source_what = "volume";
      clone_from = sid->lun;
    } else {
      return InvalidArgumentError("volume_content_source: neither a volume nor a snapshot");
    }
    if (!params->device.empty() && params->device != source_device->name()) {
      return InvalidArgumentError("parameters.device: a volume made from a " + source_what +
                                  " is made on the " + source_what + "'s device (" +
                                  source_device->name() + ")");
    }
    if (range != nullptr && range->limit_bytes() > 0 &&
        static_cast<uint64_t>(range->limit_bytes()) < source_size) {
      return OutOfRangeError("capacity_range.limit_bytes " + std::to_string(range->limit_bytes()) +
                             " is less than the source " + source_what + "'s " +
                             std::to_string(source_size) + " bytes");
    }
    if (range == nullptr || static_cast<uint64_t>(range->required_bytes()) < source_size) {
      *size = std::max<uint64_t>(range == nullptr ? 0 : *size, source_size);
    }
    candidates = {DeviceInfo{source_device, ZoneOf(source_device), "", ""}};
  }
  if (!params->device.empty() && !source_device) {
    auto d = devices_->Find(params->device);
    if (!d) {
      return InvalidArgumentError("parameters.device: '" + params->device +
                                  "' is not a device of this driver");
    }
    candidates = {*d};
  }

  const v1::TopologyRequirement* topology =
      req.has_accessibility_requirements() ? &req.accessibility_requirements() : nullptr;

  const std::string lun_name = LunNameFor(req.name());
  InFlightGuard guard(&in_flight_, lun_name);
  STRATA_RETURN_IF_ERROR(guard.status());

  // Idempotency across devices: a LUN of this name on any candidate is the volume (on a
  // device it moved from, the volume keeps that device's id). A device that cannot be
  // asked might hold it, so creating elsewhere could make a second copy: fail
  // (UNAVAILABLE) and let the CO retry. Devices refusing new volumes are asked too.
  for (const auto& d : candidates) {
    std::vector<Hop> hops;
    Status found = Follow(VolumeId{d.client->name(), lun_name}, d.client, &hops);
    if (found.ok()) {
      const sv1::Lun& lun = hops.back().lun;
      const std::string zone = ZoneOf(hops.back().device);
      if (!SizeFits(lun.size_bytes(), range)) {
        return AlreadyExistsError("volume '" + req.name() + "' exists with " +
                                  std::to_string(lun.size_bytes()) +
                                  " bytes, outside the requested capacity_range");
      }
      if ((params->tier != sv1::TIER_CLASS_UNSPECIFIED && TargetTier(lun) != params->tier) ||
          lun.dedup() != params->dedup || lun.owner() != params->owner) {
        return AlreadyExistsError("volume '" + req.name() +
                                  "' exists with a different tier, dedup or owner");
      }
      if (!ZoneAllowed(zone, topology)) {
        return AlreadyExistsError("volume '" + req.name() + "' exists in zone " + zone +
                                  ", outside accessibility_requirements.requisite");
      }
      FillVolume(d.client->name(), zone, lun, resp->mutable_volume());
      if (req.has_volume_content_source()) {
        *resp->mutable_volume()->mutable_content_source() = req.volume_content_source();
      }
      return Status::Ok();
    }
    if (found.code() != StatusCode::kNotFound || !hops.empty()) return found;
  }

  // Placement: among devices that take new volumes, in a requisite zone, whose tier has
  // the free space: the most preferred zone, then the most free space, then the name.
  Placement place = Place(candidates, params->tier, *size, topology);
  DeviceClientPtr best = place.best;
  std::string best_zone = place.zone;
  DeviceClientPtr move_to;  // a clone or restore made on its source's device, then moved here
  if (!best && source_device && place.short_of_space) {
    std::vector<DeviceInfo> others;
    const std::string source_zone = ZoneOf(source_device);
    for (auto& d : devices_->Devices()) {
      // Same zone: the volume's topology is its source device's zone from the start.
      if (d.client != source_device && d.zone == source_zone && !d.client->address().empty()) {
        others.push_back(std::move(d));
      }
    }
    Placement elsewhere = Place(others, params->tier, *size, topology);
    if (elsewhere.best) {
      best = source_device;
      best_zone = source_zone;
      move_to = elsewhere.best;
    } else {
      place.why_not += elsewhere.why_not;
      if (others.empty()) place.why_not += "; no other device in zone '" + source_zone + "'";
      place.all_unreachable = place.all_unreachable && elsewhere.all_unreachable;
    }
  }
  if (!best) {
    const std::string msg =
        "no device can hold " + std::to_string(*size) + " bytes" +
        (candidates.empty() ? std::string(": no devices known") : place.why_not);
    return place.all_unreachable ? UnavailableError(msg) : ResourceExhaustedError(msg);
  }

  sv1::CreateLunRequest create;
  create.set_name(lun_name);
  create.set_size_bytes(*size);
  // A clone starts on its source's tier (the device's rule); a restore may name another tier
  // of the device (the device starts that move itself). Moving to another device, the tier is
  // the target's.
  const bool tier_after = !clone_from.empty() || move_to;
  create.set_tier(tier_after ? sv1::TIER_CLASS_UNSPECIFIED : params->tier);
  create.set_dedup(params->dedup);
  create.set_owner(params->owner);
  create.set_clone_from(clone_from);
  create.set_from_snapshot(from_snapshot);
  for (const auto& [k, v] : params->metadata) (*create.mutable_metadata())[k] = v;
  create.mutable_access();  // set and empty: nobody may connect until published
  auto lun = best->CreateLun(create);
  if (!lun.ok()) return lun.status();
  if (move_to ||
      (tier_after && params->tier != sv1::TIER_CLASS_UNSPECIFIED && lun->tier() != params->tier)) {
    sv1::MigrateLunRequest migrate;
    migrate.set_name(lun_name);
    migrate.set_to_tier(params->tier);
    if (move_to) migrate.set_to_device(move_to->address());
    auto started = best->MigrateLun(migrate);
    if (!started.ok()) {
      // Nothing half-made: the LUN goes, the CO retries.
      Status undo = best->DeleteLun(lun_name);
      if (!undo.ok() && undo.code() != StatusCode::kNotFound) {
        spdlog::warn("CreateVolume: '{}': {} left on {}: {}", req.name(), lun_name, best->name(),
                     undo.message());
      }
      return started.status().WithContext(
          move_to ? "moving the new volume to device " + move_to->name()
                  : "moving the new volume to tier " + std::string(TierName(params->tier)));
    }
    *lun->mutable_migration() = *started;
  }
  spdlog::info("CreateVolume: '{}' is {}/{} ({} bytes{}{}{})", req.name(), best->name(), lun_name,
               lun->size_bytes(), clone_from.empty() ? "" : ", a clone of " + clone_from,
               from_snapshot.empty() ? "" : ", restored from snapshot " + from_snapshot,
               move_to ? ", moving to device " + move_to->name() : "");
  FillVolume(best->name(), best_zone, *lun, resp->mutable_volume());
  if (req.has_volume_content_source()) {
    *resp->mutable_volume()->mutable_content_source() = req.volume_content_source();
  }
  return Status::Ok();
}

ControllerServer::Placement ControllerServer::Place(const std::vector<DeviceInfo>& candidates,
                                                    sv1::TierClass tier_class, uint64_t size,
                                                    const v1::TopologyRequirement* topology) {
  Placement out;
  out.all_unreachable = !candidates.empty();
  uint64_t best_free = 0;
  int best_preference = 0;
  for (const auto& info : candidates) {
    const DeviceClientPtr& d = info.client;
    if (!info.refusal.empty()) {
      out.why_not += "; device " + d->name() + " takes no new volumes: " + info.refusal;
      out.all_unreachable = false;
      continue;
    }
    if (!ZoneAllowed(info.zone, topology)) {
      out.why_not += "; device " + d->name() + " is not in a requisite zone";
      out.all_unreachable = false;
      continue;
    }
    auto st = d->GetDeviceStatus();
    if (!st.ok()) {
      out.why_not += "; " + st.status().message();
      if (!IsUnreachable(st.status())) out.all_unreachable = false;
      continue;
    }
    out.all_unreachable = false;
    if (st->state() == sv1::DEVICE_STATE_MAINTENANCE) {
      out.why_not += "; device " + d->name() + " is in maintenance";
      continue;
    }
    const sv1::TierStatus* tier = FindTier(*st, tier_class);
    if (tier == nullptr || FreeBytes(*tier) < size) {
      out.why_not +=
          "; device " + d->name() + " has no " +
          std::string(tier_class == sv1::TIER_CLASS_UNSPECIFIED ? "tier" : TierName(tier_class)) +
          " tier with " + std::to_string(size) + " bytes free";
      out.short_of_space = true;
      continue;
    }
    const int preference = ZonePreference(info.zone, topology);
    const uint64_t free = FreeBytes(*tier);
    // Candidates come ordered by name: on a tie the first name wins.
    if (!out.best || preference < best_preference ||
        (preference == best_preference && free > best_free)) {
      out.best = d;
      out.zone = info.zone;
      best_free = free;
      best_preference = preference;
    }
  }
  return out;
}

// --- DeleteVolume ------------------------------------------------------------------

Status ControllerServer::Delete(const v1::DeleteVolumeRequest& req) {
  auto id = ParseVolumeId(req.volume_id());
  if (!id.ok()) {
    // A volume id we never produced names no volume: already deleted.
    return id.status().code() == StatusCode::kNotFound ? Status::Ok() : id.status();
  }
  auto device = DeviceOf(*id);
  if (!device.ok()) return Status::Ok();
  InFlightGuard guard(&in_flight_, id->lun);
  STRATA_RETURN_IF_ERROR(guard.status());
  // The holder first, then the stubs back to the named device: a retry after a partial
  // delete still finds the way to what is left.
  std::vector<Hop> hops;
  Status found = Follow(*id, *device, &hops);
  if (!found.ok() && found.code() != StatusCode::kNotFound) return found;
  if (found.ok() && hops.back().lun.access().allowed_clients_size() > 0) {
    return FailedPreconditionError("volume " + id->ToString() +
                                   " is still published (access list not empty)");
  }
  for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
    Status s = it->device->DeleteLun(id->lun);
    if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
  }
  return Status::Ok();
}

// --- ControllerPublishVolume / ControllerUnpublishVolume ---------------------------

Status ControllerServer::Publish(const v1::ControllerPublishVolumeRequest& req,
                                 v1::ControllerPublishVolumeResponse* resp) {
  // The spec's order: malformed requests (INVALID_ARGUMENT), then a volume that does not
  // exist, then a node that does not exist (both NOT_FOUND), then conflicts
  // (FAILED_PRECONDITION).
  if (req.volume_id().empty()) return InvalidArgumentError("volume_id: required");
  if (req.node_id().empty()) return InvalidArgumentError("node_id: required");
  if (!req.has_volume_capability()) return InvalidArgumentError("volume_capability: required");
  STRATA_RETURN_IF_ERROR(ValidateCapability(req.volume_capability(), "volume_capability"));
  auto id = ParseVolumeId(req.volume_id());
  if (!id.ok()) return id.status();
  auto device = DeviceOf(*id);
  if (!device.ok()) return device.status();
  InFlightGuard guard(&in_flight_, id->lun);
  STRATA_RETURN_IF_ERROR(guard.status());

  std::vector<Hop> hops;
  STRATA_RETURN_IF_ERROR(Follow(*id, *device, &hops));
  const DeviceClientPtr holder = hops.back().device;
  Result<sv1::Lun> lun = hops.back().lun;
  auto node = ParseNodeId(req.node_id());
  if (!node.ok()) return node.status();
  if (IsSingleNode(req.volume_capability().access_mode().mode())) {
    // Published elsewhere: another node recorded, or (a device without records, a list set
    // by hand) another client on the access list.
    std::string other;
    for (const auto& p : lun->publications()) {
      if (p.node_id() != req.node_id()) other = p.node_id();
    }
    if (other.empty() && !Contains(*lun, node->ip) && lun->access().allowed_clients_size() > 0) {
      other = lun->access().allowed_clients(0);
    }
    if (!other.empty()) {
      return FailedPreconditionError(
          "volume " + id->ToString() + " is " +
          v1::VolumeCapability_AccessMode_Mode_Name(req.volume_capability().access_mode().mode()) +
          " and already published to " + other);
    }
  }
  // The device records the node id with the access entry it needs (ListVolumes reports it);
  // a device older than PublishLun gets the access list change alone. Recorded but off the
  // list (a list replaced by hand): published again, which puts the entry back.
  if (!Recorded(*lun, req.node_id(), node->ip) || !Contains(*lun, node->ip)) {
    auto published = holder->PublishLun(id->lun, req.node_id(), {node->ip});
    if (published.ok()) {
      lun = std::move(published);
    } else if (!IsUnimplemented(published.status())) {
      return published.status();
    } else if (!Contains(*lun, node->ip)) {
      std::vector<std::string> clients(lun->access().allowed_clients().begin(),
                                       lun->access().allowed_clients().end());
      clients.push_back(node->ip);
      lun = holder->SetLunAccess(id->lun, clients);
      if (!lun.ok()) return lun.status();
    }
  }
  auto& ctx = *resp->mutable_publish_context();
  ctx["device"] = id->device;
  ctx["wwn"] = lun->wwn();
  ctx["exportName"] = lun->export_name().empty() ? lun->name() : lun->export_name();
  ctx["portals"] = JoinPortals(*lun);
  // Where the node asks whether the LUN has moved to another device: the holder, whose
  // portals these are.
  if (std::string a = holder->address(); !a.empty()) ctx["deviceAddress"] = a;
  // NBD access lists have no read-only clients: the node sets the device read-only.
  ctx["readonly"] = req.readonly() ? "true" : "false";
  return Status::Ok();
}

Status ControllerServer::Unpublish(const v1::ControllerUnpublishVolumeRequest& req) {
  if (req.volume_id().empty()) return InvalidArgumentError("volume_id: required");
  std::string ip;
  if (!req.node_id().empty()) {
    auto node = ParseNodeId(req.node_id());
    // A node id we cannot have published to: nothing to revoke.
    if (!node.ok()) return Status::Ok();
    ip = node->ip;
  }
  // The spec: a volume or node that cannot be found is unpublished already.
  auto id = ParseVolumeId(req.volume_id());
  if (!id.ok()) return Status::Ok();
  auto device = DeviceOf(*id);
  if (!device.ok()) return Status::Ok();
  InFlightGuard guard(&in_flight_, id->lun);
  STRATA_RETURN_IF_ERROR(guard.status());

  // Access goes off the holder and off every stub on the way (a node published before the
  // move is on the source's list).
  std::vector<Hop> hops;
  Status found = Follow(*id, *device, &hops);
  if (!found.ok() && found.code() != StatusCode::kNotFound) return found;
  for (const Hop& h : hops) {
    if (!ip.empty()) {
      if (!Contains(h.lun, ip) && !HasPublication(h.lun, req.node_id())) continue;
    } else if (h.lun.access().allowed_clients_size() == 0 && h.lun.publications_size() == 0) {
      continue;  // empty node_id: unpublish from every node
    }
    std::vector<std::string> entries;
    if (!ip.empty()) entries.push_back(ip);
    auto updated = h.device->UnpublishLun(id->lun, req.node_id(), entries);
    if (!updated.ok() && IsUnimplemented(updated.status())) {
      // A device older than UnpublishLun: the access list alone.
      std::vector<std::string> clients;
      if (!ip.empty()) {
        for (const auto& c : h.lun.access().allowed_clients()) {
          if (c != ip) clients.push_back(c);
        }
      }
      updated = h.device->SetLunAccess(id->lun, clients);
    }
    if (!updated.ok() && updated.status().code() != StatusCode::kNotFound) {
      return updated.status();
    }
  }
  return Status::Ok();
}

// --- ValidateVolumeCapabilities ----------------------------------------------------

Status ControllerServer::Validate(const v1::ValidateVolumeCapabilitiesRequest& req,
                                  v1::ValidateVolumeCapabilitiesResponse* resp) {
  if (req.volume_id().empty()) return InvalidArgumentError("volume_id: required");
  if (req.volume_capabilities().empty()) {
    return InvalidArgumentError("volume_capabilities: required");
  }
  auto id = ParseVolumeId(req.volume_id());
  if (!id.ok()) return id.status();
  auto device = DeviceOf(*id);
  if (!device.ok()) return device.status();
  std::vector<Hop> hops;
  STRATA_RETURN_IF_ERROR(Follow(*id, *device, &hops));

  Status caps = ValidateCapabilities(req.volume_capabilities(), "volume_capabilities");
  if (!caps.ok()) {
    resp->set_message(caps.message());  // not confirmed: the spec's answer, not an error
    return Status::Ok();
  }
  auto params = ParseCreateParams(req.parameters());
  if (!params.ok()) {
    resp->set_message(params.status().message());
    return Status::Ok();
  }
  auto mutable_params = ParseMutableParams(req.mutable_parameters(), "mutable_parameters");
  if (!mutable_params.ok()) {
    resp->set_message(mutable_params.status().message());
    return Status::Ok();
  }
  auto* confirmed = resp->mutable_confirmed();
  *confirmed->mutable_volume_context() = req.volume_context();
  *confirmed->mutable_volume_capabilities() = req.volume_capabilities();
  *confirmed->mutable_parameters() = req.parameters();
  *confirmed->mutable_mutable_parameters() = req.mutable_parameters();
  return Status::Ok();
}

// --- ListVolumes -------------------------------------------------------------------

Status ControllerServer::List(const v1::ListVolumesRequest& req, v1::ListVolumesResponse* resp) {
  if (req.max_entries() < 0) return InvalidArgumentError("max_entries: must not be negative");
  // starting_token is the volume id the page starts at, so paging stays stable while
  // volumes come and go; anything else is not a token we gave out (ABORTED, per spec).
  if (!req.starting_token().empty() && !ParseVolumeId(req.starting_token()).ok()) {
    return AbortedError("starting_token '" + req.starting_token() + "' is not valid");
  }
  const std::vector<DeviceInfo> devices = devices_->Devices();
  std::vector<std::vector<sv1::Lun>> luns_of(devices.size());
  // LUNs a stub elsewhere points at: (holder address, LUN name). They are listed under the
  // id of the device the volume was created on, as the CO knows them.
  std::set<std::pair<std::string, std::string>> moved_in;
  for (size_t i = 0; i < devices.size(); ++i) {
    auto luns = devices[i].client->ListLuns();
    if (!luns.ok()) return luns.status();  // a partial list would look like deletions
    for (auto& lun : *luns) {
      if (lun.name().rfind(kLunPrefix, 0) != 0) continue;
      if (lun.incoming()) continue;  // a device move's copy, not yet accepted: no volume
      if (!lun.moved_to().empty()) moved_in.emplace(lun.moved_to(), lun.name());
      luns_of[i].push_back(std::move(lun));
    }
  }
  std::map<std::string, v1::ListVolumesResponse::Entry> all;  // by volume id: a stable order
  for (size_t i = 0; i < devices.size(); ++i) {
    const DeviceClientPtr& d = devices[i].client;
    for (const auto& lun : luns_of[i]) {
      if (!d->address().empty() && moved_in.count({d->address(), lun.name()})) continue;
      v1::ListVolumesResponse::Entry e;
      if (lun.moved_to().empty()) {
        FillVolume(d->name(), devices[i].zone, lun, e.mutable_volume());
        FillPublishedNodes({&lun}, e.mutable_status());
      } else {
        std::vector<Hop> hops;
        const VolumeId id{d->name(), lun.name()};
        Status found = Follow(id, d, &hops);
        if (found.code() == StatusCode::kNotFound && !hops.empty()) continue;  // being deleted
        if (!found.ok()) return found;
        FillVolume(d->name(), ZoneOf(hops.back().device), hops.back().lun, e.mutable_volume());
        std::vector<const sv1::Lun*> chain;
        for (const Hop& h : hops) chain.push_back(&h.lun);
        FillPublishedNodes(chain, e.mutable_status());
      }
      std::string key = e.volume().volume_id();
      all.emplace(std::move(key), std::move(e));
    }
  }
  auto it = req.starting_token().empty() ? all.begin() : all.lower_bound(req.starting_token());
  int n = 0;
  for (; it != all.end(); ++it) {
    if (req.max_entries() > 0 && n == req.max_entries()) {
      resp->set_next_token(it->first);
      break;
    }
    *resp->add_entries() = it->second;
    ++n;
  }
  return Status::Ok();
}

// --- GetCapacity -------------------------------------------------------------------

Status ControllerServer::Capacity(const v1::GetCapacityRequest& req,
                                  v1::GetCapacityResponse* resp) {
  if (!req.volume_capabilities().empty() &&
      !ValidateCapabilities(req.volume_capabilities(), "volume_capabilities").ok()) {
    resp->set_available_capacity(0);  // no capacity for volumes we cannot make
    return Status::Ok();
  }
  auto params = ParseCreateParams(req.parameters());
  if (!params.ok()) return params.status();
  // accessible_topology: the capacity reachable from that zone.
  std::string zone;
  if (req.has_accessible_topology()) {
    auto it = req.accessible_topology().segments().find(kZoneKey);
    if (it != req.accessible_topology().segments().end()) zone = it->second;
  }
  uint64_t available = 0;
  uint64_t largest = 0;
  for (const auto& info : devices_->Devices()) {
    const DeviceClientPtr& d = info.client;
    if (!info.refusal.empty()) continue;  // takes no new volumes
    if (!params->device.empty() && d->name() != params->device) continue;
    if (!zone.empty() && !info.zone.empty() && info.zone != zone) continue;
    auto st = d->GetDeviceStatus();
    if (!st.ok() || st->state() == sv1::DEVICE_STATE_MAINTENANCE) continue;
    const sv1::TierStatus* tier = FindTier(*st, params->tier);
    if (tier == nullptr) continue;
    available += FreeBytes(*tier);
    largest = std::max<uint64_t>(largest, tier->capacity_bytes());
  }
  resp->set_available_capacity(static_cast<int64_t>(available));
  resp->mutable_maximum_volume_size()->set_value(static_cast<int64_t>(largest));
  resp->mutable_minimum_volume_size()->set_value(static_cast<int64_t>(kSizeAlignment));
  return Status::Ok();
}

// --- ControllerExpandVolume --------------------------------------------------------

Status ControllerServer::Expand(const v1::ControllerExpandVolumeRequest& req,
                                v1::ControllerExpandVolumeResponse* resp) {
  if (req.volume_id().empty()) return InvalidArgumentError("volume_id: required");
  if (!req.has_capacity_range()) return InvalidArgumentError("capacity_range: required");
  if (req.has_volume_capability()) {
    STRATA_RETURN_IF_ERROR(ValidateCapability(req.volume_capability(), "volume_capability"));
  }
  // A malformed range is INVALID_ARGUMENT whatever the volume; a size we cannot make
  // (OUT_OF_RANGE) only matters for a volume that exists.
  auto size = SizeForRange(&req.capacity_range());
  if (!size.ok() && size.status().code() == StatusCode::kInvalidArgument) return size.status();
  auto id = ParseVolumeId(req.volume_id());
  if (!id.ok()) return id.status();
  auto device = DeviceOf(*id);
  if (!device.ok()) return device.status();
  InFlightGuard guard(&in_flight_, id->lun);
  STRATA_RETURN_IF_ERROR(guard.status());

  std::vector<Hop> hops;
  STRATA_RETURN_IF_ERROR(Follow(*id, *device, &hops));
  Result<sv1::Lun> lun = hops.back().lun;
  if (!size.ok()) return size.status();
  if (lun->size_bytes() < *size) {
    lun = hops.back().device->ResizeLun(id->lun, *size);
    if (!lun.ok()) return lun.status();
  } else if (!SizeFits(lun->size_bytes(), &req.capacity_range())) {
    return OutOfRangeError("capacity_range: the volume has " + std::to_string(lun->size_bytes()) +
                           " bytes and cannot shrink");
  }
  resp->set_capacity_bytes(static_cast<int64_t>(lun->size_bytes()));
  // Always: a staged volume's kernel nbd devices keep the size they connected with
  // until NodeExpandVolume reconnects them (and a file system must be grown there).
  resp->set_node_expansion_required(true);
  return Status::Ok();
}

// --- ControllerGetVolume -----------------------------------------------------------

Status ControllerServer::GetVolume(const v1::ControllerGetVolumeRequest& req,
                                   v1::ControllerGetVolumeResponse* resp) {
  if (req.volume_id().empty()) return InvalidArgumentError("volume_id: required");
  auto id = ParseVolumeId(req.volume_id());
  if (!id.ok()) return id.status();
  auto device = DeviceOf(*id);
  if (!device.ok()) return device.status();
  std::vector<Hop> hops;
  Status found = Follow(*id, *device, &hops);
  auto* condition = resp->mutable_status()->mutable_volume_condition();
  if (!found.ok()) {
    if (!IsUnreachable(found)) return found;
    // The LUN may be fine, but no node can reach it through this device right now.
    resp->mutable_volume()->set_volume_id(id->ToString());
    condition->set_abnormal(true);
    condition->set_message(found.message());
    return Status::Ok();
  }
  const Hop& holder = hops.back();
  FillVolume(id->device, ZoneOf(holder.device), holder.lun, resp->mutable_volume());
  std::vector<const sv1::Lun*> chain;
  for (const Hop& h : hops) chain.push_back(&h.lun);
  FillPublishedNodes(chain, resp->mutable_status());
  condition->set_abnormal(false);
  condition->set_message(
      hops.size() == 1
          ? "ok"
          : "moved to " + hops[0].lun.moved_to() +
                (hops.size() > 2 ? " and on to " + holder.device->address() : std::string()));
  return Status::Ok();
}

// --- ControllerModifyVolume --------------------------------------------------------

Status ControllerServer::Modify(const v1::ControllerModifyVolumeRequest& req) {
  if (req.volume_id().empty()) return InvalidArgumentError("volume_id: required");
  if (req.mutable_parameters().empty()) return InvalidArgumentError("mutable_parameters: required");
  auto want = ParseMutableParams(req.mutable_parameters(), "mutable_parameters");
  if (!want.ok()) return want.status();
  auto id = ParseVolumeId(req.volume_id());
  if (!id.ok()) return id.status();
  auto device = DeviceOf(*id);
  if (!device.ok()) return device.status();
  InFlightGuard guard(&in_flight_, id->lun);
  STRATA_RETURN_IF_ERROR(guard.status());

  std::vector<Hop> hops;
  STRATA_RETURN_IF_ERROR(Follow(*id, *device, &hops));
  const DeviceClientPtr& holder = hops.back().device;
  const sv1::Lun& lun = hops.back().lun;
  const sv1::Migration& move = lun.migration();
  const bool moving = move.state() == sv1::MIGRATION_STATE_RUNNING;
  // A running move to the asked tier of this device is the change under way (a retry after
  // the first call started it).
  const bool tier_done =
      !want->tier || (moving ? move.to_device().empty() && move.to_tier() == *want->tier
                             : lun.tier() == *want->tier);
  const bool dedup_done = !want->dedup || lun.dedup() == *want->dedup;
  if (tier_done && dedup_done) return Status::Ok();
  if (moving && (!tier_done || !dedup_done)) {
    // The device takes no other change of a moving LUN: the CO retries (ABORTED).
    return AbortedError("volume " + id->ToString() + " is moving " +
                        (move.to_device().empty()
                             ? "to tier " + std::string(TierName(move.to_tier()))
                             : "to device " + move.to_device()) +
                        "; retry once the move is done");
  }

  // Checked before anything changes, so a refused tier leaves dedup as it was.
  if (!tier_done) {
    auto st = holder->GetDeviceStatus();
    if (!st.ok()) return st.status();
    const sv1::TierStatus* tier = nullptr;
    for (const auto& t : st->tiers()) {
      if (t.class_() == *want->tier) tier = &t;
    }
    if (tier == nullptr) {
      return InvalidArgumentError("mutable_parameters.tier: device " + holder->name() +
                                  ", which holds volume " + id->ToString() + ", has no " +
                                  std::string(TierName(*want->tier)) + " tier");
    }
    if (FreeBytes(*tier) < lun.size_bytes()) {
      return ResourceExhaustedError(
          "mutable_parameters.tier: the " + std::string(TierName(*want->tier)) +
          " tier of device " + holder->name() + " has " + std::to_string(FreeBytes(*tier)) +
          " bytes free, the volume needs " + std::to_string(lun.size_bytes()));
    }
  }
  if (!dedup_done) {
    // Turning dedup on folds what is written already, so the whole volume is de-duplicated.
    auto changed = holder->SetLunDedup(id->lun, *want->dedup, /*fold_existing=*/*want->dedup);
    if (!changed.ok()) return changed.status().WithContext("mutable_parameters.dedup");
  }
  if (!tier_done) {
    sv1::MigrateLunRequest migrate;
    migrate.set_name(id->lun);
    migrate.set_to_tier(*want->tier);
    auto started = holder->MigrateLun(migrate);
    if (!started.ok()) {
      if (!dedup_done) {  // nothing half-applied: dedup back as it was
        auto undone = holder->SetLunDedup(id->lun, lun.dedup(), false);
        if (!undone.ok()) {
          spdlog::warn("ControllerModifyVolume: {}: dedup not restored to {}: {}", id->ToString(),
                       lun.dedup(), undone.status().message());
        }
      }
      return started.status().WithContext("mutable_parameters.tier");
    }
  }
  spdlog::info("ControllerModifyVolume: {} on device {}:{}{}", id->ToString(), holder->name(),
               tier_done ? "" : " moving to tier " + std::string(TierName(*want->tier)),
               dedup_done ? "" : std::string(" dedup ") + (*want->dedup ? "on" : "off"));
  return Status::Ok();
}

// --- gRPC entry points -------------------------------------------------------------

grpc::Status ControllerServer::CreateVolume(grpc::ServerContext*,
                                            const v1::CreateVolumeRequest* request,
                                            v1::CreateVolumeResponse* response) {
  return LoggedCall("CreateVolume", *request, [&] { return Create(*request, response); });
}

grpc::Status ControllerServer::DeleteVolume(grpc::ServerContext*,
                                            const v1::DeleteVolumeRequest* request,
                                            v1::DeleteVolumeResponse*) {
  return LoggedCall("DeleteVolume", *request, [&] { return Delete(*request); });
}

grpc::Status ControllerServer::ControllerPublishVolume(
    grpc::ServerContext*, const v1::ControllerPublishVolumeRequest* request,
    v1::ControllerPublishVolumeResponse* response) {
  return LoggedCall("ControllerPublishVolume", *request,
                    [&] { return Publish(*request, response); });
}

grpc::Status ControllerServer::ControllerUnpublishVolume(
    grpc::ServerContext*, const v1::ControllerUnpublishVolumeRequest* request,
    v1::ControllerUnpublishVolumeResponse*) {
  return LoggedCall("ControllerUnpublishVolume", *request, [&] { return Unpublish(*request); });
}

grpc::Status ControllerServer::ValidateVolumeCapabilities(
    grpc::ServerContext*, const v1::ValidateVolumeCapabilitiesRequest* request,
    v1::ValidateVolumeCapabilitiesResponse* response) {
  return LoggedCall("ValidateVolumeCapabilities", *request,
                    [&] { return Validate(*request, response); });
}

grpc::Status ControllerServer::ListVolumes(grpc::ServerContext*,
                                           const v1::ListVolumesRequest* request,
                                           v1::ListVolumesResponse* response) {
  return LoggedCall("ListVolumes", *request, [&] { return List(*request, response); });
}

grpc::Status ControllerServer::GetCapacity(grpc::ServerContext*,
                                           const v1::GetCapacityRequest* request,
                                           v1::GetCapacityResponse* response) {
  return LoggedCall("GetCapacity", *request, [&] { return Capacity(*request, response); });
}

grpc::Status ControllerServer::ControllerGetCapabilities(
    grpc::ServerContext*, const v1::ControllerGetCapabilitiesRequest* request,
    v1::ControllerGetCapabilitiesResponse* response) {
  return LoggedCall("ControllerGetCapabilities", *request, [&] {
    using Rpc = v1::ControllerServiceCapability::RPC;
    for (auto type :
         {Rpc::CREATE_DELETE_VOLUME, Rpc::PUBLISH_UNPUBLISH_VOLUME, Rpc::LIST_VOLUMES,
          Rpc::GET_CAPACITY, Rpc::EXPAND_VOLUME, Rpc::GET_VOLUME, Rpc::VOLUME_CONDITION,
          Rpc::CLONE_VOLUME, Rpc::SINGLE_NODE_MULTI_WRITER, Rpc::MODIFY_VOLUME,
          Rpc::CREATE_DELETE_SNAPSHOT, Rpc::LIST_SNAPSHOTS, Rpc::LIST_VOLUMES_PUBLISHED_NODES}) {
      response->add_capabilities()->mutable_rpc()->set_type(type);
    }
    return Status::Ok();
  });
}

grpc::Status ControllerServer::ControllerExpandVolume(
    grpc::ServerContext*, const v1::ControllerExpandVolumeRequest* request,
    v1::ControllerExpandVolumeResponse* response) {
  return LoggedCall("ControllerExpandVolume", *request, [&] { return Expand(*request, response); });
}

grpc::Status ControllerServer::ControllerGetVolume(grpc::ServerContext*,
                                                   const v1::ControllerGetVolumeRequest* request,
                                                   v1::ControllerGetVolumeResponse* response) {
  return LoggedCall("ControllerGetVolume", *request, [&] { return GetVolume(*request, response); });
}

grpc::Status ControllerServer::ControllerModifyVolume(
    grpc::ServerContext*, const v1::ControllerModifyVolumeRequest* request,
    v1::ControllerModifyVolumeResponse*) {
  return LoggedCall("ControllerModifyVolume", *request, [&] { return Modify(*request); });
}

}  // namespace strata::csi
