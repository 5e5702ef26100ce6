#pragma once

#include <grpcpp/grpcpp.h>

#include <string>

#include "strata/common/status.h"
#include "strata/storage/device.h"
#include "strata/storage/v1/storage.grpc.pb.h"

namespace strata::storage {

// Our Status codes are numbered as gRPC's, so the mapping is a cast.
inline grpc::Status ToGrpc(const Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), s.message());
}

// strata.storage.v1.StorageDevice over one Device. Thread-safe: gRPC calls the
// handlers from its own threads; the Device synchronises itself.
class StorageDeviceService final : public v1::StorageDevice::Service {
 public:
  StorageDeviceService(Device* device, std::string version)
      : device_(device), version_(std::move(version)) {}

  grpc::Status GetDeviceStatus(grpc::ServerContext* ctx, const v1::GetDeviceStatusRequest* req,
                               v1::DeviceStatus* resp) override;

 private:
  Device* const device_;
  const std::string version_;
};

}  // namespace strata::storage
