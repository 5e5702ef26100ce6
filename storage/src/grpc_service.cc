#include "grpc_service.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstring>
#include <optional>

#include "grpc_remote_device.h"
#include "lun_data_wire.h"
#include "proto_convert.h"
#include "strata/common/net_address.h"
#include "strata/storage/copy_priority.h"
#include "strata/storage/device_migration.h"

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
    std::map<std::string, std::pair<Clock::time_point, LunIoStats::Snapshot>> now;
    for (const LunInfo& l : engine_->ListLuns()) {
      auto snap = engine_->IoStats(l.name);
      if (!snap.ok()) continue;
      now.emplace(l.name, std::make_pair(Clock::now(), *snap));
    }
    lock.lock();
    std::map<std::string, IoRateWindow> next;
    for (auto& [name, s] : now) {
      auto it = samples_.find(name);
      auto& w = next.emplace(name, it != samples_.end() ? std::move(it->second)
                                                        : IoRateWindow(kWindowSamples))
                    .first->second;
      w.Add(s.first, s.second);
    }
    samples_.swap(next);  // deleted LUNs drop out
    cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; });
  }
}

IoRates IopsSampler::Rates(const std::string& lun, const LunIoStats::Snapshot& now) {
  std::lock_guard lock(mu_);
  auto it = samples_.find(lun);
  if (it == samples_.end()) return IoRates{};
  return it->second.Rates(Clock::now(), now);
}

grpc::Status StorageDeviceService::GetDeviceStatus(grpc::ServerContext*,
                                                   const v1::GetDeviceStatusRequest*,
                                                   v1::DeviceStatus* resp) {
  ToProto(device_->Status(), resp);
  resp->set_version(version_);
  return grpc::Status::OK;
}

grpc::Status StorageDeviceService::SetDeviceState(grpc::ServerContext* ctx,
                                                  const v1::SetDeviceStateRequest* req,
                                                  v1::DeviceStatus* resp) {
  DeviceState state;
  switch (req->state()) {
    case v1::DEVICE_STATE_ONLINE:
      state = DeviceState::kOnline;
      break;
    case v1::DEVICE_STATE_MAINTENANCE:
      state = DeviceState::kMaintenance;
      break;
    default:
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "state: must be DEVICE_STATE_ONLINE or DEVICE_STATE_MAINTENANCE");
  }
  Status s = device_->SetState(state, req->reason());
  if (!s.ok()) return ToGrpc(s);
  return GetDeviceStatus(ctx, nullptr, resp);
}

grpc::Status StorageDeviceService::LunReply(const std::string& name, v1::Lun* out) {
  auto lun = device_->engine()->GetLun(name);
  if (!lun.ok()) return ToGrpc(lun.status());
  ToProto(*lun, device_->portals(), out);
  return grpc::Status::OK;
}

grpc::Status StorageDeviceService::CreateLun(grpc::ServerContext*, const v1::CreateLunRequest* req,
                                             v1::Lun* resp) {
  // An identical request for an existing LUN is still answered in maintenance.
  if (auto existing = device_->engine()->GetLun(req->name()); !existing.ok()) {
    if (Status s = device_->CheckAcceptsNewLuns(); !s.ok()) return ToGrpc(s);
  }
  LunSpec spec;
  spec.name = req->name();
  spec.size_bytes = req->size_bytes();
  if (req->tier() != v1::TIER_CLASS_UNSPECIFIED) {
    auto t = FromProto(req->tier(), "tier");
    if (!t.ok()) return ToGrpc(t.status());
    spec.tier = *t;
  }
  spec.dedup = req->dedup();
  if (spec.dedup && !device_->config().dedup_enabled) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "dedup: de-duplication is off on device " + device_->config().name +
                            " (strata-stored --dedup off)");
  }
  spec.owner = req->owner();
  spec.wwn = req->wwn();
  spec.metadata.insert(req->metadata().begin(), req->metadata().end());
  if (req->has_access()) {
    spec.allowed_clients.assign(req->access().allowed_clients().begin(),
                                req->access().allowed_clients().end());
    spec.allowed_identities.assign(req->access().allowed_identities().begin(),
                                   req->access().allowed_identities().end());
  }
  if (!req->clone_from().empty() && !req->from_snapshot().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "from_snapshot: cannot be set together with clone_from");
  }
  auto lun = !req->from_snapshot().empty()
                 ? device_->engine()->RestoreSnapshot(req->from_snapshot(), spec)
             : req->clone_from().empty() ? device_->engine()->CreateLun(spec)
                                         : device_->engine()->CloneLun(req->clone_from(), spec);
  if (!lun.ok()) return ToGrpc(lun.status());
  ToProto(*lun, device_->portals(), resp);
  return grpc::Status::OK;
}

