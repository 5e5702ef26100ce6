#include "strata/device/channel.h"

#include <grpcpp/grpcpp.h>

namespace strata::device {

std::shared_ptr<grpc::Channel> NewDeviceChannel(const std::string& address) {
  grpc::ChannelArguments args;
  // gRPC's defaults (1 s growing by 1.6x up to 120 s) leave a restarted device unused for
  // minutes. A device is a handful of long-lived peers, not a fleet: retrying often is cheap.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, kMaxReconnectBackoffMs);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

Status FromGrpc(const grpc::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  return Status(static_cast<StatusCode>(s.error_code()),
                std::string(what) + ": " + s.error_message());
}

}  // namespace strata::device
