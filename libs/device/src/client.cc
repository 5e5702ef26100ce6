#include "strata/device/client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "strata/device/channel.h"
#include "strata/storage/v1/storage.grpc.pb.h"

namespace strata::device {
namespace {

class GrpcClient final : public Client {
 public:
  GrpcClient(std::string address, std::chrono::milliseconds timeout)
      : address_(std::move(address)),
        timeout_(timeout),
        stub_(sv1::StorageDevice::NewStub(NewDeviceChannel(address_))) {}

  const std::string& address() const override { return address_; }

  Result<sv1::DeviceStatus> GetDeviceStatus() override {
    return Call(&Stub::GetDeviceStatus, sv1::GetDeviceStatusRequest(), "GetDeviceStatus");
  }

  Result<sv1::DeviceStatus> SetDeviceState(sv1::DeviceState state,
                                           const std::string& reason) override {
    sv1::SetDeviceStateRequest req;
    req.set_state(state);
    req.set_reason(reason);
    return Call(&Stub::SetDeviceState, req, "SetDeviceState");
  }

  Result<sv1::Lun> CreateLun(const sv1::CreateLunRequest& request) override {
    return Call(&Stub::CreateLun, request, "CreateLun " + request.name());
  }

  Status DeleteLun(const std::string& lun) override {
    sv1::DeleteLunRequest req;
    req.set_name(lun);
    auto r = Call(&Stub::DeleteLun, req, "DeleteLun " + lun);
    return r.ok() ? Status::Ok() : r.status();
  }

  Result<sv1::Lun> GetLun(const std::string& lun) override {
    sv1::GetLunRequest req;
    req.set_name(lun);
    return Call(&Stub::GetLun, req, "GetLun " + lun);
  }

  Result<std::vector<sv1::Lun>> ListLuns(const std::string& owner) override {
    std::vector<sv1::Lun> out;
    sv1::ListLunsRequest req;
    req.set_page_size(256);
    req.set_owner(owner);
    for (;;) {
      auto page = Call(&Stub::ListLuns, req, "ListLuns");
      if (!page.ok()) return page.status();
      for (auto& l : *page->mutable_luns()) out.push_back(std::move(l));
      if (page->next_page_token().empty()) return out;
      req.set_page_token(page->next_page_token());
    }
  }

  Result<sv1::Lun> ResizeLun(const std::string& lun, uint64_t size_bytes) override {
    sv1::ResizeLunRequest req;
    req.set_name(lun);
    req.set_size_bytes(size_bytes);
    return Call(&Stub::ResizeLun, req, "ResizeLun " + lun);
  }

  Result<sv1::Lun> SetLunAccess(const std::string& lun,
                                const std::vector<std::string>& clients) override {
    sv1::SetLunAccessRequest req;
    req.set_name(lun);
    for (const auto& c : clients) req.mutable_access()->add_allowed_clients(c);
    return Call(&Stub::SetLunAccess, req, "SetLunAccess " + lun);
  }

  Result<sv1::Lun> PublishLun(const std::string& lun, const std::string& node_id,
                              const std::vector<std::string>& entries) override {
    sv1::PublishLunRequest req;
    req.set_name(lun);
    req.set_node_id(node_id);
    for (const auto& e : entries) req.add_access_entries(e);
    return Call(&Stub::PublishLun, req, "PublishLun " + lun + " to " + node_id);
  }

  Result<sv1::Lun> UnpublishLun(const std::string& lun, const std::string& node_id,
                                const std::vector<std::string>& entries) override {
    sv1::UnpublishLunRequest req;
    req.set_name(lun);
    req.set_node_id(node_id);
    for (const auto& e : entries) req.add_access_entries(e);
    return Call(&Stub::UnpublishLun, req,
                "UnpublishLun " + lun + " from " + (node_id.empty() ? "every node" : node_id));
  }

  Result<sv1::LunStats> GetLunStats(const std::string& lun) override {
    sv1::GetLunStatsRequest req;
    req.set_name(lun);
    return Call(&Stub::GetLunStats, req, "GetLunStats " + lun);
  }

  Result<sv1::Lun> SetLunDedup(const std::string& lun, bool dedup, bool fold_existing) override {
    sv1::SetLunDedupRequest req;
    req.set_name(lun);
    req.set_dedup(dedup);
    req.set_fold_existing(fold_existing);
    return Call(&Stub::SetLunDedup, req, "SetLunDedup " + lun);
  }

  Result<sv1::Migration> MigrateLun(const sv1::MigrateLunRequest& request) override {
    return Call(&Stub::MigrateLun, request, "MigrateLun " + request.name());
  }

  Result<sv1::Migration> GetMigration(const std::string& lun) override {
    sv1::GetMigrationRequest req;
    req.set_name(lun);
    return Call(&Stub::GetMigration, req, "GetMigration " + lun);
  }

