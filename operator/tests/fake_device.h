#pragma once

// A device::Client for operator unit tests: LUNs in memory, SetLunDedup recorded and applied, a
// switch that makes every SetLunDedup fail with a given Status. Thread-safe.
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "strata/device/client.h"

namespace strata::op::testing {

namespace sv1 = ::strata::storage::v1;

class FakeDevice : public device::Client {
 public:
  explicit FakeDevice(std::string address) : address_(std::move(address)) {}

  struct DedupCall {
    std::string lun;
    bool dedup;
    bool fold;
  };

  const std::string& address() const override { return address_; }
  Result<sv1::DeviceStatus> GetDeviceStatus() override { return Unimplemented(); }
  Result<sv1::DeviceStatus> SetDeviceState(sv1::DeviceState, const std::string&) override {
    return Unimplemented();
  }
  Result<sv1::Lun> CreateLun(const sv1::CreateLunRequest&) override { return Unimplemented(); }
  Status DeleteLun(const std::string&) override { return Unimplemented(); }
  Result<sv1::Lun> GetLun(const std::string& lun) override {
    std::lock_guard g(mu_);
    auto it = luns_.find(lun);
    if (it == luns_.end()) return Status(StatusCode::kNotFound, "no LUN " + lun);
    return it->second;
  }
  Result<std::vector<sv1::Lun>> ListLuns(const std::string& = "") override {
    std::lock_guard g(mu_);
    std::vector<sv1::Lun> out;
    for (const auto& [_, l] : luns_) out.push_back(l);
    return out;
  }
  Result<sv1::Lun> ResizeLun(const std::string&, uint64_t) override { return Unimplemented(); }
  Result<sv1::Lun> SetLunAccess(const std::string&, const std::vector<std::string>&) override {
    return Unimplemented();
  }
  Result<sv1::LunStats> GetLunStats(const std::string&) override { return Unimplemented(); }
  Result<sv1::Lun> SetLunDedup(const std::string& lun, bool dedup, bool fold) override {
    std::lock_guard g(mu_);
    calls_.push_back({lun, dedup, fold});
    if (!fail_.ok()) return fail_;
    auto it = luns_.find(lun);
    if (it == luns_.end()) return Status(StatusCode::kNotFound, "no LUN " + lun);
    it->second.set_dedup(dedup);
    return it->second;
  }
  Result<sv1::Migration> MigrateLun(const sv1::MigrateLunRequest&) override {
    return Unimplemented();
  }
  Result<sv1::Migration> GetMigration(const std::string&) override { return Unimplemented(); }
  Result<sv1::Migration> CancelMigration(const std::string&) override { return Unimplemented(); }

  void PutLun(const sv1::Lun& lun) {
    std::lock_guard g(mu_);
    luns_[lun.name()] = lun;
  }
  sv1::Lun lun(const std::string& name) const {
    std::lock_guard g(mu_);
    return luns_.at(name);
  }
  std::vector<DedupCall> calls() const {
    std::lock_guard g(mu_);
    return calls_;
  }
  void FailSetLunDedup(Status st) {
    std::lock_guard g(mu_);
    fail_ = std::move(st);
  }

 private:
  static Status Unimplemented() { return Status(StatusCode::kUnimplemented, "fake"); }

  const std::string address_;
  mutable std::mutex mu_;
  std::map<std::string, sv1::Lun> luns_;
  std::vector<DedupCall> calls_;
  Status fail_;
};

}  // namespace strata::op::testing