grpc::Status StorageDeviceService::DeleteLun(grpc::ServerContext*, const v1::DeleteLunRequest* req,
                                             v1::DeleteLunResponse*) {
  if (auto s = RequireName(req->name()); !s.ok()) return s;
  if (move_exports_) move_exports_->Revoke(req->name());
  return ToGrpc(device_->engine()->DeleteLun(req->name()));
}

grpc::Status StorageDeviceService::AcceptLun(grpc::ServerContext*, const v1::AcceptLunRequest* req,
                                             v1::Lun* resp) {
  if (auto s = RequireName(req->name()); !s.ok()) return s;
  if (req->wwn().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "wwn: required");
  }
  auto lun = device_->engine()->AcceptLun(req->name(), req->wwn());
  if (!lun.ok()) return ToGrpc(lun.status());
  // The copy is complete: its move export closes (writes after the accept are refused).
  if (move_exports_) move_exports_->Revoke(req->name());
  ToProto(*lun, device_->portals(), resp);
  return grpc::Status::OK;
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
    ToProto(l, device_->portals(), resp->add_luns());
    ++n;
  }
  return grpc::Status::OK;
}

grpc::Status StorageDeviceService::ResizeLun(grpc::ServerContext*, const v1::ResizeLunRequest* req,
                                             v1::Lun* resp) {
  if (auto s = RequireName(req->name()); !s.ok()) return s;
  auto lun = device_->engine()->ResizeLun(req->name(), req->size_bytes());
  if (!lun.ok()) return ToGrpc(lun.status());
  ToProto(*lun, device_->portals(), resp);
  return grpc::Status::OK;
}

grpc::Status StorageDeviceService::SetLunAccess(grpc::ServerContext*,
                                                const v1::SetLunAccessRequest* req, v1::Lun* resp) {
  if (auto s = RequireName(req->name()); !s.ok()) return s;
  std::vector<std::string> allowed(req->access().allowed_clients().begin(),
                                   req->access().allowed_clients().end());
  std::vector<std::string> identities(req->access().allowed_identities().begin(),
                                      req->access().allowed_identities().end());
  auto lun = device_->engine()->SetAccess(req->name(), std::move(allowed), std::move(identities));
  if (!lun.ok()) return ToGrpc(lun.status());
  ToProto(*lun, device_->portals(), resp);
  return grpc::Status::OK;
}

grpc::Status StorageDeviceService::PublishLun(grpc::ServerContext*,
                                              const v1::PublishLunRequest* req, v1::Lun* resp) {
  if (auto s = RequireName(req->name()); !s.ok()) return s;
  std::vector<std::string> entries(req->access_entries().begin(), req->access_entries().end());
  auto lun = device_->engine()->Publish(req->name(), req->node_id(), entries);
  if (!lun.ok()) return ToGrpc(lun.status());
  ToProto(*lun, device_->portals(), resp);
  return grpc::Status::OK;
}

