// ControllerServer's snapshot RPCs: CreateSnapshot, DeleteSnapshot, ListSnapshots. A CSI
// snapshot is a device snapshot (storage.proto CreateSnapshot: read-only, point-in-time,
// crash-consistent, copy-on-write) named SnapshotNameFor(CSI name) on the device that held
// the source volume's LUN when it was taken; its id is "DEVICE/NAME". The CSI source volume id
// is kept in the snapshot's metadata (a volume keeps the id of the device it was created on
// after it moves, the snapshot's source_lun alone cannot say which). Restores are CreateVolume
// (controller_server.cc).
#include <map>
#include <utility>

#include "call_logging.h"
#include "controller_server.h"
#include "volume_params.h"

namespace strata::csi {

namespace v1 = ::csi::v1;
namespace sv1 = ::strata::storage::v1;

namespace {

// Passed by csi-snapshotter with --extra-create-metadata; kept with the snapshot.
constexpr std::string_view kSnapshotNameKey = "csi.storage.k8s.io/volumesnapshot/name";
constexpr std::string_view kSnapshotNamespaceKey = "csi.storage.k8s.io/volumesnapshot/namespace";
constexpr std::string_view kSnapshotContentNameKey =
    "csi.storage.k8s.io/volumesnapshotcontent/name";

Result<std::map<std::string, std::string>> ParseSnapshotParams(const ParameterMap& p) {
  std::map<std::string, std::string> metadata;
  for (const auto& [key, value] : p) {
    if (key == kSnapshotNameKey || key == kSnapshotNamespaceKey || key == kSnapshotContentNameKey) {
      metadata[key] = value;
    } else if (key.rfind(kCoParameterPrefix, 0) != 0) {
      return InvalidArgumentError("parameters." + key +
                                  ": unknown parameter (snapshots take no parameters)");
    }
  }
  return metadata;
}

std::string SourceVolumeIdOf(const std::string& device, const sv1::Snapshot& s) {
  auto it = s.metadata().find(std::string(kSnapshotSourceVolumeKey));
  if (it != s.metadata().end() && !it->second.empty()) return it->second;
  return VolumeId{device, s.source_lun()}.ToString();
}

bool IsOurs(const sv1::Snapshot& s) { return s.name().rfind(kSnapshotPrefix, 0) == 0; }

}  // namespace

void FillSnapshot(const std::string& device, const sv1::Snapshot& s, v1::Snapshot* out) {
  out->set_snapshot_id(SnapshotId{device, s.name()}.ToString());
  out->set_source_volume_id(SourceVolumeIdOf(device, s));
  out->set_size_bytes(static_cast<int64_t>(s.size_bytes()));
  out->mutable_creation_time()->set_seconds(
      static_cast<int64_t>(s.created_unix_nanos() / 1000000000ull));
  out->mutable_creation_time()->set_nanos(
      static_cast<int32_t>(s.created_unix_nanos() % 1000000000ull));
  out->set_ready_to_use(s.ready_to_use());
}

// --- CreateSnapshot ------------------------------------------------------------------

Status ControllerServer::TakeSnapshot(const v1::CreateSnapshotRequest& req,
                                      v1::CreateSnapshotResponse* resp) {
  if (req.name().empty()) return InvalidArgumentError("name: required");
  if (req.source_volume_id().empty()) return InvalidArgumentError("source_volume_id: required");
  auto metadata = ParseSnapshotParams(req.parameters());
  if (!metadata.ok()) return metadata.status();
  auto vid = ParseVolumeId(req.source_volume_id());
  if (!vid.ok()) return vid.status().WithContext("source_volume_id");
  const std::string source_id = vid->ToString();
  const std::string name = SnapshotNameFor(req.name());
  InFlightGuard guard(&in_flight_, name);
  STRATA_RETURN_IF_ERROR(guard.status());

  // Idempotency: the snapshot may be on any device (its source may have moved since it was
  // taken). A device that cannot be asked might hold it: fail (UNAVAILABLE), the CO retries.
  for (const auto& d : devices_->Devices()) {
    auto existing = d.client->GetSnapshot(name);
    if (existing.ok()) {
      if (SourceVolumeIdOf(d.client->name(), *existing) != source_id) {
        return AlreadyExistsError("snapshot '" + req.name() + "' exists, of volume " +
                                  SourceVolumeIdOf(d.client->name(), *existing));
      }
      FillSnapshot(d.client->name(), *existing, resp->mutable_snapshot());
      return Status::Ok();
    }
    if (existing.status().code() != StatusCode::kNotFound) return existing.status();
  }

  auto device = DeviceOf(*vid);
  if (!device.ok()) return device.status().WithContext("source_volume_id");
  std::vector<Hop> hops;
  Status found = Follow(*vid, *device, &hops);
  if (!found.ok()) {
    if (found.code() == StatusCode::kNotFound) {
      return NotFoundError("source_volume_id: volume " + source_id + " does not exist");
    }
    return found;
  }
  // The snapshot id names the device that holds it: that must be a device this driver
  // knows by name, not only by the address the volume moved to.
  const DeviceClientPtr holder = hops.back().device;
  auto known = devices_->Find(holder->name());
  if (!known || known->client != holder) {
    return FailedPreconditionError("volume " + source_id + " lives on the device at " +
                                   holder->address() +
                                   ", which is not a device of this driver (no --device or "
                                   "StorageDevice names it); its snapshots could not be found");
  }
  sv1::CreateSnapshotRequest create;
  create.set_source_lun(vid->lun);
  create.set_name(name);
  for (const auto& [k, v] : *metadata) (*create.mutable_metadata())[k] = v;
  (*create.mutable_metadata())[std::string(kSnapshotSourceVolumeKey)] = source_id;
  (*create.mutable_metadata())[std::string(kSnapshotCsiNameKey)] = req.name();
  auto snap = holder->CreateSnapshot(create);
  if (!snap.ok()) return snap.status();
  spdlog::info("CreateSnapshot: '{}' of {} is {}/{} ({} bytes)", req.name(), source_id,
               holder->name(), name, snap->size_bytes());
  FillSnapshot(holder->name(), *snap, resp->mutable_snapshot());
  return Status::Ok();
}

// --- DeleteSnapshot ------------------------------------------------------------------

Status ControllerServer::DropSnapshot(const v1::DeleteSnapshotRequest& req) {
  auto id = ParseSnapshotId(req.snapshot_id());
  if (!id.ok()) {
    // An id we never produced names no snapshot: deleted already (the spec's OK).
    return id.status().code() == StatusCode::kNotFound ? Status::Ok() : id.status();
  }
  auto device = devices_->Find(id->device);
  if (!device) return Status::Ok();
  InFlightGuard guard(&in_flight_, id->name);
  STRATA_RETURN_IF_ERROR(guard.status());
  Status s = device->client->DeleteSnapshot(id->name);
  if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
  return Status::Ok();
}

// --- ListSnapshots -------------------------------------------------------------------

Status ControllerServer::ListSnaps(const v1::ListSnapshotsRequest& req,
                                   v1::ListSnapshotsResponse* resp) {
  if (req.max_entries() < 0) return InvalidArgumentError("max_entries: must not be negative");
  // starting_token is the snapshot id the page starts at (stable while snapshots come and
  // go); anything else is not a token we gave out.
  if (!req.starting_token().empty() && !ParseSnapshotId(req.starting_token()).ok()) {
    return AbortedError("starting_token '" + req.starting_token() + "' is not valid");
  }
  std::map<std::string, v1::Snapshot> all;  // by snapshot id: a stable order
  std::string source_id;
  sv1::ListSnapshotsRequest filter;
  if (!req.source_volume_id().empty()) {
    auto vid = ParseVolumeId(req.source_volume_id());
    if (!vid.ok()) return Status::Ok();  // no such volume: no snapshots of it
    source_id = vid->ToString();
    filter.set_source_lun(vid->lun);
  }
  auto keep = [&](const std::string& device, const sv1::Snapshot& s) {
    if (!IsOurs(s)) return;
    if (!source_id.empty() && SourceVolumeIdOf(device, s) != source_id) return;
    v1::Snapshot out;
    FillSnapshot(device, s, &out);
    all.emplace(out.snapshot_id(), std::move(out));
  };
  if (!req.snapshot_id().empty()) {
    // One snapshot or none: an id that names nothing gives an empty list, not an error.
    auto id = ParseSnapshotId(req.snapshot_id());
    if (!id.ok()) return Status::Ok();
    auto device = devices_->Find(id->device);
    if (!device) return Status::Ok();
    auto snap = device->client->GetSnapshot(id->name);
    if (!snap.ok()) {
      return snap.status().code() == StatusCode::kNotFound ? Status::Ok() : snap.status();
    }
    keep(id->device, *snap);
  } else {
    for (const auto& d : devices_->Devices()) {
      auto snaps = d.client->ListSnapshots(filter);
      if (!snaps.ok()) return snaps.status();  // a partial list would look like deletions
      for (const auto& s : *snaps) keep(d.client->name(), s);
    }
  }
  auto it = req.starting_token().empty() ? all.begin() : all.lower_bound(req.starting_token());
  int n = 0;
  for (; it != all.end(); ++it) {
    if (req.max_entries() > 0 && n == req.max_entries()) {
      resp->set_next_token(it->first);
      break;
    }
    *resp->add_entries()->mutable_snapshot() = std::move(it->second);
    ++n;
  }
  return Status::Ok();
}

// --- gRPC entry points -----------------------------------------------------------------

grpc::Status ControllerServer::CreateSnapshot(grpc::ServerContext*,
                                              const v1::CreateSnapshotRequest* request,
                                              v1::CreateSnapshotResponse* response) {
  return LoggedCall("CreateSnapshot", *request, [&] { return TakeSnapshot(*request, response); });
}

grpc::Status ControllerServer::DeleteSnapshot(grpc::ServerContext*,
                                              const v1::DeleteSnapshotRequest* request,
                                              v1::DeleteSnapshotResponse*) {
  return LoggedCall("DeleteSnapshot", *request, [&] { return DropSnapshot(*request); });
}

grpc::Status ControllerServer::ListSnapshots(grpc::ServerContext*,
                                             const v1::ListSnapshotsRequest* request,
                                             v1::ListSnapshotsResponse* response) {
  return LoggedCall("ListSnapshots", *request, [&] { return ListSnaps(*request, response); });
}

}  // namespace strata::csi
