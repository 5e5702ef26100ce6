#include "auth/authorizing_service.h"

#include <spdlog/spdlog.h>

namespace strata::storage::auth {
namespace {

grpc::Status Denied(const Grant& g, const std::string& what) {
  return grpc::Status(
      grpc::StatusCode::PERMISSION_DENIED,
      "identity '" + g.identity + "' (" + std::string(RoleName(g.role)) + ") may not " + what);
}

}  // namespace

Result<Grant> AuthorizingService::Require(grpc::ServerContext* ctx, std::string_view rpc,
                                          bool device_ok, bool tenant_ok) {
  STRATA_ASSIGN_OR_RETURN(Grant g, authorizer_->Authenticate(*ctx));
  if (g.role == Role::kAdmin || (g.role == Role::kDevice && device_ok) ||
      (g.role == Role::kTenant && tenant_ok)) {
    return g;
  }
  return Status(StatusCode::kPermissionDenied, "identity '" + g.identity + "' (" +
                                                   std::string(RoleName(g.role)) +
                                                   ") may not call " + std::string(rpc));
}

grpc::Status AuthorizingService::CheckLun(const Grant& g, const std::string& name) {
  if (g.role != Role::kTenant) return grpc::Status::OK;
  auto lun = device_->engine()->GetLun(name);
  if (!lun.ok()) return grpc::Status::OK;  // inner answers NOT_FOUND (or OK when idempotent)
  if (g.MayUseOwner(lun->owner)) return grpc::Status::OK;
  return Denied(g, "use LUN '" + name + "' (not one of its owners)");
}

grpc::Status AuthorizingService::CheckSnapshot(const Grant& g, const std::string& name) {
  if (g.role != Role::kTenant) return grpc::Status::OK;
  auto snap = device_->engine()->GetSnapshot(name);
  if (!snap.ok()) return grpc::Status::OK;
  if (g.MayUseOwner(snap->owner)) return grpc::Status::OK;
  return Denied(g, "use snapshot '" + name + "' (not one of its owners)");
}

template <typename Req, typename Resp>
grpc::Status AuthorizingService::LunCall(
    grpc::ServerContext* ctx, std::string_view rpc, bool device_ok, const Req* req, Resp* resp,
    grpc::Status (StorageDeviceService::*method)(grpc::ServerContext*, const Req*, Resp*)) {
  auto g = Require(ctx, rpc, device_ok, /*tenant_ok=*/true);
  if (!g.ok()) return ToGrpc(g.status());
  if (auto s = CheckLun(*g, req->name()); !s.ok()) return s;
  return (inner_->*method)(ctx, req, resp);
}

grpc::Status AuthorizingService::GetDeviceStatus(grpc::ServerContext* ctx,
                                                 const v1::GetDeviceStatusRequest* req,
                                                 v1::DeviceStatus* resp) {
  // Not for tenants: it lists every owner's space.
  auto g = Require(ctx, "GetDeviceStatus", /*device_ok=*/true, /*tenant_ok=*/false);
  if (!g.ok()) return ToGrpc(g.status());
  return inner_->GetDeviceStatus(ctx, req, resp);
}

grpc::Status AuthorizingService::SetDeviceState(grpc::ServerContext* ctx,
                                                const v1::SetDeviceStateRequest* req,
                                                v1::DeviceStatus* resp) {
  auto g = Require(ctx, "SetDeviceState", false, false);
  if (!g.ok()) return ToGrpc(g.status());
  return inner_->SetDeviceState(ctx, req, resp);
}

grpc::Status AuthorizingService::CreateLun(grpc::ServerContext* ctx,
                                           const v1::CreateLunRequest* req, v1::Lun* resp) {
  auto g = Require(ctx, "CreateLun", /*device_ok=*/true, /*tenant_ok=*/true);
  if (!g.ok()) return ToGrpc(g.status());
  if (g->role == Role::kTenant) {
    if (!g->MayUseOwner(req->owner())) {
      return Denied(*g, "create LUN '" + req->name() + "' for owner '" + req->owner() + "'");
    }
    if (!req->wwn().empty()) {
      return Denied(*g, "create LUN '" + req->name() + "' with a wwn (device moves only)");
    }
    if (auto s = CheckLun(*g, req->name()); !s.ok()) return s;
    if (!req->clone_from().empty()) {
      if (auto s = CheckLun(*g, req->clone_from()); !s.ok()) return s;
    }
    if (!req->from_snapshot().empty()) {
      if (auto s = CheckSnapshot(*g, req->from_snapshot()); !s.ok()) return s;
    }
  }
  return inner_->CreateLun(ctx, req, resp);
}

grpc::Status AuthorizingService::DeleteLun(grpc::ServerContext* ctx,
                                           const v1::DeleteLunRequest* req,
                                           v1::DeleteLunResponse* resp) {
  return LunCall(ctx, "DeleteLun", true, req, resp, &StorageDeviceService::DeleteLun);
}

grpc::Status AuthorizingService::AcceptLun(grpc::ServerContext* ctx,
                                           const v1::AcceptLunRequest* req, v1::Lun* resp) {
  // Device moves only, like CreateLun with a wwn: never tenants.
  auto g = Require(ctx, "AcceptLun", /*device_ok=*/true, /*tenant_ok=*/false);
  if (!g.ok()) return ToGrpc(g.status());
  return inner_->AcceptLun(ctx, req, resp);
}

grpc::Status AuthorizingService::GetLun(grpc::ServerContext* ctx, const v1::GetLunRequest* req,
                                        v1::Lun* resp) {
  return LunCall(ctx, "GetLun", true, req, resp, &StorageDeviceService::GetLun);
}

grpc::Status AuthorizingService::ListLuns(grpc::ServerContext* ctx, const v1::ListLunsRequest* req,
                                          v1::ListLunsResponse* resp) {
  auto g = Require(ctx, "ListLuns", false, true);
  if (!g.ok()) return ToGrpc(g.status());
  if (g->role != Role::kTenant) return inner_->ListLuns(ctx, req, resp);
  if (!req->owner().empty() && !g->MayUseOwner(req->owner())) {
    return Denied(*g, "list the LUNs of owner '" + req->owner() + "'");
  }
  // The tenant's own LUNs, paged as the device pages (by name; the token is the last name).
  v1::ListLunsRequest all = *req;
  all.set_page_size(0);
  v1::ListLunsResponse every;
  if (auto s = inner_->ListLuns(ctx, &all, &every); !s.ok()) return s;
  for (v1::Lun& l : *every.mutable_luns()) {
    if (!g->MayUseOwner(l.owner())) continue;
    if (req->page_size() && static_cast<uint32_t>(resp->luns_size()) == req->page_size()) {
      resp->set_next_page_token(resp->luns(resp->luns_size() - 1).name());
      break;
    }
    *resp->add_luns() = std::move(l);
  }
  return grpc::Status::OK;
}

grpc::Status AuthorizingService::ResizeLun(grpc::ServerContext* ctx,
                                           const v1::ResizeLunRequest* req, v1::Lun* resp) {
  return LunCall(ctx, "ResizeLun", false, req, resp, &StorageDeviceService::ResizeLun);
}

grpc::Status AuthorizingService::SetLunAccess(grpc::ServerContext* ctx,
                                              const v1::SetLunAccessRequest* req, v1::Lun* resp) {
  return LunCall(ctx, "SetLunAccess", false, req, resp, &StorageDeviceService::SetLunAccess);
}

// Publications change the access list as SetLunAccess does: the same rule.
grpc::Status AuthorizingService::PublishLun(grpc::ServerContext* ctx,
                                            const v1::PublishLunRequest* req, v1::Lun* resp) {
  return LunCall(ctx, "PublishLun", false, req, resp, &StorageDeviceService::PublishLun);
}

grpc::Status AuthorizingService::UnpublishLun(grpc::ServerContext* ctx,
                                              const v1::UnpublishLunRequest* req, v1::Lun* resp) {
  return LunCall(ctx, "UnpublishLun", false, req, resp, &StorageDeviceService::UnpublishLun);
}

grpc::Status AuthorizingService::SetLunDedup(grpc::ServerContext* ctx,
                                             const v1::SetLunDedupRequest* req, v1::Lun* resp) {
  return LunCall(ctx, "SetLunDedup", false, req, resp, &StorageDeviceService::SetLunDedup);
}

grpc::Status AuthorizingService::GetLunStats(grpc::ServerContext* ctx,
                                             const v1::GetLunStatsRequest* req,
                                             v1::LunStats* resp) {
  return LunCall(ctx, "GetLunStats", false, req, resp, &StorageDeviceService::GetLunStats);
}

grpc::Status AuthorizingService::MigrateLun(grpc::ServerContext* ctx,
                                            const v1::MigrateLunRequest* req, v1::Migration* resp) {
  auto g = Require(ctx, "MigrateLun", false, true);
  if (!g.ok()) return ToGrpc(g.status());
  if (auto s = CheckLun(*g, req->name()); !s.ok()) return s;
  if (g->role == Role::kTenant && !req->to_device().empty()) {
    // The move would run with this device's own certificate (a device identity).
    return Denied(*g, "move LUN '" + req->name() + "' to another device (tier moves only)");
  }
  return inner_->MigrateLun(ctx, req, resp);
}

grpc::Status AuthorizingService::GetMigration(grpc::ServerContext* ctx,
                                              const v1::GetMigrationRequest* req,
                                              v1::Migration* resp) {
  return LunCall(ctx, "GetMigration", false, req, resp, &StorageDeviceService::GetMigration);
}

grpc::Status AuthorizingService::CancelMigration(grpc::ServerContext* ctx,
                                                 const v1::CancelMigrationRequest* req,
                                                 v1::Migration* resp) {
  return LunCall(ctx, "CancelMigration", false, req, resp, &StorageDeviceService::CancelMigration);
}

// The data RPCs exist for device-to-device moves: tenants do I/O over NBD, where the LUN's
// access list applies.
grpc::Status AuthorizingService::WriteLunDataRaw(grpc::ServerContext* ctx,
                                                 grpc::ServerReader<grpc::ByteBuffer>* reader,
                                                 v1::WriteLunDataResponse* resp) {
  auto g = Require(ctx, "WriteLunData", true, false);
  if (!g.ok()) return ToGrpc(g.status());
  return inner_->WriteLunDataRaw(ctx, reader, resp);
}

// The move's bulk data over NBD instead of WriteLunData: the same rule.
grpc::Status AuthorizingService::OpenMoveExport(grpc::ServerContext* ctx,
                                                const v1::OpenMoveExportRequest* req,
                                                v1::MoveExport* resp) {
  auto g = Require(ctx, "OpenMoveExport", true, false);
  if (!g.ok()) return ToGrpc(g.status());
  return inner_->OpenMoveExport(ctx, req, resp);
}

grpc::Status AuthorizingService::ReadLunData(grpc::ServerContext* ctx,
                                             const v1::ReadLunDataRequest* req, v1::LunData* resp) {
  auto g = Require(ctx, "ReadLunData", true, false);
  if (!g.ok()) return ToGrpc(g.status());
  return inner_->ReadLunData(ctx, req, resp);
}

grpc::Status AuthorizingService::FlushLun(grpc::ServerContext* ctx, const v1::FlushLunRequest* req,
                                          v1::FlushLunResponse* resp) {
  auto g = Require(ctx, "FlushLun", true, false);
  if (!g.ok()) return ToGrpc(g.status());
  return inner_->FlushLun(ctx, req, resp);
}

grpc::Status AuthorizingService::GetLunChecksums(grpc::ServerContext* ctx,
                                                 const v1::GetLunChecksumsRequest* req,
                                                 v1::LunChecksums* resp) {
  auto g = Require(ctx, "GetLunChecksums", true, false);
  if (!g.ok()) return ToGrpc(g.status());
  return inner_->GetLunChecksums(ctx, req, resp);
}

grpc::Status AuthorizingService::CreateSnapshot(grpc::ServerContext* ctx,
                                                const v1::CreateSnapshotRequest* req,
                                                v1::Snapshot* resp) {
  auto g = Require(ctx, "CreateSnapshot", false, true);
  if (!g.ok()) return ToGrpc(g.status());
  if (auto s = CheckLun(*g, req->source_lun()); !s.ok()) return s;
  if (auto s = CheckSnapshot(*g, req->name()); !s.ok()) return s;
  return inner_->CreateSnapshot(ctx, req, resp);
}

grpc::Status AuthorizingService::DeleteSnapshot(grpc::ServerContext* ctx,
                                                const v1::DeleteSnapshotRequest* req,
                                                v1::DeleteSnapshotResponse* resp) {
  auto g = Require(ctx, "DeleteSnapshot", false, true);
  if (!g.ok()) return ToGrpc(g.status());
  if (auto s = CheckSnapshot(*g, req->name()); !s.ok()) return s;
  return inner_->DeleteSnapshot(ctx, req, resp);
}

grpc::Status AuthorizingService::GetSnapshot(grpc::ServerContext* ctx,
                                             const v1::GetSnapshotRequest* req,
                                             v1::Snapshot* resp) {
  auto g = Require(ctx, "GetSnapshot", false, true);
  if (!g.ok()) return ToGrpc(g.status());
  if (auto s = CheckSnapshot(*g, req->name()); !s.ok()) return s;
  return inner_->GetSnapshot(ctx, req, resp);
}

grpc::Status AuthorizingService::ListSnapshots(grpc::ServerContext* ctx,
                                               const v1::ListSnapshotsRequest* req,
                                               v1::ListSnapshotsResponse* resp) {
  auto g = Require(ctx, "ListSnapshots", false, true);
  if (!g.ok()) return ToGrpc(g.status());
  if (g->role != Role::kTenant) return inner_->ListSnapshots(ctx, req, resp);
  // The tenant's own snapshots, paged as the device pages them (the inner call checks the
  // token; ours are made the same way).
  v1::ListSnapshotsRequest all = *req;
  all.set_max_entries(0);
  v1::ListSnapshotsResponse every;
  if (auto s = inner_->ListSnapshots(ctx, &all, &every); !s.ok()) return s;
  for (v1::Snapshot& snap : *every.mutable_snapshots()) {
    if (!g->MayUseOwner(snap.owner())) continue;
    if (req->max_entries() && static_cast<uint32_t>(resp->snapshots_size()) == req->max_entries()) {
      resp->set_next_token(SnapshotPageToken(resp->snapshots(resp->snapshots_size() - 1).name()));
      break;
    }
    *resp->add_snapshots() = std::move(snap);
  }
  return grpc::Status::OK;
}

}  // namespace strata::storage::auth
