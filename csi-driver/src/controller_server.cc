#include "controller_server.h"

#include <algorithm>
#include <utility>

#include "call_logging.h"

namespace strata::csi {

namespace v1 = ::csi::v1;
namespace sv1 = ::strata::storage::v1;

namespace {

// Kubernetes' external-provisioner passes these through; they are not ours to check.
constexpr std::string_view kCoParameterPrefix = "csi.storage.k8s.io/";
// Passed with --extra-create-metadata: the volume's Kubernetes owner. Kept with the LUN as
// CreateLunRequest.metadata under the same keys; the PVC's namespace is the LUN's owner
// unless parameters.owner says otherwise.
constexpr std::string_view kPvcNameKey = "csi.storage.k8s.io/pvc/name";
constexpr std::string_view kPvcNamespaceKey = "csi.storage.k8s.io/pvc/namespace";
constexpr std::string_view kPvNameKey = "csi.storage.k8s.io/pv/name";

std::string JoinPortals(const sv1::Lun& lun) {
  std::string out;
  for (const auto& p : lun.portals()) {
    if (!out.empty()) out += ",";
    out += p;
  }
  return out;
}

// StorageClass parameters understood by CreateVolume.
struct CreateParams {
  sv1::TierClass tier = sv1::TIER_CLASS_UNSPECIFIED;
  bool dedup = false;
  std::string owner;
  std::string device;
  std::map<std::string, std::string> metadata;  // the kPvc*/kPv* keys given
};

Result<CreateParams> ParseCreateParams(const google::protobuf::Map<std::string, std::string>& p) {
  CreateParams out;
  for (const auto& [key, value] : p) {
    if (key == "tier") {
      auto t = ParseTier(value);
      if (!t.ok()) return t.status().WithContext("parameters.tier");
      out.tier = *t;
    } else if (key == "dedup") {
      if (value != "true" && value != "false") {
        return InvalidArgumentError("parameters.dedup: '" + value + "' is not true or false");
      }
      out.dedup = value == "true";
    } else if (key == "owner") {
      out.owner = value;
    } else if (key == "device") {
      out.device = value;
    } else if (key == kPvcNameKey || key == kPvcNamespaceKey || key == kPvNameKey) {
      out.metadata[key] = value;
    } else if (key.rfind(kCoParameterPrefix, 0) != 0) {
      return InvalidArgumentError("parameters." + key +
                                  ": unknown parameter (tier, dedup, owner, device)");
    }
  }
  if (out.owner.empty()) {
    auto ns = out.metadata.find(std::string(kPvcNamespaceKey));
    if (ns != out.metadata.end()) out.owner = ns->second;
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

bool Contains(const sv1::Lun& lun, const std::string& client) {
  const auto& c = lun.access().allowed_clients();
  return std::find(c.begin(), c.end(), client) != c.end();
}

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

  std::vector<DeviceInfo> candidates = devices_->Devices();
  // A clone: made on the source's device by the device itself (shared blocks, nothing
  // copied), on the source's tier, at least the source's size.
  std::string clone_from;
  if (req.has_volume_content_source()) {
    const auto& src = req.volume_content_source();
    if (src.has_snapshot()) {
      return InvalidArgumentError(
          "volume_content_source.snapshot: snapshots are not supported (clone a volume)");
    }
    if (!src.has_volume()) {
      return InvalidArgumentError("volume_content_source: neither a volume nor a snapshot");
    }
    auto sid = ParseVolumeId(src.volume().volume_id());
    if (!sid.ok()) {
      return sid.status().WithContext("volume_content_source.volume.volume_id");
    }
    auto sdev = DeviceOf(*sid);
    if (!sdev.ok()) return sdev.status();
    if (!params->device.empty() && params->device != sid->device) {
      return InvalidArgumentError("parameters.device: a clone is made on its source's device (" +
                                  sid->device + ")");
    }
    std::vector<Hop> hops;
    Status found = Follow(*sid, *sdev, &hops);
    if (!found.ok()) {
      if (found.code() == StatusCode::kNotFound) {
        return NotFoundError("volume_content_source.volume.volume_id: volume " + sid->ToString() +
                             " does not exist");
      }
      return found;
    }
    const sv1::Lun& slun = hops.back().lun;
    if (params->tier != sv1::TIER_CLASS_UNSPECIFIED && params->tier != slun.tier()) {
      return InvalidArgumentError("parameters.tier: a clone starts on its source's tier (" +
                                  std::string(TierName(slun.tier())) + ")");
    }
    if (range != nullptr && range->limit_bytes() > 0 &&
        static_cast<uint64_t>(range->limit_bytes()) < slun.size_bytes()) {
      return OutOfRangeError("capacity_range.limit_bytes " + std::to_string(range->limit_bytes()) +
                             " is less than the source volume's " +
                             std::to_string(slun.size_bytes()) + " bytes");
    }
    if (range == nullptr || static_cast<uint64_t>(range->required_bytes()) < slun.size_bytes()) {
      *size = std::max<uint64_t>(range == nullptr ? 0 : *size, slun.size_bytes());
    }
    // On the device that holds the source now (a device it moved to may be one this
    // driver knows only by address).
    const DeviceClientPtr& holder = hops.back().device;
    candidates = {DeviceInfo{holder, ZoneOf(holder), "", ""}};
    clone_from = sid->lun;
  }
  if (!params->device.empty() && clone_from.empty()) {
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
      if ((params->tier != sv1::TIER_CLASS_UNSPECIFIED && lun.tier() != params->tier) ||
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
  DeviceClientPtr best;
  std::string best_zone;
  uint64_t best_free = 0;
  int best_preference = 0;
  std::string why_not;
  bool all_unreachable = !candidates.empty();
  for (const auto& info : candidates) {
    const DeviceClientPtr& d = info.client;
    if (!info.refusal.empty()) {
      why_not += "; device " + d->name() + " takes no new volumes: " + info.refusal;
      all_unreachable = false;
      continue;
    }
    if (!ZoneAllowed(info.zone, topology)) {
      why_not += "; device " + d->name() + " is not in a requisite zone";
      all_unreachable = false;
      continue;
    }
    auto st = d->GetDeviceStatus();
    if (!st.ok()) {
      why_not += "; " + st.status().message();
      if (!IsUnreachable(st.status())) all_unreachable = false;
      continue;
    }
    all_unreachable = false;
    if (st->state() == sv1::DEVICE_STATE_MAINTENANCE) {
      why_not += "; device " + d->name() + " is in maintenance";
      continue;
    }
    const sv1::TierStatus* tier = FindTier(*st, params->tier);
    if (tier == nullptr || FreeBytes(*tier) < *size) {
      why_not += "; device " + d->name() + " has no " +
                 std::string(params->tier == sv1::TIER_CLASS_UNSPECIFIED ? "tier"
                                                                         : TierName(params->tier)) +
                 " tier with " + std::to_string(*size) + " bytes free";
      continue;
    }
    const int preference = ZonePreference(info.zone, topology);
    const uint64_t free = FreeBytes(*tier);
    // Candidates come ordered by name: on a tie the first name wins.
    if (!best || preference < best_preference ||
        (preference == best_preference && free > best_free)) {
      best = d;
      best_zone = info.zone;
      best_free = free;
      best_preference = preference;
    }
  }
  if (!best) {
    const std::string msg = "no device can hold " + std::to_string(*size) + " bytes" +
                            (candidates.empty() ? std::string(": no devices known") : why_not);
    return all_unreachable ? UnavailableError(msg) : ResourceExhaustedError(msg);
  }

  sv1::CreateLunRequest create;
  create.set_name(lun_name);
  create.set_size_bytes(*size);
  create.set_tier(params->tier);
  create.set_dedup(params->dedup);
  create.set_owner(params->owner);
  create.set_clone_from(clone_from);
  for (const auto& [k, v] : params->metadata) (*create.mutable_metadata())[k] = v;
  create.mutable_access();  // set and empty: nobody may connect until published
  auto lun = best->CreateLun(create);
  if (!lun.ok()) return lun.status();
  spdlog::info("CreateVolume: '{}' is {}/{} ({} bytes{})", req.name(), best->name(), lun_name,
               lun->size_bytes(), clone_from.empty() ? "" : ", a clone of " + clone_from);
  FillVolume(best->name(), best_zone, *lun, resp->mutable_volume());
  if (req.has_volume_content_source()) {
    *resp->mutable_volume()->mutable_content_source() = req.volume_content_source();
  }
  return Status::Ok();
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
  if (!Contains(*lun, node->ip)) {
    if (IsSingleNode(req.volume_capability().access_mode().mode()) &&
        lun->access().allowed_clients_size() > 0) {
      return FailedPreconditionError(
          "volume " + id->ToString() + " is " +
          v1::VolumeCapability_AccessMode_Mode_Name(req.volume_capability().access_mode().mode()) +
          " and already published to " + lun->access().allowed_clients(0));
    }
    std::vector<std::string> clients(lun->access().allowed_clients().begin(),
                                     lun->access().allowed_clients().end());
    clients.push_back(node->ip);
    lun = holder->SetLunAccess(id->lun, clients);
    if (!lun.ok()) return lun.status();
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
    std::vector<std::string> clients;
    if (!ip.empty()) {  // empty node_id: unpublish from every node
      if (!Contains(h.lun, ip)) continue;
      for (const auto& c : h.lun.access().allowed_clients()) {
        if (c != ip) clients.push_back(c);
      }
    } else if (h.lun.access().allowed_clients_size() == 0) {
      continue;
    }
    auto updated = h.device->SetLunAccess(id->lun, clients);
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
  auto* confirmed = resp->mutable_confirmed();
  *confirmed->mutable_volume_context() = req.volume_context();
  *confirmed->mutable_volume_capabilities() = req.volume_capabilities();
  *confirmed->mutable_parameters() = req.parameters();
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
      if (!lun.moved_to().empty()) moved_in.emplace(lun.moved_to(), lun.name());
      luns_of[i].push_back(std::move(lun));
    }
  }
  std::map<std::string, v1::Volume> all;  // by volume id: a stable order
  for (size_t i = 0; i < devices.size(); ++i) {
    const DeviceClientPtr& d = devices[i].client;
    for (const auto& lun : luns_of[i]) {
      if (!d->address().empty() && moved_in.count({d->address(), lun.name()})) continue;
      v1::Volume v;
      if (lun.moved_to().empty()) {
        FillVolume(d->name(), devices[i].zone, lun, &v);
      } else {
        std::vector<Hop> hops;
        const VolumeId id{d->name(), lun.name()};
        Status found = Follow(id, d, &hops);
        if (found.code() == StatusCode::kNotFound && !hops.empty()) continue;  // being deleted
        if (!found.ok()) return found;
        FillVolume(d->name(), ZoneOf(hops.back().device), hops.back().lun, &v);
      }
      all.emplace(v.volume_id(), std::move(v));
    }
  }
  auto it = req.starting_token().empty() ? all.begin() : all.lower_bound(req.starting_token());
  int n = 0;
  for (; it != all.end(); ++it) {
    if (req.max_entries() > 0 && n == req.max_entries()) {
      resp->set_next_token(it->first);
      break;
    }
    *resp->add_entries()->mutable_volume() = it->second;
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
  condition->set_abnormal(false);
  condition->set_message(
      hops.size() == 1
          ? "ok"
          : "moved to " + hops[0].lun.moved_to() +
                (hops.size() > 2 ? " and on to " + holder.device->address() : std::string()));
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
    for (auto type : {Rpc::CREATE_DELETE_VOLUME, Rpc::PUBLISH_UNPUBLISH_VOLUME, Rpc::LIST_VOLUMES,
                      Rpc::GET_CAPACITY, Rpc::EXPAND_VOLUME, Rpc::GET_VOLUME, Rpc::VOLUME_CONDITION,
                      Rpc::CLONE_VOLUME, Rpc::SINGLE_NODE_MULTI_WRITER}) {
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

}  // namespace strata::csi
