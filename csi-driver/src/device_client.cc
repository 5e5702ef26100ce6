#include "strata/csi/device_client.h"

#include <utility>

namespace strata::csi {
namespace {

class NamedDevice final : public DeviceClient {
 public:
  NamedDevice(std::string name, device::ClientPtr client)
      : name_(std::move(name)), client_(std::move(client)) {}

  const std::string& name() const override { return name_; }
  std::string address() const override { return client_->address(); }

  Result<storage_v1::DeviceStatus> GetDeviceStatus() override { return client_->GetDeviceStatus(); }
  Result<storage_v1::Lun> CreateLun(const storage_v1::CreateLunRequest& request) override {
    return client_->CreateLun(request);
  }
  Status DeleteLun(const std::string& lun) override { return client_->DeleteLun(lun); }
  Result<storage_v1::Lun> GetLun(const std::string& lun) override { return client_->GetLun(lun); }
  Result<std::vector<storage_v1::Lun>> ListLuns() override { return client_->ListLuns(); }
  Result<storage_v1::Lun> ResizeLun(const std::string& lun, uint64_t size_bytes) override {
    return client_->ResizeLun(lun, size_bytes);
  }
  Result<storage_v1::Lun> SetLunAccess(const std::string& lun,
                                       const std::vector<std::string>& clients) override {
    return client_->SetLunAccess(lun, clients);
  }

 private:
  const std::string name_;
  const device::ClientPtr client_;
};

}  // namespace

DeviceClientPtr MakeDeviceClient(std::string name, device::ClientPtr client) {
  return std::make_shared<NamedDevice>(std::move(name), std::move(client));
}

DeviceClientPtr MakeGrpcDeviceClient(std::string name, std::string address,
                                     std::chrono::milliseconds call_timeout) {
  return MakeDeviceClient(std::move(name), device::NewGrpcClient(std::move(address), call_timeout));
}

}  // namespace strata::csi
