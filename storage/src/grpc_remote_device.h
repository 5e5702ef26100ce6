#pragma once

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "strata/storage/device_migration.h"
#include "strata/storage/io_stats.h"
#include "strata/storage/v1/storage.grpc.pb.h"

namespace strata::storage {

// WriteLunData called with the message as its wire bytes (grpc::ByteBuffer, see
// lun_data_wire.h) rather than a v1::LunData; the wire is the same.
class RawWriteLunData {
 public:
  explicit RawWriteLunData(std::shared_ptr<grpc::Channel> channel);
  std::unique_ptr<grpc::ClientWriter<grpc::ByteBuffer>> Open(grpc::ClientContext* ctx,
                                                             v1::WriteLunDataResponse* resp) const;

 private:
  const std::shared_ptr<grpc::Channel> channel_;
  const grpc::internal::RpcMethod method_;
};

// How a move's bulk data reaches the target (strata-stored --move-data-path):
//  - kAuto: over NBD into the target's move export (OpenMoveExport) when the target
//    offers one, else over WriteLunData (a target without the RPC, or whose NBD needs
//    TLS or that has no NBD portal, or whose portal cannot be reached);
//  - kGrpc: always over WriteLunData.
enum class MoveDataPath { kAuto, kGrpc };
// "auto" | "grpc"; INVALID_ARGUMENT naming `flag` otherwise.
Result<MoveDataPath> ParseMoveDataPath(const std::string& value, const std::string& flag);

// Another strata-stored reached over its management API. Thread-safe (gRPC stubs are).
class GrpcRemoteDevice final : public RemoteDevice {
 public:
  // A move's copy goes over this many WriteLunData streams at once (OpenWriter).
  static constexpr int kDefaultCopyStreams = 4;
  // Over NBD: this many connections, each with this many requests in flight.
  static constexpr int kNbdConnections = 2;
  static constexpr int kNbdInFlightPerConnection = 4;
  explicit GrpcRemoteDevice(std::string address, int copy_streams = kDefaultCopyStreams,
                            MoveDataPath data_path = MoveDataPath::kAuto);

  const std::string& address() const override { return address_; }
  Result<std::optional<std::string>> LunWwn(const std::string& name) override;
  Status CreateLun(const LunSpec& spec) override;
  Status DeleteLun(const std::string& name) override;
  Status AcceptLun(const std::string& name, const std::string& wwn) override;
  // A writer over NBD (data_path kAuto and the target offers a move export) or over
  // WriteLunData streams.
  Result<std::unique_ptr<BlockWriter>> OpenWriter(const std::string& lun,
                                                  uint32_t block_size) override;
  Status Flush(const std::string& lun) override;
  std::shared_ptr<Volume> OpenVolume(const std::string& lun) override;
  Result<std::vector<uint64_t>> LunChecksums(const std::string& lun, uint64_t range_bytes,
                                             uint64_t offset, uint64_t length) override;

 private:
  // The NBD writer into the target's move export of `lun`, or why there is none.
  Result<std::unique_ptr<BlockWriter>> OpenNbdWriter(const std::string& lun, uint32_t block_size);

  const std::string address_;
  const int copy_streams_;
  const MoveDataPath data_path_;
  std::mutex mu_;
  bool nbd_refused_ = false;  // guarded by mu_: the target said no once; ask no more
  // The WWN OpenMoveExport needs, from LunWwn/CreateLun, by LUN.
  std::map<std::string, std::string> wwns_;  // guarded by mu_
  std::shared_ptr<grpc::Channel> channel_;
  std::shared_ptr<v1::StorageDevice::Stub> stub_;
  std::shared_ptr<const RawWriteLunData> write_rpc_;
};

// A LUN on another device as a Volume, over ReadLunData/WriteLunData/FlushLun: what a
// device that moved a LUN away proxies its clients' I/O to.
std::shared_ptr<Volume> OpenGrpcRemoteVolume(const std::string& address, const std::string& lun);

}  // namespace strata::storage
