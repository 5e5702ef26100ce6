#include "strata/operator/device_client.h"

#include <grpcpp/grpcpp.h>

#include <map>
#include <mutex>

#include "strata/device/channel.h"
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
    if (!st.ok()) return device::FromGrpc(st, "device " + endpoint + ": GetDeviceStatus");
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
    if (!st.ok()) return device::FromGrpc(st, "device " + endpoint + ": SetDeviceState");
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
    if (!ch) ch = device::NewDeviceChannel(endpoint);
    return ch;
  }

  std::mutex mu_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;  // guarded by mu_
};

}  // namespace

std::unique_ptr<DeviceClient> NewGrpcDeviceClient() { return std::make_unique<GrpcDeviceClient>(); }

}  // namespace strata::op
