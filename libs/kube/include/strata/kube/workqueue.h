#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "strata/kube/clock.h"
#include "strata/kube/rate_limiter.h"

namespace strata::kube {

// A rate-limited, delaying work queue of object keys with client-go's semantics:
//  - a key queued twice before a worker takes it is processed once (de-duplication);
//  - a key is never handed to two workers at once: re-adding a key that is being processed marks
//    it dirty, and Done() puts it back for one more pass;
//  - AddRateLimited() delays a key by max(per-item exponential backoff, overall token bucket);
//    Forget() resets the key's backoff after a success;
//  - AddAfter() delays a key; of several pending delays for a key the earliest wins.
// Thread-safe. Time comes from the injected Clock.
class WorkQueue {
 public:
  struct Options {
    ExponentialBackoff backoff;  // 5 ms doubling up to 1000 s, as client-go
    double qps = 10;             // overall limit of AddRateLimited, as client-go
    int burst = 100;
  };

  WorkQueue(Options options, Clock* clock);
  explicit WorkQueue(Clock* clock) : WorkQueue(Options{}, clock) {}
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  void Add(const std::string& key);
  void AddAfter(const std::string& key, Duration delay);
  void AddRateLimited(const std::string& key);
  void Forget(const std::string& key);
  int NumRequeues(const std::string& key) const;

  // Blocks until a key is ready or the queue shuts down (nullopt). The caller owns the key until
  // it calls Done(key).
  std::optional<std::string> Get();
  // Like Get() but gives up at `deadline` (nullopt).
  std::optional<std::string> GetUntil(TimePoint deadline);
  void Done(const std::string& key);

  // Wakes every Get(); later Adds are dropped. Keys being processed may still call Done().
  void ShutDown();
  bool ShuttingDown() const;

  // Keys ready for a worker (not counting delayed or in-process ones).
  size_t Len() const;
  // Keys waiting for their delay to pass.
  size_t DelayedLen() const;

 private:
  void AddLocked(const std::string& key);  // REQUIRES: mu_ held
  void PromoteDueLocked();                 // REQUIRES: mu_ held
  std::optional<std::string> GetImpl(std::optional<TimePoint> deadline);

  Clock* const clock_;
  const ExponentialBackoff backoff_;
  TokenBucket bucket_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;                       // guarded by mu_
  std::unordered_set<std::string> dirty_;               // guarded by mu_; queued or re-added
  std::unordered_set<std::string> processing_;          // guarded by mu_
  std::unordered_map<std::string, TimePoint> delayed_;  // guarded by mu_; earliest ready time
  std::unordered_map<std::string, int> failures_;       // guarded by mu_
  bool shutting_down_ = false;                          // guarded by mu_
};

}  // namespace strata::kube
