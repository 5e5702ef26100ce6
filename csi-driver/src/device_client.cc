#include "strata/csi/device_client.h"

#include <utility>

namespace strata::csi {

Result<storage_v1::Lun> DeviceClient::PublishLun(const std::string& lun, const std::string&,
                                                 const std::vector<std::string>&) {
  return UnimplementedError("PublishLun(" + lun + "): not implemented by this device client");
}

Result<storage_v1::Lun> DeviceClient::UnpublishLun(const std::string& lun, const std::string&,
                                                   const std::vector<std::string>&) {
  return UnimplementedError("UnpublishLun(" + lun + "): not implemented by this device client");
}

Result<storage_v1::Lun> DeviceClient::SetLunDedup(const std::string& lun, bool, bool) {
  return UnimplementedError("SetLunDedup(" + lun + "): not implemented by this device client");
}

Result<storage_v1::Migration> DeviceClient::MigrateLun(const storage_v1::MigrateLunRequest& r) {
  return UnimplementedError("MigrateLun(" + r.name() + "): not implemented by this device client");
}

Result<storage_v1::Snapshot> DeviceClient::CreateSnapshot(
    const storage_v1::CreateSnapshotRequest& r) {
  return UnimplementedError("CreateSnapshot(" + r.name() +
                            "): not implemented by this device client");
}

Status DeviceClient::DeleteSnapshot(const std::string& snapshot) {
  return UnimplementedError("DeleteSnapshot(" + snapshot +
                            "): not implemented by this device client");
}

Result<storage_v1::Snapshot> DeviceClient::GetSnapshot(const std::string& snapshot) {
  return UnimplementedError("GetSnapshot(" + snapshot + "): not implemented by this device client");
}

Result<std::vector<storage_v1::Snapshot>> DeviceClient::ListSnapshots(
    const storage_v1::ListSnapshotsRequest&) {
  return UnimplementedError("ListSnapshots: not implemented by this device client");
}

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
  Result<storage_v1::Lun> PublishLun(const std::string& lun, const std::string& node_id,
                                     const std::vector<std::string>& entries) override {
    return client_->PublishLun(lun, node_id, entries);
  }
  Result<storage_v1::Lun> UnpublishLun(const std::string& lun, const std::string& node_id,
                                       const std::vector<std::string>& entries) override {
    return client_->UnpublishLun(lun, node_id, entries);
  }
  Result<storage_v1::Lun> SetLunDedup(const std::string& lun, bool dedup,
                                      bool fold_existing) override {
    return client_->SetLunDedup(lun, dedup, fold_existing);
  }
  Result<storage_v1::Migration> MigrateLun(const storage_v1::MigrateLunRequest& request) override {
    return client_->MigrateLun(request);
  }
  Result<storage_v1::Snapshot> CreateSnapshot(
      const storage_v1::CreateSnapshotRequest& request) override {
    return client_->CreateSnapshot(request);
  }
  Status DeleteSnapshot(const std::string& snapshot) override {
    return client_->DeleteSnapshot(snapshot);
  }
  Result<storage_v1::Snapshot> GetSnapshot(const std::string& snapshot) override {
    return client_->GetSnapshot(snapshot);
  }
  Result<std::vector<storage_v1::Snapshot>> ListSnapshots(
      const storage_v1::ListSnapshotsRequest& request) override {
    storage_v1::ListSnapshotsRequest page = request;
    page.set_max_entries(0);
    page.clear_starting_token();
    std::vector<storage_v1::Snapshot> out;
    // A device may page even when asked for everything; a token that does not advance is an
    // error rather than an endless walk.
    for (;;) {
      auto resp = client_->ListSnapshots(page);
      if (!resp.ok()) return resp.status();
      for (auto& s : *resp->mutable_snapshots()) out.push_back(std::move(s));
      if (resp->next_token().empty()) return out;
      if (resp->next_token() == page.starting_token()) {
        return InternalError("ListSnapshots: device " + client_->address() +
                             " returned the same next_token twice");
      }
      page.set_starting_token(resp->next_token());
    }
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
