#include "controller_server.h"

#include <algorithm>
#include <utility>

#include "call_logging.h"

namespace strata::csi {

namespace v1 = ::csi::v1;
namespace sv1 = ::strata::storage::v1;

namespace {

constexpr std::chrono::milliseconds kStatusTimeout{2000};
// Kubernetes' external-provisioner passes these through; they are not ours to check.
constexpr std::string_view kCoParameterPrefix = "csi.storage.k8s.io/";

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
};

Result<CreateParams> ParseCreateParams(const google::protobuf::Map<std::string, std::string>& p) {
  CreateParams out;
  for (const auto& [key, value] : p) {
    if (key == "tier") {
      auto t = ParseTier(value);
      if (!t.ok()) return t.status();
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
    } else if (key.rfind(kCoParameterPrefix, 0) != 0) {
      return InvalidArgumentError("parameters." + key +
                                  ": unknown parameter (tier, dedup, owner, device)");
    }
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

ControllerServer::ControllerServer(std::vector<DeviceClientPtr> devices,
                                   std::map<std::string, std::string> zones)
    : devices_(std::move(devices)), zones_(std::move(zones)) {
  for (const auto& d : devices_) by_name_[d->name()] = d;
}

std::string ControllerServer::ZoneOf(const std::string& device) const {
  auto it = zones_.find(device);
  return it == zones_.end() ? "" : it->second;
}

Result<DeviceClientPtr> ControllerServer::DeviceOf(const VolumeId& id) const {
  auto it = by_name_.find(id.device);
  if (it == by_name_.end()) {
    return NotFoundError("volume_id '" + id.ToString() + "': no such volume (unknown device '" +
                         id.device + "')");
  }
  return it->second;
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

  std::vector<DeviceClientPtr> candidates = devices_;
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
    auto slun = (*sdev)->GetLun(sid->lun);
    if (!slun.ok()) {
      if (slun.status().code() == StatusCode::kNotFound) {
        return NotFoundError("volume_content_source.volume.volume_id: volume " + sid->ToString() +
                             " does not exist");
      }
      return slun.status();
    }
    if (params->tier != sv1::TIER_CLASS_UNSPECIFIED && params->tier != slun->tier()) {
      return InvalidArgumentError("parameters.tier: a clone starts on its source's tier (" +
                                  std::string(TierName(slun->tier())) + ")");
    }
    if (range != nullptr && range->limit_bytes() > 0 &&
        static_cast<uint64_t>(range->limit_bytes()) < slun->size_bytes()) {
      return OutOfRangeError("capacity_range.limit_bytes " + std::to_string(range->limit_bytes()) +
                             " is less than the source volume's " +
                             std::to_string(slun->size_bytes()) + " bytes");
    }
    if (range == nullptr || static_cast<uint64_t>(range->required_bytes()) < slun->size_bytes()) {
      *size = std::max<uint64_t>(range == nullptr ? 0 : *size, slun->size_bytes());
    }
    candidates = {*sdev};
    clone_from = sid->lun;
  }
  if (!params->device.empty() && clone_from.empty()) {
    auto it = by_name_.find(params->device);
    if (it == by_name_.end()) {
      return InvalidArgumentError("parameters.device: '" + params->device +
                                  "' is not a device of this driver");
    }
    candidates = {it->second};
  }

  const v1::TopologyRequirement* topology =
      req.has_accessibility_requirements() ? &req.accessibility_requirements() : nullptr;

  const std::string lun_name = LunNameFor(req.name());
  InFlightGuard guard(&in_flight_, lun_name);
  STRATA_RETURN_IF_ERROR(guard.status());

  // Idempotency across devices: a LUN of this name on any candidate is the volume. A
  // device that cannot be asked might hold it, so creating elsewhere could make a
  // second copy: fail (UNAVAILABLE) and let the CO retry.
  for (const auto& d : candidates) {
    auto lun = d->GetLun(lun_name);
    if (lun.ok()) {
      if (!SizeFits(lun->size_bytes(), range)) {
        return AlreadyExistsError("volume '" + req.name() + "' exists with " +
                                  std::to_string(lun->size_bytes()) +
                                  " bytes, outside the requested capacity_range");
      }
      if ((params->tier != sv1::TIER_CLASS_UNSPECIFIED && lun->tier() != params->tier) ||
          lun->dedup() != params->dedup || lun->owner() != params->owner) {
        return AlreadyExistsError("volume '" + req.name() +
                                  "' exists with a different tier, dedup or owner");
      }
      if (!ZoneAllowed(ZoneOf(d->name()), topology)) {
        return AlreadyExistsError("volume '" + req.name() + "' exists in zone " +
                                  ZoneOf(d->name()) +
                                  ", outside accessibility_requirements.requisite");
      }
      FillVolume(d->name(), ZoneOf(d->name()), *lun, resp->mutable_volume());
      if (req.has_volume_content_source()) {
        *resp->mutable_volume()->mutable_content_source() = req.volume_content_source();
      }
      return Status::Ok();
    }
    if (lun.status().code() != StatusCode::kNotFound) return lun.status();
  }

  // Placement: among online devices in a requisite zone whose tier can hold the size,
  // the most preferred zone, then the most free space.
  DeviceClientPtr best;
  uint64_t best_free = 0;
  int best_preference = 0;
  std::string why_not;
  for (const auto& d : candidates) {
    if (!ZoneAllowed(ZoneOf(d->name()), topology)) {
      why_not += "; device " + d->name() + " is not in a requisite zone";
      continue;
    }
    auto st = d->GetDeviceStatus(kStatusTimeout);
    if (!st.ok()) {
      why_not += "; " + st.status().message();
      continue;
    }
    if (st->state() == sv1::DEVICE_STATE_MAINTENANCE) {
      why_not += "; device " + d->name() + " is in maintenance";
      continue;
    }
    const sv1::TierStatus* tier = FindTier(*st, params->tier);
    if (tier == nullptr || tier->capacity_bytes() < *size) {
      why_not += "; device " + d->name() + " has no " +
                 std::string(params->tier == sv1::TIER_CLASS_UNSPECIFIED ? "tier"
                                                                         : TierName(params->tier)) +
                 " tier of " + std::to_string(*size) + " bytes";
      continue;
    }
    const int preference = ZonePreference(ZoneOf(d->name()), topology);
    if (!best || preference < best_preference ||
        (preference == best_preference && FreeBytes(*tier) > best_free)) {
      best = d;
      best_free = FreeBytes(*tier);
      best_preference = preference;
    }
  }
  if (!best) {
    return ResourceExhaustedError("no device can hold " + std::to_string(*size) + " bytes" +
                                  why_not);
  }

  sv1::CreateLunRequest create;
  create.set_name(lun_name);
  create.set_size_bytes(*size);
  create.set_tier(params->tier);
  create.set_dedup(params->dedup);
  create.set_owner(params->owner);
  create.set_clone_from(clone_from);
  create.mutable_access();  // set and empty: nobody may connect until published
  auto lun = best->CreateLun(create);
  if (!lun.ok()) return lun.status();
  spdlog::info("CreateVolume: '{}' is {}/{} ({} bytes{})", req.name(), best->name(), lun_name,
               lun->size_bytes(), clone_from.empty() ? "" : ", a clone of " + clone_from);
  FillVolume(best->name(), ZoneOf(best->name()), *lun, resp->mutable_volume());
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
  auto lun = (*device)->GetLun(id->lun);
  if (!lun.ok()) {
    return lun.status().code() == StatusCode::kNotFound ? Status::Ok() : lun.status();
  }
  if (lun->access().allowed_clients_size() > 0) {
    return FailedPreconditionError("volume " + id->ToString() +
                                   " is still published (access list not empty)");
  }
  Status s = (*device)->DeleteLun(id->lun);
  if (s.code() == StatusCode::kNotFound) return Status::Ok();
  return s;
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

  auto lun = (*device)->GetLun(id->lun);
  if (!lun.ok()) return lun.status();
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
    lun = (*device)->SetLunAccess(id->lun, clients);
    if (!lun.ok()) return lun.status();
  }
  auto& ctx = *resp->mutable_publish_context();
  ctx["device"] = id->device;
  ctx["wwn"] = lun->wwn();
  ctx["exportName"] = lun->export_name().empty() ? lun->name() : lun->export_name();
  ctx["portals"] = JoinPortals(*lun);
  // Where the node asks whether the LUN has moved to another device.
  if (std::string a = (*device)->address(); !a.empty()) ctx["deviceAddress"] = a;
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

  auto lun = (*device)->GetLun(id->lun);
  if (!lun.ok()) {
    return lun.status().code() == StatusCode::kNotFound ? Status::Ok() : lun.status();
  }
  std::vector<std::string> clients;
  if (!ip.empty()) {  // empty node_id: unpublish from every node
    if (!Contains(*lun, ip)) return Status::Ok();
    for (const auto& c : lun->access().allowed_clients()) {
      if (c != ip) clients.push_back(c);
    }
  } else if (lun->access().allowed_clients_size() == 0) {
    return Status::Ok();
  }
  auto updated = (*device)->SetLunAccess(id->lun, clients);
  if (!updated.ok() && updated.status().code() != StatusCode::kNotFound) return updated.status();
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
  auto lun = (*device)->GetLun(id->lun);
  if (!lun.ok()) return lun.status();

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
  std::map<std::string, v1::Volume> all;  // by volume id: a stable order
  for (const auto& d : devices_) {
    auto luns = d->ListLuns();
    if (!luns.ok()) return luns.status();  // a partial list would look like deletions
    for (const auto& lun : *luns) {
      if (lun.name().rfind(kLunPrefix, 0) != 0) continue;
      v1::Volume v;
      FillVolume(d->name(), ZoneOf(d->name()), lun, &v);
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
  for (const auto& d : devices_) {
    if (!params->device.empty() && d->name() != params->device) continue;
    if (!zone.empty() && !ZoneOf(d->name()).empty() && ZoneOf(d->name()) != zone) continue;
    auto st = d->GetDeviceStatus(kStatusTimeout);
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

  auto lun = (*device)->GetLun(id->lun);
  if (!lun.ok()) return lun.status();
  if (!size.ok()) return size.status();
  if (lun->size_bytes() < *size) {
    lun = (*device)->ResizeLun(id->lun, *size);
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
  auto lun = (*device)->GetLun(id->lun);
  auto* condition = resp->mutable_status()->mutable_volume_condition();
  if (!lun.ok()) {
    if (!IsUnreachable(lun.status())) return lun.status();
    // The LUN may be fine, but no node can reach it through this device right now.
    resp->mutable_volume()->set_volume_id(id->ToString());
    condition->set_abnormal(true);
    condition->set_message(lun.status().message());
    return Status::Ok();
  }
  FillVolume(id->device, ZoneOf(id->device), *lun, resp->mutable_volume());
  condition->set_abnormal(false);
  condition->set_message(
      lun->moved_to().empty() ? "ok" : "moved to " + lun->moved_to() + "; I/O is proxied there");
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