grpc::Status StorageDeviceService::UnpublishLun(grpc::ServerContext*,
                                                const v1::UnpublishLunRequest* req, v1::Lun* resp) {
  if (auto s = RequireName(req->name()); !s.ok()) return s;
  std::vector<std::string> entries(req->access_entries().begin(), req->access_entries().end());
  auto lun = device_->engine()->Unpublish(req->name(), req->node_id(), entries);
  if (!lun.ok()) return ToGrpc(lun.status());
  ToProto(*lun, device_->portals(), resp);
  return grpc::Status::OK;
}

grpc::Status StorageDeviceService::SetLunDedup(grpc::ServerContext*,
                                               const v1::SetLunDedupRequest* req, v1::Lun* resp) {
  if (auto s = RequireName(req->name()); !s.ok()) return s;
  // Only turning it on needs the device-wide switch: turning it off (or confirming
  // it is off) stays possible on a device restarted with --dedup off.
  if (req->dedup() && !device_->config().dedup_enabled) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "dedup: de-duplication is off on device " + device_->config().name +
                            " (strata-stored --dedup off)");
  }
  auto lun = device_->engine()->SetDedup(req->name(), req->dedup(), req->fold_existing());
  if (!lun.ok()) return ToGrpc(lun.status());
  ToProto(*lun, device_->portals(), resp);
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
    const int i = static_cast<int>(k);
    ToProto(snap->of(k), rates.ops_per_second[i], rates.bytes_per_second[i], out);
  };
  kind(IoKind::kRead, resp->mutable_read());
  kind(IoKind::kWrite, resp->mutable_write());
  kind(IoKind::kFlush, resp->mutable_flush());
  kind(IoKind::kTrim, resp->mutable_trim());
  kind(IoKind::kWriteZeroes, resp->mutable_write_zeroes());
  ToProto(lun->space, resp->mutable_space());
  resp->set_idle_seconds(lun->idle_seconds);
  resp->set_tier(ToProto(lun->tier));
  return grpc::Status::OK;
}

StorageDeviceService::~StorageDeviceService() {
  std::lock_guard lock(moves_mu_);
  for (auto& [name, m] : device_moves_) m->cancel = true;
  for (auto& [name, m] : device_moves_) {
    if (m->thread.joinable()) m->thread.join();
  }
}

grpc::Status StorageDeviceService::MigrateLun(grpc::ServerContext*,
                                              const v1::MigrateLunRequest* req,
                                              v1::Migration* resp) {
  if (auto s = RequireName(req->name()); !s.ok()) return s;
  if (!req->to_device().empty()) {
    auto hp = ParseHostPort(req->to_device(), "to_device");
    if (!hp.ok()) return ToGrpc(hp.status());
    DeviceMoveOptions opts;
    opts.verify = verify_moves_;
    if (req->to_tier() != v1::TIER_CLASS_UNSPECIFIED) {
      auto t = FromProto(req->to_tier(), "to_tier");
      if (!t.ok()) return ToGrpc(t.status());
      opts.target_tier = *t;
    }
    std::lock_guard lock(moves_mu_);
    Status begun = BeginLunMoveToDevice(device_->engine(), req->name(), req->to_device());
    if (!begun.ok()) return ToGrpc(begun);
    auto& slot = device_moves_[req->name()];
    if (slot && slot->thread.joinable()) slot->thread.join();  // an earlier, finished move
    slot = std::make_unique<DeviceMove>();
    DeviceMove* move = slot.get();
    std::string name = req->name();
    std::string target = req->to_device();
    Engine* engine = device_->engine();
    const MoveDataPath data_path = move_data_path_;
    move->thread = std::thread([engine, name, target, opts, move, data_path] {
      BecomeCopyThread();
      GrpcRemoteDevice remote(target, GrpcRemoteDevice::kDefaultCopyStreams, data_path);
      Status s = RunLunMoveToDevice(engine, name, &remote, opts, &move->cancel);
      if (!s.ok()) spdlog::warn("move of LUN {} to {}: {}", name, target, s.ToString());
    });
    auto lun = device_->engine()->GetLun(req->name());
    if (!lun.ok()) return ToGrpc(lun.status());
    ToProto(lun->move, lun->name, resp);
    return grpc::Status::OK;
  }
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
  if (req->wait_ms() > kMaxMigrationWaitMs) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "wait_ms: " + std::to_string(req->wait_ms()) + " is more than " +
                            std::to_string(kMaxMigrationWaitMs));
  }
  if (req->wait_ms() > 0) {
    auto waited =
        device_->engine()->WaitTierMoveFor(req->name(), std::chrono::milliseconds(req->wait_ms()));
    if (!waited.ok()) return ToGrpc(waited.status());
  }
  auto lun = device_->engine()->GetLun(req->name());
  if (!lun.ok()) return ToGrpc(lun.status());
  ToProto(lun->move, lun->name, resp);
  return grpc::Status::OK;
}

