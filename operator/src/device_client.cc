#include "strata/operator/device_client.h"

#include <grpcpp/grpcpp.h>

#include <map>
#include <mutex>

#include "strata/storage/v1/storage.grpc.pb.h"

namespace strata::op {
namespace {

class GrpcDeviceClient : public DeviceClient {
 public:
  Result<storage::v1::DeviceStatus> GetDeviceStatus(const std::string& endpoint,
                                                    std::chrono::milliseconds timeout) override {
    auto stub = storage::v1::StorageDevice::NewStub(Channel(endpoint));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + timeout);
    storage::v1::DeviceStatus out;
    grpc::Status st = stub->GetDeviceStatus(&ctx, storage::v1::GetDeviceStatusRequest(), &out);
    if (!st.ok()) {
      return Status(static_cast<StatusCode>(st.error_code()),
                    "device " + endpoint + ": GetDeviceStatus: " + st.error_message());
    }
    return out;
  }

  Result<storage::v1::DeviceStatus> SetDeviceState(const std::string& endpoint,
                                                   storage::v1::DeviceState state,
                                                   const std::string& reason,
                                                   std::chrono::milliseconds timeout) override {
    auto stub = storage::v1::StorageDevice::NewStub(Channel(endpoint));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + timeout);
    storage::v1::SetDeviceStateRequest req;
    req.set_state(state);
    req.set_reason(reason);
    storage::v1::DeviceStatus out;
    grpc::Status st = stub->SetDeviceState(&ctx, req, &out);
    if (!st.ok()) {
      return Status(static_cast<StatusCode>(st.error_code()),
                    "device " + endpoint + ": SetDeviceState: " + st.error_message());
    }
    return out;
  }

  void Forget(const std::string& endpoint) override {
    std::lock_guard g(mu_);
    channels_.erase(endpoint);
  }

 private:
  std::shared_ptr<grpc::Channel> Channel(const std::string& endpoint) {
    std::lock_guard g(mu_);
    auto& ch = channels_[endpoint];
    if (!ch) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 500);
      args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 500);
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
      ch = grpc::CreateCustomChannel(endpoint, grpc::InsecureChannelCredentials(), args);
    }
    return ch;
  }

  std::mutex mu_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;  // guarded by mu_
};

}  // namespace

std::unique_ptr<DeviceClient> NewGrpcDeviceClient() { return std::make_unique<GrpcDeviceClient>(); }

}  // namespace strata::op
