#include "grpc_service.h"

#include "proto_convert.h"

namespace strata::storage {
namespace {

constexpr size_t kWindowSamples = 6;  // ~5 s of history at one sample a second

grpc::Status RequireName(const std::string& name) {
  if (name.empty()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "name: is required");
  return grpc::Status::OK;
}

}  // namespace

IopsSampler::IopsSampler(Engine* engine) : engine_(engine), thread_([this] { Run(); }) {}

IopsSampler::~IopsSampler() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void IopsSampler::Run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    lock.unlock();
    std::map<std::string, Sample> now;
    for (const LunInfo& l : engine_->ListLuns()) {
      auto snap = engine_->IoStats(l.name);
      if (!snap.ok()) continue;
      Sample s{Clock::now(), {}};
      for (int k = 0; k < kIoKinds; ++k) s.ops[k] = snap->kinds[k].ops;
      now.emplace(l.name, s);
    }
    lock.lock();
    std::map<std::string, std::deque<Sample>> next;
    for (auto& [name, s] : now) {
      auto& q = next[name];
      if (auto it = samples_.find(name); it != samples_.end()) q = std::move(it->second);
      q.push_back(s);
      while (q.size() > kWindowSamples) q.pop_front();
    }
    samples_.swap(next);  // deleted LUNs drop out
    cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; });
  }
}

std::array<double, kIoKinds> IopsSampler::Rates(const std::string& lun,
                                                const LunIoStats::Snapshot& now) {
  std::array<double, kIoKinds> out{};
  std::lock_guard lock(mu_);
  auto it = samples_.find(lun);
  if (it == samples_.end() || it->second.empty()) return out;
  const Sample& oldest = it->second.front();
  double secs = std::chrono::duration<double>(Clock::now() - oldest.at).count();
  if (secs <= 0) return out;
  for (int k = 0; k < kIoKinds; ++k) {
    uint64_t ops = now.kinds[k].ops;
    out[k] = ops >= oldest.ops[k] ? static_cast<double>(ops - oldest.ops[k]) / secs : 0;
  }
  return out;
}

grpc::Status StorageDeviceService::GetDeviceStatus(grpc::ServerContext*,
                                                   const v1::GetDeviceStatusRequest*,
                                                   v1::DeviceStatus* resp) {
  ToProto(device_->Status(), resp);
  resp->set_version(version_);
  return grpc::Status::OK;
}

grpc::Status StorageDeviceService::LunReply(const std::string& name, v1::Lun* out) {
  auto lun = device_->engine()->GetLun(name);
  if (!lun.ok()) return ToGrpc(lun.status());
  ToProto(*lun, device_->config().portals, out);
  return grpc::Status::OK;
}

grpc::Status StorageDeviceService::CreateLun(grpc::ServerContext*, const v1::CreateLunRequest* req,
                                             v1::Lun* resp) {
  LunSpec spec;
  spec.name = req->name();
  spec.size_bytes = req->size_bytes();
  if (req->tier() != v1::TIER_CLASS_UNSPECIFIED) {
    auto t = FromProto(req->tier(), "tier");
    if (!t.ok()) return ToGrpc(t.status());
    spec.tier = *t;
  }
  spec.dedup = req->dedup();
  spec.owner = req->owner();
  if (req->has_access()) {
    spec.allowed_clients.assign(req->access().allowed_clients().begin(),
                                req->access().allowed_clients().end());
  }
  auto lun = device_->engine()->CreateLun(spec);
  if (!lun.ok()) return ToGrpc(lun.status());
  ToProto(*lun, device_->config().portals, resp);
  return grpc::Status::OK;
}

grpc::Status StorageDeviceService::DeleteLun(grpc::ServerContext*, const v1::DeleteLunRequest* req,
                                             v1::DeleteLunResponse*) {
  if (auto s = RequireName(req->name()); !s.ok()) return s;
  return ToGrpc(device_->engine()->DeleteLun(req->name()));
}

grpc::Status StorageDeviceService::GetLun(grpc::ServerContext*, const v1::GetLunRequest* req,
                                          v1::Lun* resp) {
  if (auto s = RequireName(req->name()); !s.ok()) return s;
  return LunReply(req->name(), resp);
}

