#include "strata/operator/device_client.h"

#include "strata/device/client.h"

namespace strata::op {
namespace {

class GrpcDeviceClient : public DeviceClient {
 public:
  explicit GrpcDeviceClient(std::chrono::milliseconds call_timeout)
      : cache_([call_timeout](const std::string& address) {
          return device::NewGrpcClient(address, call_timeout);
        }) {}

  Result<storage::v1::DeviceStatus> GetDeviceStatus(const std::string& endpoint,
                                                    std::chrono::milliseconds) override {
    return cache_.Get(endpoint)->GetDeviceStatus();
  }

  Result<storage::v1::DeviceStatus> SetDeviceState(const std::string& endpoint,
                                                   storage::v1::DeviceState state,
                                                   const std::string& reason,
                                                   std::chrono::milliseconds) override {
    return cache_.Get(endpoint)->SetDeviceState(state, reason);
  }

  void Forget(const std::string& endpoint) override { cache_.Forget(endpoint); }

 private:
  device::ClientCache cache_;
};

}  // namespace

std::unique_ptr<DeviceClient> NewGrpcDeviceClient(std::chrono::milliseconds call_timeout) {
  return std::make_unique<GrpcDeviceClient>(call_timeout);
}

}  // namespace strata::op