  Result<sv1::Migration> WaitMigration(const std::string& lun,
                                       std::chrono::milliseconds wait) override {
    sv1::GetMigrationRequest req;
    req.set_name(lun);
    req.set_wait_ms(static_cast<uint32_t>(std::clamp<int64_t>(wait.count(), 1, 60'000)));
    // The call's deadline covers the wait as well as the usual time for an answer.
    return Call(&Stub::GetMigration, req, "GetMigration " + lun,
                std::chrono::milliseconds(req.wait_ms()) + timeout_);
  }

  Result<sv1::Migration> CancelMigration(const std::string& lun) override {
    sv1::CancelMigrationRequest req;
    req.set_name(lun);
    return Call(&Stub::CancelMigration, req, "CancelMigration " + lun);
  }

  Result<sv1::Snapshot> CreateSnapshot(const sv1::CreateSnapshotRequest& request) override {
    return Call(&Stub::CreateSnapshot, request,
                "CreateSnapshot " + request.name() + " of " + request.source_lun());
  }

  Status DeleteSnapshot(const std::string& snapshot) override {
    sv1::DeleteSnapshotRequest req;
    req.set_name(snapshot);
    auto r = Call(&Stub::DeleteSnapshot, req, "DeleteSnapshot " + snapshot);
    return r.ok() ? Status::Ok() : r.status();
  }

  Result<sv1::Snapshot> GetSnapshot(const std::string& snapshot) override {
    sv1::GetSnapshotRequest req;
    req.set_name(snapshot);
    return Call(&Stub::GetSnapshot, req, "GetSnapshot " + snapshot);
  }

  Result<sv1::ListSnapshotsResponse> ListSnapshots(
      const sv1::ListSnapshotsRequest& request) override {
    return Call(&Stub::ListSnapshots, request, "ListSnapshots");
  }

 private:
  using Stub = sv1::StorageDevice::Stub;

  template <typename Req, typename Resp>
  Result<Resp> Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                    const Req& req, const std::string& what,
                    std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + timeout.value_or(timeout_));
    Resp out;
    grpc::Status s = (stub_.get()->*method)(&ctx, req, &out);
    if (!s.ok()) return FromGrpc(s, "device " + address_ + ": " + what);
    return out;
  }

  const std::string address_;
  const std::chrono::milliseconds timeout_;
  const std::unique_ptr<Stub> stub_;
};

}  // namespace

Result<sv1::Lun> Client::PublishLun(const std::string& lun, const std::string&,
                                    const std::vector<std::string>&) {
  return UnimplementedError("device " + address() + ": PublishLun " + lun +
                            ": not implemented by this client");
}

Result<sv1::Lun> Client::UnpublishLun(const std::string& lun, const std::string&,
                                      const std::vector<std::string>&) {
  return UnimplementedError("device " + address() + ": UnpublishLun " + lun +
                            ": not implemented by this client");
}

Result<sv1::Migration> Client::WaitMigration(const std::string& lun, std::chrono::milliseconds) {
  return UnimplementedError("device " + address() + ": GetMigration " + lun +
                            " (long poll): not implemented by this client");
}

Result<sv1::Snapshot> Client::CreateSnapshot(const sv1::CreateSnapshotRequest& request) {
  return UnimplementedError("device " + address() + ": CreateSnapshot " + request.name() +
                            ": not implemented by this client");
}

Status Client::DeleteSnapshot(const std::string& snapshot) {
  return UnimplementedError("device " + address() + ": DeleteSnapshot " + snapshot +
                            ": not implemented by this client");
}

Result<sv1::Snapshot> Client::GetSnapshot(const std::string& snapshot) {
  return UnimplementedError("device " + address() + ": GetSnapshot " + snapshot +
                            ": not implemented by this client");
}

Result<sv1::ListSnapshotsResponse> Client::ListSnapshots(const sv1::ListSnapshotsRequest&) {
  return UnimplementedError("device " + address() +
                            ": ListSnapshots: not implemented by this client");
}

ClientPtr NewGrpcClient(std::string address, std::chrono::milliseconds call_timeout) {
  return std::make_shared<GrpcClient>(std::move(address), call_timeout);
}

ClientCache::ClientCache(Factory factory)
    : factory_(factory ? std::move(factory)
                       : Factory([](const std::string& a) { return NewGrpcClient(a); })) {}

ClientPtr ClientCache::Get(const std::string& address) {
  std::lock_guard g(mu_);
  ClientPtr& c = clients_[address];
  if (!c) c = factory_(address);
  return c;
}

void ClientCache::Forget(const std::string& address) {
  std::lock_guard g(mu_);
  clients_.erase(address);
}

size_t ClientCache::size() const {
  std::lock_guard g(mu_);
  return clients_.size();
}

}  // namespace strata::device
