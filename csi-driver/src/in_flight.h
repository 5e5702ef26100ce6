#pragma once

#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "strata/common/status.h"

namespace strata::csi {

// The volumes with an operation in progress: a second concurrent operation on one of
// them gets ABORTED, as the CSI spec asks ("operation pending for volume").
class InFlightSet {
 public:
  // Returns false when `key` is already held.
  bool TryAcquire(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    return keys_.insert(key).second;
  }
  void Release(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    keys_.erase(key);
  }

 private:
  std::mutex mu_;
  std::set<std::string> keys_;  // guarded by mu_
};

// Holds an InFlightSet key for its scope; status() is ABORTED when another holder had it.
class InFlightGuard {
 public:
  InFlightGuard(InFlightSet* set, std::string key) : set_(set), key_(std::move(key)) {
    held_ = set_->TryAcquire(key_);
  }
  ~InFlightGuard() {
    if (held_) set_->Release(key_);
  }
  InFlightGuard(const InFlightGuard&) = delete;
  InFlightGuard& operator=(const InFlightGuard&) = delete;
  Status status() const {
    return held_ ? Status::Ok()
                 : AbortedError("an operation on volume " + key_ + " is already in progress");
  }

 private:
  InFlightSet* set_;
  std::string key_;
  bool held_ = false;
};

}  // namespace strata::csi