grpc::Status StorageDeviceService::CancelMigration(grpc::ServerContext*,
                                                   const v1::CancelMigrationRequest* req,
                                                   v1::Migration* resp) {
  if (auto s = RequireName(req->name()); !s.ok()) return s;
  bool device_move = false;
  {
    std::lock_guard lock(moves_mu_);
    auto it = device_moves_.find(req->name());
    if (it != device_moves_.end() && it->second->thread.joinable()) {
      it->second->cancel = true;
      device_move = true;
    }
  }
  if (!device_move) {
    Status s = device_->engine()->CancelTierMove(req->name());
    if (!s.ok()) return ToGrpc(s);
  }
  auto lun = device_->engine()->GetLun(req->name());
  if (!lun.ok()) return ToGrpc(lun.status());
  ToProto(lun->move, lun->name, resp);
  return grpc::Status::OK;
}

}  // namespace strata::storage

namespace strata::storage {

// How long a move's copy message waits for this device's clients (LunData.background).
constexpr auto kMaxYieldToClients = std::chrono::microseconds(2000);

const std::string& WriteLunDataMethodPath() {
  static const std::string path = [] {
    const auto* m = v1::LunData::descriptor()
                        ->file()
                        ->FindServiceByName("StorageDevice")
                        ->FindMethodByName("WriteLunData");
    return "/" + m->service()->full_name() + "/" + m->name();
  }();
  return path;
}

int WriteLunDataMethodIndex() {
  static const int index = v1::LunData::descriptor()
                               ->file()
                               ->FindServiceByName("StorageDevice")
                               ->FindMethodByName("WriteLunData")
                               ->index();
  return index;
}

grpc::Status StorageDeviceService::WriteLunDataRaw(grpc::ServerContext*,
                                                   grpc::ServerReader<grpc::ByteBuffer>* reader,
                                                   v1::WriteLunDataResponse* resp) {
  grpc::ByteBuffer msg;
  std::vector<grpc::Slice> slices;
  std::vector<std::span<const char>> chunks;
  std::string open_name;
  std::shared_ptr<Volume> vol;
  uint64_t written = 0;
  // A move's messages (background) are stored at the copy priority; others (a
  // proxied client's writes) at normal priority.
  std::optional<CopyThreadScope> copy;
  while (reader->Read(&msg)) {
    slices.clear();
    if (!msg.Dump(&slices).ok()) {
      return grpc::Status(grpc::StatusCode::INTERNAL, "WriteLunData: unreadable message buffer");
    }
    chunks.clear();
    for (const auto& sl : slices) {
      chunks.emplace_back(reinterpret_cast<const char*>(sl.begin()), sl.size());
    }
    auto m = DecodeLunData(chunks);
    if (!m.ok()) return ToGrpc(m.status());
    const LunDataHeader& h = m->header;
    if (h.background != copy.has_value()) {
      if (h.background) {
        copy.emplace();
      } else {
        copy.reset();
      }
    }
    if (h.name != open_name || !vol) {
      if (auto s = RequireName(h.name); !s.ok()) return s;
      // A move's copy goes into its incoming LUN; anything else is a stub's client I/O,
      // which must reach the LUN itself, never a copy still under way.
      auto v = h.background ? device_->engine()->OpenVolume(h.name)
                            : device_->engine()->OpenVolumeForProxy(h.name);
      if (!v.ok()) return ToGrpc(v.status());
      vol = *v;
      open_name = h.name;
    }
    if (h.background) device_->engine()->YieldToClients(kMaxYieldToClients, m->data_size);
    Status s;
    if (h.zero_length > 0) {
      s = vol->WriteZeroes(h.offset, h.zero_length, h.fua);
    } else if (m->data.empty()) {
      s = vol->Write(h.offset, std::span<const char>(), h.fua);
    } else {
      // gRPC hands a message over in the pieces it arrived in (HTTP/2 frames of 16
      // KiB by default): stored from there, not joined (Volume::WriteV).
      s = vol->WriteV(h.offset, m->data, h.fua);
    }
    if (!s.ok()) return ToGrpc(s);
    written += h.zero_length + m->data_size;
  }
  resp->set_bytes_written(written);
  return grpc::Status::OK;
}

grpc::Status StorageDeviceService::ReadLunData(grpc::ServerContext*,
                                               const v1::ReadLunDataRequest* req,
                                               v1::LunData* resp) {
  if (auto s = RequireName(req->name()); !s.ok()) return s;
  if (req->length() > (32u << 20)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "length: at most 32 MiB per read");
  }
  // Only a stub reads here (a move reads its source's own blocks): never a copy under way.
  auto v = device_->engine()->OpenVolumeForProxy(req->name());
  if (!v.ok()) return ToGrpc(v.status());
  std::string* data = resp->mutable_data();
  data->resize(req->length());
  Status s = (*v)->Read(req->offset(), std::span<char>(data->data(), data->size()));
  if (!s.ok()) return ToGrpc(s);
  resp->set_name(req->name());
  resp->set_offset(req->offset());
  return grpc::Status::OK;
}

