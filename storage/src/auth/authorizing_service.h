#pragma once

#include <grpcpp/grpcpp.h>

#include <string>
#include <string_view>

#include "auth/authorizer.h"
#include "grpc_service.h"
#include "strata/storage/device.h"
#include "strata/storage/v1/storage.grpc.pb.h"

namespace strata::storage::auth {

// strata.storage.v1.StorageDevice with authorization in front: every call is authenticated
// (Authorizer) and checked against the caller's role before `inner` runs it; listings are
// filtered to what the caller may see. What each role may call: auth/access_policy.h (Role).
// A tenant asking for a LUN or snapshot of another owner gets PERMISSION_DENIED naming its
// identity and the object; one that does not exist reaches `inner` (NOT_FOUND, or OK for an
// idempotent delete). Thread-safe as `inner` is.
class AuthorizingService final : public v1::StorageDevice::Service {
 public:
  AuthorizingService(StorageDeviceService* inner, Device* device, Authorizer* authorizer)
      : inner_(inner), device_(device), authorizer_(authorizer) {
    MarkMethodStreamed(WriteLunDataMethodIndex(), NewRawWriteLunDataHandler(this));
  }

  grpc::Status GetDeviceStatus(grpc::ServerContext*, const v1::GetDeviceStatusRequest*,
                               v1::DeviceStatus*) override;
  grpc::Status SetDeviceState(grpc::ServerContext*, const v1::SetDeviceStateRequest*,
                              v1::DeviceStatus*) override;
  grpc::Status CreateLun(grpc::ServerContext*, const v1::CreateLunRequest*, v1::Lun*) override;
  grpc::Status DeleteLun(grpc::ServerContext*, const v1::DeleteLunRequest*,
                         v1::DeleteLunResponse*) override;
  grpc::Status AcceptLun(grpc::ServerContext*, const v1::AcceptLunRequest*, v1::Lun*) override;
  grpc::Status GetLun(grpc::ServerContext*, const v1::GetLunRequest*, v1::Lun*) override;
  grpc::Status ListLuns(grpc::ServerContext*, const v1::ListLunsRequest*,
                        v1::ListLunsResponse*) override;
  grpc::Status ResizeLun(grpc::ServerContext*, const v1::ResizeLunRequest*, v1::Lun*) override;
  grpc::Status SetLunAccess(grpc::ServerContext*, const v1::SetLunAccessRequest*,
                            v1::Lun*) override;
  grpc::Status SetLunDedup(grpc::ServerContext*, const v1::SetLunDedupRequest*, v1::Lun*) override;
  grpc::Status PublishLun(grpc::ServerContext*, const v1::PublishLunRequest*, v1::Lun*) override;
  grpc::Status UnpublishLun(grpc::ServerContext*, const v1::UnpublishLunRequest*,
                            v1::Lun*) override;
  grpc::Status GetLunStats(grpc::ServerContext*, const v1::GetLunStatsRequest*,
                           v1::LunStats*) override;
  grpc::Status MigrateLun(grpc::ServerContext*, const v1::MigrateLunRequest*,
                          v1::Migration*) override;
  grpc::Status GetMigration(grpc::ServerContext*, const v1::GetMigrationRequest*,
                            v1::Migration*) override;
  grpc::Status CancelMigration(grpc::ServerContext*, const v1::CancelMigrationRequest*,
                               v1::Migration*) override;
  // WriteLunData (NewRawWriteLunDataHandler): authorised, then inner's WriteLunDataRaw.
  grpc::Status WriteLunDataRaw(grpc::ServerContext*, grpc::ServerReader<grpc::ByteBuffer>*,
                               v1::WriteLunDataResponse*);
  grpc::Status ReadLunData(grpc::ServerContext*, const v1::ReadLunDataRequest*,
                           v1::LunData*) override;
  grpc::Status FlushLun(grpc::ServerContext*, const v1::FlushLunRequest*,
                        v1::FlushLunResponse*) override;
  grpc::Status GetLunChecksums(grpc::ServerContext*, const v1::GetLunChecksumsRequest*,
                               v1::LunChecksums*) override;
  grpc::Status OpenMoveExport(grpc::ServerContext*, const v1::OpenMoveExportRequest*,
                              v1::MoveExport*) override;
  grpc::Status CreateSnapshot(grpc::ServerContext*, const v1::CreateSnapshotRequest*,
                              v1::Snapshot*) override;
  grpc::Status DeleteSnapshot(grpc::ServerContext*, const v1::DeleteSnapshotRequest*,
                              v1::DeleteSnapshotResponse*) override;
  grpc::Status GetSnapshot(grpc::ServerContext*, const v1::GetSnapshotRequest*,
                           v1::Snapshot*) override;
  grpc::Status ListSnapshots(grpc::ServerContext*, const v1::ListSnapshotsRequest*,
                             v1::ListSnapshotsResponse*) override;

 private:
  // The caller's grant if its role is admin, or one of `also` (kDevice / kTenant) when given;
  // PERMISSION_DENIED naming the identity and `rpc` otherwise.
  Result<Grant> Require(grpc::ServerContext* ctx, std::string_view rpc, bool device_ok,
                        bool tenant_ok);
  // OK unless `g` is a tenant and LUN `name` exists with an owner it may not use.
  grpc::Status CheckLun(const Grant& g, const std::string& name);
  grpc::Status CheckSnapshot(const Grant& g, const std::string& name);
  // A call that only touches LUN `name`: admins and tenants owning it (devices when
  // device_ok) go through to `inner_`.
  template <typename Req, typename Resp>
  grpc::Status LunCall(grpc::ServerContext* ctx, std::string_view rpc, bool device_ok,
                       const Req* req, Resp* resp,
                       grpc::Status (StorageDeviceService::*method)(grpc::ServerContext*,
                                                                    const Req*, Resp*));

  StorageDeviceService* const inner_;
  Device* const device_;
  Authorizer* const authorizer_;
};

}  // namespace strata::storage::auth