grpc::Status StorageDeviceService::ListLuns(grpc::ServerContext*, const v1::ListLunsRequest* req,
                                            v1::ListLunsResponse* resp) {
  // Pages are ordered by name; the token is the last name returned, so a LUN
  // created or deleted between pages neither repeats nor shifts the others.
  std::vector<LunInfo> luns = device_->engine()->ListLuns();
  uint32_t n = 0;
  for (const LunInfo& l : luns) {
    if (!req->page_token().empty() && l.name <= req->page_token()) continue;
    if (!req->owner().empty() && l.owner != req->owner()) continue;
    if (req->page_size() && n == req->page_size()) {
      resp->set_next_page_token(resp->luns(resp->luns_size() - 1).name());
      break;
    }
    ToProto(l, device_->config().portals, resp->add_luns());
    ++n;
  }
  return grpc::Status::OK;
}

grpc::Status StorageDeviceService::ResizeLun(grpc::ServerContext*, const v1::ResizeLunRequest* req,
                                             v1::Lun* resp) {
  if (auto s = RequireName(req->name()); !s.ok()) return s;
  auto lun = device_->engine()->ResizeLun(req->name(), req->size_bytes());
  if (!lun.ok()) return ToGrpc(lun.status());
  ToProto(*lun, device_->config().portals, resp);
  return grpc::Status::OK;
}

grpc::Status StorageDeviceService::SetLunAccess(grpc::ServerContext*,
                                                const v1::SetLunAccessRequest* req, v1::Lun* resp) {
  if (auto s = RequireName(req->name()); !s.ok()) return s;
  std::vector<std::string> allowed(req->access().allowed_clients().begin(),
                                   req->access().allowed_clients().end());
  auto lun = device_->engine()->SetAccess(req->name(), std::move(allowed));
  if (!lun.ok()) return ToGrpc(lun.status());
  ToProto(*lun, device_->config().portals, resp);
  return grpc::Status::OK;
}

grpc::Status StorageDeviceService::GetLunStats(grpc::ServerContext*,
                                               const v1::GetLunStatsRequest* req,
                                               v1::LunStats* resp) {
  if (auto s = RequireName(req->name()); !s.ok()) return s;
  auto lun = device_->engine()->GetLun(req->name());
  if (!lun.ok()) return ToGrpc(lun.status());
  auto snap = device_->engine()->IoStats(req->name());
  if (!snap.ok()) return ToGrpc(snap.status());
  auto rates = sampler_.Rates(req->name(), *snap);
  resp->set_name(req->name());
  auto kind = [&](IoKind k, v1::IoKindStats* out) {
    ToProto(snap->of(k), rates[static_cast<int>(k)], out);
  };
  kind(IoKind::kRead, resp->mutable_read());
  kind(IoKind::kWrite, resp->mutable_write());
  kind(IoKind::kFlush, resp->mutable_flush());
  kind(IoKind::kTrim, resp->mutable_trim());
  kind(IoKind::kWriteZeroes, resp->mutable_write_zeroes());
  ToProto(lun->space, resp->mutable_space());
  return grpc::Status::OK;
}

grpc::Status StorageDeviceService::MigrateLun(grpc::ServerContext*,
                                              const v1::MigrateLunRequest* req,
                                              v1::Migration* resp) {
  if (auto s = RequireName(req->name()); !s.ok()) return s;
  auto tier = FromProto(req->to_tier(), "to_tier");
  if (!tier.ok()) return ToGrpc(tier.status());
  Status s = device_->engine()->StartTierMove(req->name(), *tier);
  if (!s.ok()) return ToGrpc(s);
  auto lun = device_->engine()->GetLun(req->name());
  if (!lun.ok()) return ToGrpc(lun.status());
  ToProto(lun->move, lun->name, resp);
  return grpc::Status::OK;
}

grpc::Status StorageDeviceService::GetMigration(grpc::ServerContext*,
                                                const v1::GetMigrationRequest* req,
                                                v1::Migration* resp) {
  if (auto s = RequireName(req->name()); !s.ok()) return s;
  auto lun = device_->engine()->GetLun(req->name());
  if (!lun.ok()) return ToGrpc(lun.status());
  ToProto(lun->move, lun->name, resp);
  return grpc::Status::OK;
}

grpc::Status StorageDeviceService::CancelMigration(grpc::ServerContext*,
                                                   const v1::CancelMigrationRequest* req,
                                                   v1::Migration* resp) {
  if (auto s = RequireName(req->name()); !s.ok()) return s;
  Status s = device_->engine()->CancelTierMove(req->name());
  if (!s.ok()) return ToGrpc(s);
  auto lun = device_->engine()->GetLun(req->name());
  if (!lun.ok()) return ToGrpc(lun.status());
  ToProto(lun->move, lun->name, resp);
  return grpc::Status::OK;
}

}  // namespace strata::storage
