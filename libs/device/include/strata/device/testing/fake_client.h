#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "strata/device/client.h"

namespace strata::device::testing {

// An in-memory device for unit tests: a DeviceStatus, LUNs by name, their stats, and a record of
// the mutating calls. MigrateLun marks the LUN's migration RUNNING (tests finish it with
// FinishMigration). Snapshots follow the device's rules (storage.proto): idempotent create,
// ALREADY_EXISTS for a name of another source, NOT_FOUND, DeleteSnapshot of a missing one OK,
// DeleteLun keeps the LUN's snapshots, ListSnapshots pages with opaque tokens (ABORTED on a bad
// one), CreateLun from_snapshot checks the snapshot and the size. Set `unreachable` to make every
// call UNAVAILABLE. Thread-safe.
class FakeClient : public Client {
 public:
  explicit FakeClient(std::string address) : address_(std::move(address)) {
    status_.set_name(address_);
    status_.set_state(sv1::DEVICE_STATE_ONLINE);
  }

  const std::string& address() const override { return address_; }

  Result<sv1::DeviceStatus> GetDeviceStatus() override {
    std::lock_guard g(mu_);
    if (unreachable) return Unreachable();
    return status_;
  }
  Result<sv1::DeviceStatus> SetDeviceState(sv1::DeviceState state, const std::string&) override {
    std::lock_guard g(mu_);
    if (unreachable) return Unreachable();
    status_.set_state(state);
    return status_;
  }
  Result<sv1::Lun> CreateLun(const sv1::CreateLunRequest& r) override {
    std::lock_guard g(mu_);
    if (unreachable) return Unreachable();
    sv1::TierClass tier = r.tier();
    if (!r.from_snapshot().empty()) {
      if (!r.clone_from().empty()) {
        return InvalidArgumentError("from_snapshot: cannot be set together with clone_from");
      }
      auto snap = snapshots_.find(r.from_snapshot());
      if (snap == snapshots_.end()) {
        return NotFoundError("from_snapshot: snapshot " + r.from_snapshot() + " not found");
      }
      if (r.size_bytes() < snap->second.size_bytes()) {
        return OutOfRangeError("size_bytes: " + std::to_string(r.size_bytes()) +
                               " is smaller than snapshot " + r.from_snapshot() + " (" +
                               std::to_string(snap->second.size_bytes()) + ")");
      }
      if (tier == sv1::TIER_CLASS_UNSPECIFIED) tier = snap->second.tier();
    }
    sv1::Lun l;
    l.set_name(r.name());
    l.set_size_bytes(r.size_bytes());
    l.set_tier(tier);
    l.set_dedup(r.dedup());
    l.set_owner(r.owner());
    *l.mutable_metadata() = r.metadata();
    luns_[r.name()] = l;
    calls_.push_back("CreateLun " + r.name() +
                     (r.from_snapshot().empty() ? "" : " from_snapshot " + r.from_snapshot()));
    return l;
  }
  Status DeleteLun(const std::string& lun) override {
    std::lock_guard g(mu_);
    if (unreachable) return Unreachable();
    calls_.push_back("DeleteLun " + lun);
    if (luns_.erase(lun) == 0) return NotFoundError("LUN " + lun + " not found");
    return Status::Ok();
  }
  Result<sv1::Lun> GetLun(const std::string& lun) override {
    std::lock_guard g(mu_);
    ++reads_["GetLun"];
    if (unreachable) return Unreachable();
    auto it = luns_.find(lun);
    if (it == luns_.end()) return NotFoundError("LUN " + lun + " not found");
    return it->second;
  }
  Result<std::vector<sv1::Lun>> ListLuns(const std::string& owner) override {
    std::lock_guard g(mu_);
    ++reads_["ListLuns"];
    if (unreachable) return Unreachable();
    std::vector<sv1::Lun> out;
    for (const auto& [name, l] : luns_) {
      if (owner.empty() || l.owner() == owner) out.push_back(l);
    }
    return out;
  }
  Result<sv1::Lun> ResizeLun(const std::string& lun, uint64_t size) override {
    std::lock_guard g(mu_);
    auto it = luns_.find(lun);
    if (it == luns_.end()) return NotFoundError("LUN " + lun + " not found");
    it->second.set_size_bytes(size);
    return it->second;
  }
  Result<sv1::Lun> SetLunAccess(const std::string& lun,
                                const std::vector<std::string>& clients) override {
    std::lock_guard g(mu_);
    auto it = luns_.find(lun);
    if (it == luns_.end()) return NotFoundError("LUN " + lun + " not found");
    it->second.mutable_access()->clear_allowed_clients();
    for (const auto& c : clients) it->second.mutable_access()->add_allowed_clients(c);
    return it->second;
  }
  Result<sv1::LunStats> GetLunStats(const std::string& lun) override {
    std::lock_guard g(mu_);
    if (unreachable) return Unreachable();
    if (!luns_.contains(lun)) return NotFoundError("LUN " + lun + " not found");
    sv1::LunStats s = stats_[lun];
    s.set_name(lun);
    s.set_tier(luns_[lun].tier());
    return s;
  }
  Result<sv1::Lun> SetLunDedup(const std::string& lun, bool dedup, bool fold) override {
    std::lock_guard g(mu_);
    if (unreachable) return Unreachable();
    auto it = luns_.find(lun);
    if (it == luns_.end()) return NotFoundError("LUN " + lun + " not found");
    if (dedup && !status_.dedup_enabled()) {
      return FailedPreconditionError("device " + address_ + " has dedup disabled");
    }
    it->second.set_dedup(dedup);
    calls_.push_back(std::string("SetLunDedup ") + lun + (dedup ? " on" : " off") +
                     (fold ? " fold" : ""));
    return it->second;
  }
  Result<sv1::Migration> MigrateLun(const sv1::MigrateLunRequest& r) override {
    std::lock_guard g(mu_);
    if (unreachable) return Unreachable();
    auto it = luns_.find(r.name());
    if (it == luns_.end()) return NotFoundError("LUN " + r.name() + " not found");
    if (it->second.migration().state() == sv1::MIGRATION_STATE_RUNNING) {
      return FailedPreconditionError("LUN " + r.name() + " is already moving");
    }
    auto* m = it->second.mutable_migration();
    m->set_lun(r.name());
    m->set_state(sv1::MIGRATION_STATE_RUNNING);
    m->set_from_tier(it->second.tier());
    m->set_to_tier(r.to_tier());
    m->set_to_device(r.to_device());
    calls_.push_back("MigrateLun " + r.name() + " " + std::to_string(r.to_tier()) +
                     (r.to_device().empty() ? "" : " " + r.to_device()));
    return *m;
  }
  Result<sv1::Migration> GetMigration(const std::string& lun) override {
    std::lock_guard g(mu_);
    auto it = luns_.find(lun);
    if (it == luns_.end()) return NotFoundError("LUN " + lun + " not found");
    return it->second.migration();
  }
  // Returns when the migration is not RUNNING or after `wait`.
  Result<sv1::Migration> WaitMigration(const std::string& lun,
                                       std::chrono::milliseconds wait) override {
    std::unique_lock g(mu_);
    if (unreachable) return Unreachable();
    ++long_polls_;
    migration_cv_.wait_for(g, wait, [&] {
      auto it = luns_.find(lun);
      return it == luns_.end() || it->second.migration().state() != sv1::MIGRATION_STATE_RUNNING;
    });
    auto it = luns_.find(lun);
    if (it == luns_.end()) return NotFoundError("LUN " + lun + " not found");
    return it->second.migration();
  }
  Result<sv1::Migration> CancelMigration(const std::string& lun) override {
    std::lock_guard g(mu_);
    auto it = luns_.find(lun);
    if (it == luns_.end()) return NotFoundError("LUN " + lun + " not found");
    it->second.mutable_migration()->set_state(sv1::MIGRATION_STATE_CANCELLED);
    migration_cv_.notify_all();
    return it->second.migration();
  }
  Result<sv1::Snapshot> CreateSnapshot(const sv1::CreateSnapshotRequest& r) override {
    std::lock_guard g(mu_);
    if (unreachable) return Unreachable();
    if (r.name().empty()) return InvalidArgumentError("name: is required");
    if (r.source_lun().empty()) return InvalidArgumentError("source_lun: is required");
    if (auto it = snapshots_.find(r.name()); it != snapshots_.end()) {
      if (it->second.source_lun() == r.source_lun()) return it->second;
      return AlreadyExistsError("name: snapshot " + r.name() + " exists with source_lun " +
                                it->second.source_lun());
    }
    auto lun = luns_.find(r.source_lun());
    if (lun == luns_.end()) {
      return NotFoundError("source_lun: LUN " + r.source_lun() + " not found");
    }
    sv1::Snapshot s;
    s.set_name(r.name());
    s.set_source_lun(r.source_lun());
    s.set_size_bytes(lun->second.size_bytes());
    s.set_created_unix_nanos(
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count()));
    s.set_ready_to_use(true);
    s.set_tier(lun->second.tier());
    s.set_owner(lun->second.owner());
    *s.mutable_metadata() = r.metadata();
    s.set_id(std::to_string(++next_snapshot_id_));
    snapshots_[r.name()] = s;
    calls_.push_back("CreateSnapshot " + r.name() + " of " + r.source_lun());
    return s;
  }
  Status DeleteSnapshot(const std::string& snapshot) override {
    std::lock_guard g(mu_);
    if (unreachable) return Unreachable();
    calls_.push_back("DeleteSnapshot " + snapshot);
    snapshots_.erase(snapshot);
    return Status::Ok();
  }
  Result<sv1::Snapshot> GetSnapshot(const std::string& snapshot) override {
    std::lock_guard g(mu_);
    if (unreachable) return Unreachable();
    auto it = snapshots_.find(snapshot);
    if (it == snapshots_.end()) return NotFoundError("snapshot " + snapshot + " not found");
    return it->second;
  }
  Result<sv1::ListSnapshotsResponse> ListSnapshots(const sv1::ListSnapshotsRequest& r) override {
    std::lock_guard g(mu_);
    if (unreachable) return Unreachable();
    static constexpr std::string_view kTokenPrefix = "fake:";
    std::string after;
    if (!r.starting_token().empty()) {
      if (r.starting_token().rfind(kTokenPrefix, 0) != 0) {
        return AbortedError("starting_token: " + r.starting_token() + " is not a token");
      }
      after = r.starting_token().substr(kTokenPrefix.size());
    }
    sv1::ListSnapshotsResponse out;
    for (const auto& [name, s] : snapshots_) {
      if (!after.empty() && name <= after) continue;
      if (!r.name().empty() && name != r.name()) continue;
      if (!r.source_lun().empty() && s.source_lun() != r.source_lun()) continue;
      if (r.max_entries() && static_cast<uint32_t>(out.snapshots_size()) == r.max_entries()) {
        out.set_next_token(std::string(kTokenPrefix) +
                           out.snapshots(out.snapshots_size() - 1).name());
        break;
      }
      *out.add_snapshots() = s;
    }
    return out;
  }