grpc::Status StorageDeviceService::FlushLun(grpc::ServerContext*, const v1::FlushLunRequest* req,
                                            v1::FlushLunResponse*) {
  if (auto s = RequireName(req->name()); !s.ok()) return s;
  auto v = device_->engine()->OpenVolume(req->name());
  if (!v.ok()) return ToGrpc(v.status());
  return ToGrpc((*v)->Flush());
}

grpc::Status StorageDeviceService::GetLunChecksums(grpc::ServerContext*,
                                                   const v1::GetLunChecksumsRequest* req,
                                                   v1::LunChecksums* resp) {
  if (auto s = RequireName(req->name()); !s.ok()) return s;
  CopyThreadScope copy;  // a move's verification
  auto sums = device_->engine()->LunChecksums(req->name(), req->range_bytes(), req->offset(),
                                              req->length());
  if (!sums.ok()) return ToGrpc(sums.status());
  resp->set_name(req->name());
  resp->set_range_bytes(req->range_bytes());
  resp->set_offset(req->offset());
  resp->mutable_xxh3()->Add(sums->begin(), sums->end());
  return grpc::Status::OK;
}

}  // namespace strata::storage

namespace strata::storage {
namespace {

// ListSnapshots tokens: this prefix and the last name returned (pages are by name, so
// a snapshot created or deleted between pages neither repeats nor shifts the rest).
constexpr std::string_view kSnapshotTokenPrefix = "snap1:";

}  // namespace

std::string SnapshotPageToken(const std::string& last_name) {
  return std::string(kSnapshotTokenPrefix) + last_name;
}

grpc::Status StorageDeviceService::OpenMoveExport(grpc::ServerContext*,
                                                  const v1::OpenMoveExportRequest* req,
                                                  v1::MoveExport* resp) {
  if (auto s = RequireName(req->name()); !s.ok()) return s;
  if (req->wwn().empty()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "wwn: required");
  const std::vector<HostPort> portals = device_->portals();
  if (!move_exports_ || portals.empty()) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "this device serves no NBD portal: send the move over WriteLunData");
  }
  if (nbd_tls_required_) {
    // TLS for the move's NBD connection is a later step; WriteLunData is over the
    // management API's own (mutual) TLS.
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "this device's NBD portals require TLS (--nbd-tls require), which "
                        "moves do not speak yet: send the move over WriteLunData");
  }
  auto name = move_exports_->OpenMoveExport(req->name(), req->wwn());
  if (!name.ok()) return ToGrpc(name.status());
  resp->set_export_name(*name);
  for (const auto& p : portals) resp->add_portals(p.ToString());
  return grpc::Status::OK;
}

