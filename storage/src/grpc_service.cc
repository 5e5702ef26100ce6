#include "grpc_service.h"

#include "proto_convert.h"

namespace strata::storage {

grpc::Status StorageDeviceService::GetDeviceStatus(grpc::ServerContext*,
                                                   const v1::GetDeviceStatusRequest*,
                                                   v1::DeviceStatus* resp) {
  ToProto(device_->Status(), resp);
  resp->set_version(version_);
  return grpc::Status::OK;
}

}  // namespace strata::storage
