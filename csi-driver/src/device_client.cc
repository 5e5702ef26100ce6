#include "strata/csi/device_client.h"

#include <grpcpp/grpcpp.h>

#include <utility>

#include "strata/device/channel.h"
#include "strata/storage/v1/storage.grpc.pb.h"

namespace strata::csi {
namespace {

using device::FromGrpc;

class GrpcDeviceClient final : public DeviceClient {
 public:
  GrpcDeviceClient(std::string name, std::string address, std::chrono::milliseconds timeout)
      : name_(std::move(name)),
        address_(std::move(address)),
        timeout_(timeout),
        stub_(storage_v1::StorageDevice::NewStub(device::NewDeviceChannel(address_))) {}

  const std::string& name() const override { return name_; }
  std::string address() const override { return address_; }

  Result<storage_v1::DeviceStatus> GetDeviceStatus(std::chrono::milliseconds timeout) override {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + timeout);
    storage_v1::DeviceStatus out;
    grpc::Status s = stub_->GetDeviceStatus(&ctx, storage_v1::GetDeviceStatusRequest(), &out);
    if (!s.ok()) return FromGrpc(s, What("GetDeviceStatus"));
    return out;
  }

  Result<storage_v1::Lun> CreateLun(const storage_v1::CreateLunRequest& request) override {
    return Call(&Stub::CreateLun, request, "CreateLun " + request.name());
  }

  Status DeleteLun(const std::string& lun) override {
    storage_v1::DeleteLunRequest req;
    req.set_name(lun);
    auto r = Call(&Stub::DeleteLun, req, "DeleteLun " + lun);
    return r.ok() ? Status::Ok() : r.status();
  }

  Result<storage_v1::Lun> GetLun(const std::string& lun) override {
    storage_v1::GetLunRequest req;
    req.set_name(lun);
    return Call(&Stub::GetLun, req, "GetLun " + lun);
  }

  Result<std::vector<storage_v1::Lun>> ListLuns() override {
    std::vector<storage_v1::Lun> out;
    storage_v1::ListLunsRequest req;
    req.set_page_size(256);
    for (;;) {
      auto page = Call(&Stub::ListLuns, req, "ListLuns");
      if (!page.ok()) return page.status();
      for (auto& l : *page->mutable_luns()) out.push_back(std::move(l));
      if (page->next_page_token().empty()) return out;
      req.set_page_token(page->next_page_token());
    }
  }

  Result<storage_v1::Lun> ResizeLun(const std::string& lun, uint64_t size_bytes) override {
    storage_v1::ResizeLunRequest req;
    req.set_name(lun);
    req.set_size_bytes(size_bytes);
    return Call(&Stub::ResizeLun, req, "ResizeLun " + lun);
  }

  Result<storage_v1::Lun> SetLunAccess(const std::string& lun,
                                       const std::vector<std::string>& clients) override {
    storage_v1::SetLunAccessRequest req;
    req.set_name(lun);
    auto* access = req.mutable_access();
    for (const auto& c : clients) access->add_allowed_clients(c);
    return Call(&Stub::SetLunAccess, req, "SetLunAccess " + lun);
  }

 private:
  using Stub = storage_v1::StorageDevice::Stub;

  std::string What(const std::string& call) const {
    return "device " + name_ + " (" + address_ + "): " + call;
  }

  template <typename Req, typename Resp>
  Result<Resp> Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                    const Req& req, const std::string& what) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + timeout_);
    Resp out;
    grpc::Status s = (stub_.get()->*method)(&ctx, req, &out);
    if (!s.ok()) return FromGrpc(s, What(what));
    return out;
  }

  const std::string name_;
  const std::string address_;
  const std::chrono::milliseconds timeout_;
  std::unique_ptr<Stub> stub_;
};

}  // namespace

DeviceClientPtr MakeGrpcDeviceClient(std::string name, std::string address,
                                     std::chrono::milliseconds call_timeout) {
  return std::make_shared<GrpcDeviceClient>(std::move(name), std::move(address), call_timeout);
}

}  // namespace strata::csi