grpc::Status StorageDeviceService::CreateSnapshot(grpc::ServerContext*,
                                                  const v1::CreateSnapshotRequest* req,
                                                  v1::Snapshot* resp) {
  // A retry for an existing snapshot is still answered in maintenance.
  if (Status s = device_->CheckAcceptsNewLuns(); !s.ok()) {
    if (!device_->engine()->GetSnapshot(req->name()).ok()) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "name: snapshot " + req->name() + " not taken: " + s.message());
    }
  }
  std::map<std::string, std::string> metadata(req->metadata().begin(), req->metadata().end());
  auto snap = device_->engine()->CreateSnapshot(req->source_lun(), req->name(), metadata);
  if (!snap.ok()) return ToGrpc(snap.status());
  ToProto(*snap, resp);
  return grpc::Status::OK;
}

grpc::Status StorageDeviceService::DeleteSnapshot(grpc::ServerContext*,
                                                  const v1::DeleteSnapshotRequest* req,
                                                  v1::DeleteSnapshotResponse*) {
  if (auto s = RequireName(req->name()); !s.ok()) return s;
  Status s = device_->engine()->DeleteSnapshot(req->name());
  if (s.code() == StatusCode::kNotFound) return grpc::Status::OK;  // idempotent
  return ToGrpc(s);
}

grpc::Status StorageDeviceService::GetSnapshot(grpc::ServerContext*,
                                               const v1::GetSnapshotRequest* req,
                                               v1::Snapshot* resp) {
  if (auto s = RequireName(req->name()); !s.ok()) return s;
  auto snap = device_->engine()->GetSnapshot(req->name());
  if (!snap.ok()) return ToGrpc(snap.status());
  ToProto(*snap, resp);
  return grpc::Status::OK;
}

grpc::Status StorageDeviceService::ListSnapshots(grpc::ServerContext*,
                                                 const v1::ListSnapshotsRequest* req,
                                                 v1::ListSnapshotsResponse* resp) {
  std::string after;
  if (!req->starting_token().empty()) {
    if (req->starting_token().rfind(kSnapshotTokenPrefix, 0) != 0) {
      return grpc::Status(grpc::StatusCode::ABORTED,
                          "starting_token: '" + req->starting_token() +
                              "' was not handed out by ListSnapshots of this device");
    }
    after = req->starting_token().substr(kSnapshotTokenPrefix.size());
  }
  for (const SnapshotInfo& s : device_->engine()->ListSnapshots()) {
    if (!after.empty() && s.name <= after) continue;
    if (!req->name().empty() && s.name != req->name()) continue;
    if (!req->source_lun().empty() && s.source_lun != req->source_lun()) continue;
    if (req->max_entries() && static_cast<uint32_t>(resp->snapshots_size()) == req->max_entries()) {
      resp->set_next_token(SnapshotPageToken(resp->snapshots(resp->snapshots_size() - 1).name()));
      break;
    }
    ToProto(s, resp->add_snapshots());
  }
  return grpc::Status::OK;
}

}  // namespace strata::storage
