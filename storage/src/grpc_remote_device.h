#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
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

// Another strata-stored reached over its management API. Thread-safe (gRPC stubs are).
class GrpcRemoteDevice final : public RemoteDevice {
 public:
  // A move's copy goes over this many WriteLunData streams at once (OpenWriter).
  static constexpr int kDefaultCopyStreams = 4;
  explicit GrpcRemoteDevice(std::string address, int copy_streams = kDefaultCopyStreams);

  const std::string& address() const override { return address_; }
  Result<std::optional<std::string>> LunWwn(const std::string& name) override;
  Status CreateLun(const LunSpec& spec) override;
  Status DeleteLun(const std::string& name) override;
  Status AcceptLun(const std::string& name, const std::string& wwn) override;
  Result<std::unique_ptr<BlockWriter>> OpenWriter(const std::string& lun,
                                                  uint32_t block_size) override;
  Status Flush(const std::string& lun) override;
  std::shared_ptr<Volume> OpenVolume(const std::string& lun) override;
  Result<std::vector<uint64_t>> LunChecksums(const std::string& lun, uint64_t range_bytes,
                                             uint64_t offset, uint64_t length) override;

 private:
  const std::string address_;
  const int copy_streams_;
  std::shared_ptr<grpc::Channel> channel_;
  std::shared_ptr<v1::StorageDevice::Stub> stub_;
  std::shared_ptr<const RawWriteLunData> write_rpc_;
};

// A LUN on another device as a Volume, over ReadLunData/WriteLunData/FlushLun: what a
// device that moved a LUN away proxies its clients' I/O to.
std::shared_ptr<Volume> OpenGrpcRemoteVolume(const std::string& address, const std::string& lun);

}  // namespace strata::storage
