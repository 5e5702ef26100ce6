#pragma once

#include <grpcpp/grpcpp.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "grpc_remote_device.h"
#include "move_exports.h"
#include "strata/common/status.h"
#include "strata/storage/device.h"
#include "strata/storage/v1/storage.grpc.pb.h"

namespace strata::storage {

// Our Status codes are numbered as gRPC's, so the mapping is a cast.
inline grpc::Status ToGrpc(const Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), s.message());
}

// WriteLunData's full method name ("/strata.storage.v1.StorageDevice/WriteLunData") and
// its index among the generated service's methods, both from the proto's descriptor.
const std::string& WriteLunDataMethodPath();
int WriteLunDataMethodIndex();

// The handler a service installs for WriteLunData (MarkMethodStreamed in its constructor)
// so that it gets each message as its wire bytes (grpc::ByteBuffer: no parse, no copy of
// the data) and runs Svc::WriteLunDataRaw; the wire stays the LunData stream of the proto.
template <class Svc>
grpc::internal::MethodHandler* NewRawWriteLunDataHandler(Svc* service) {
  return new grpc::internal::ClientStreamingHandler<Svc, grpc::ByteBuffer,
                                                    v1::WriteLunDataResponse>(
      [](Svc* svc, grpc::ServerContext* ctx, grpc::ServerReader<grpc::ByteBuffer>* reader,
         v1::WriteLunDataResponse* resp) { return svc->WriteLunDataRaw(ctx, reader, resp); },
      service);
}

// The ListSnapshots page token that resumes after snapshot `last_name`.
std::string SnapshotPageToken(const std::string& last_name);

// Samples every LUN's operation and byte counters once a second so GetLunStats can
// report current IOPS and throughput (over the last few seconds) rather than
// lifetime averages. Thread-safe.
class IopsSampler {
 public:
  explicit IopsSampler(Engine* engine);
  ~IopsSampler();
  // Operations and bytes per second per IoKind over the sampled window ending now.
  IoRates Rates(const std::string& lun, const LunIoStats::Snapshot& now);

 private:
  using Clock = IoRateWindow::Clock;
  void Run();

  Engine* const engine_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                            // guarded by mu_
  std::map<std::string, IoRateWindow> samples_;  // guarded by mu_
  std::thread thread_;
};

// strata.storage.v1.StorageDevice over one Device. Thread-safe: gRPC calls the
// handlers from its own threads; the Device and its Engine synchronise themselves.
class StorageDeviceService final : public v1::StorageDevice::Service {
 public:
  // verify_moves: device-to-device moves compare the copy before they switch
  // (DeviceMoveOptions::verify).
  StorageDeviceService(Device* device, std::string version, bool verify_moves = true)
      : device_(device),
        version_(std::move(version)),
        verify_moves_(verify_moves),
        sampler_(device->engine()) {
    MarkMethodStreamed(WriteLunDataMethodIndex(), NewRawWriteLunDataHandler(this));
  }
  // Cancels device-to-device moves in flight (the LUNs stay whole here) and waits.
  ~StorageDeviceService() override;

  // The NBD catalog this device's portals serve, for OpenMoveExport (unset: it answers
  // FAILED_PRECONDITION, and moves into this device use WriteLunData). nbd_tls_required:
  // the portals take only TLS clients, which a move's NBD writer is not (yet).
  // REQUIRES: called before the service serves; `exports` outlives it.
  void SetMoveExports(MoveExportCatalog* exports, bool nbd_tls_required) {
    move_exports_ = exports;
    nbd_tls_required_ = nbd_tls_required;
  }
  // How moves out of this device send their bulk data (strata-stored --move-data-path).
  // REQUIRES: called before the service serves.
  void SetMoveDataPath(MoveDataPath path) { move_data_path_ = path; }

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
  grpc::Status PublishLun(grpc::ServerContext*, const v1::PublishLunRequest*, v1::Lun*) override;
  grpc::Status UnpublishLun(grpc::ServerContext*, const v1::UnpublishLunRequest*,
                            v1::Lun*) override;
  grpc::Status SetLunDedup(grpc::ServerContext*, const v1::SetLunDedupRequest*, v1::Lun*) override;
  grpc::Status GetLunStats(grpc::ServerContext*, const v1::GetLunStatsRequest*,
                           v1::LunStats*) override;
  grpc::Status MigrateLun(grpc::ServerContext*, const v1::MigrateLunRequest*,
                          v1::Migration*) override;
  // GetMigrationRequest::wait_ms at most (a long poll holds a server thread).
  static constexpr uint32_t kMaxMigrationWaitMs = 60'000;
  grpc::Status GetMigration(grpc::ServerContext*, const v1::GetMigrationRequest*,
                            v1::Migration*) override;
  grpc::Status CancelMigration(grpc::ServerContext*, const v1::CancelMigrationRequest*,
                               v1::Migration*) override;
  // WriteLunData (the server calls this one: NewRawWriteLunDataHandler): each message
  // decoded from its wire bytes (DecodeLunData) and applied from the received buffers.
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
  grpc::Status LunReply(const std::string& name, v1::Lun* out);

  struct DeviceMove {
    std::atomic<bool> cancel{false};
    std::thread thread;
  };

  Device* const device_;
  const std::string version_;
  const bool verify_moves_;
  MoveExportCatalog* move_exports_ = nullptr;
  bool nbd_tls_required_ = false;
  MoveDataPath move_data_path_ = MoveDataPath::kAuto;
  IopsSampler sampler_;
  std::mutex moves_mu_;
  std::map<std::string, std::unique_ptr<DeviceMove>> device_moves_;  // guarded by moves_mu_
};

}  // namespace strata::storage
