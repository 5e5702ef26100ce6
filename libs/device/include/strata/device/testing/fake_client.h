#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "strata/device/client.h"

namespace strata::device::testing {

// An in-memory device for unit tests: a DeviceStatus, LUNs by name, their stats, and a record of
// the mutating calls. MigrateLun marks the LUN's migration RUNNING (tests finish it with
// FinishMigration). Set `unreachable` to make every call UNAVAILABLE. Thread-safe.
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
    sv1::Lun l;
    l.set_name(r.name());
    l.set_size_bytes(r.size_bytes());
    l.set_tier(r.tier());
    l.set_dedup(r.dedup());
    l.set_owner(r.owner());
    *l.mutable_metadata() = r.metadata();
    luns_[r.name()] = l;
    calls_.push_back("CreateLun " + r.name());
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
    if (unreachable) return Unreachable();
    auto it = luns_.find(lun);
    if (it == luns_.end()) return NotFoundError("LUN " + lun + " not found");
    return it->second;
  }
  Result<std::vector<sv1::Lun>> ListLuns(const std::string& owner) override {
    std::lock_guard g(mu_);
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
  Result<sv1::Migration> CancelMigration(const std::string& lun) override {
    std::lock_guard g(mu_);
    auto it = luns_.find(lun);
    if (it == luns_.end()) return NotFoundError("LUN " + lun + " not found");
    it->second.mutable_migration()->set_state(sv1::MIGRATION_STATE_CANCELLED);
    return it->second.migration();
  }

  // Test setup and inspection.
  void PutLun(const sv1::Lun& lun) {
    std::lock_guard g(mu_);
    luns_[lun.name()] = lun;
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
  sv1::DeviceStatus status_;
  std::map<std::string, sv1::Lun> luns_;
  std::map<std::string, sv1::LunStats> stats_;
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