  // Test setup and inspection.
  void PutLun(const sv1::Lun& lun) {
    std::lock_guard g(mu_);
    luns_[lun.name()] = lun;
    migration_cv_.notify_all();
  }
  void PutSnapshot(const sv1::Snapshot& snapshot) {
    std::lock_guard g(mu_);
    snapshots_[snapshot.name()] = snapshot;
  }
  void SetStats(const std::string& lun, const sv1::LunStats& stats) {
    std::lock_guard g(mu_);
    stats_[lun] = stats;
  }
  void MutateStatus(const std::function<void(sv1::DeviceStatus&)>& f) {
    std::lock_guard g(mu_);
    f(status_);
  }
  // An intra-device move completes: the LUN is on its target tier.
  void FinishMigration(const std::string& lun) {
    std::lock_guard g(mu_);
    auto& l = luns_[lun];
    l.set_tier(l.migration().to_tier());
    l.mutable_migration()->set_state(sv1::MIGRATION_STATE_DONE);
    migration_cv_.notify_all();
  }
  // GetLun or ListLuns calls so far (`call` names which).
  int Reads(const std::string& call) const {
    std::lock_guard g(mu_);
    auto it = reads_.find(call);
    return it == reads_.end() ? 0 : it->second;
  }
  // WaitMigration calls so far (each one long poll).
  int LongPolls() const {
    std::lock_guard g(mu_);
    return long_polls_;
  }
  std::vector<std::string> Calls() const {
    std::lock_guard g(mu_);
    return calls_;
  }

  bool unreachable = false;  // set before the calls that should fail

 private:
  Status Unreachable() const { return UnavailableError("device " + address_ + " unreachable"); }

  const std::string address_;
  mutable std::mutex mu_;
  std::condition_variable migration_cv_;
  int long_polls_ = 0;
  std::map<std::string, int> reads_;
  sv1::DeviceStatus status_;
  std::map<std::string, sv1::Lun> luns_;
  std::map<std::string, sv1::LunStats> stats_;
  std::map<std::string, sv1::Snapshot> snapshots_;
  uint64_t next_snapshot_id_ = 0;
  std::vector<std::string> calls_;
};

// A ClientCache over FakeClients made on first use, reachable by address for test setup.
class FakeFleet {
 public:
  FakeFleet() : cache_([this](const std::string& address) -> ClientPtr { return Get(address); }) {}
  std::shared_ptr<FakeClient> Get(const std::string& address) {
    std::lock_guard g(mu_);
    auto& c = devices_[address];
    if (!c) c = std::make_shared<FakeClient>(address);
    return c;
  }
  ClientCache* cache() { return &cache_; }

 private:
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<FakeClient>> devices_;
  ClientCache cache_;
};

}  // namespace strata::device::testing
