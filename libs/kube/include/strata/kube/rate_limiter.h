#pragma once

#include <mutex>

#include "strata/kube/clock.h"

namespace strata::kube {

// A token bucket: `qps` tokens a second, at most `burst` saved up (golang.org/x/time/rate, which
// client-go uses for both its client-side QPS limit and the work queue's overall limit).
// Thread-safe.
class TokenBucket {
 public:
  // REQUIRES: qps > 0, burst >= 1.
  TokenBucket(double qps, int burst, Clock* clock);

  // Takes a token now, going into debt when none is left, and returns how long the caller must
  // wait before acting on it (zero when a token was available). Callers in debt queue up fairly.
  Duration Reserve();

 private:
  const double qps_;
  const double burst_;
  Clock* const clock_;
  std::mutex mu_;
  double tokens_;   // guarded by mu_; negative when reservations are outstanding
  TimePoint last_;  // guarded by mu_
};

// Per-item exponential backoff: base * 2^failures, capped at max (client-go's
// ItemExponentialFailureRateLimiter). Not thread-safe on its own; WorkQueue guards it.
struct ExponentialBackoff {
  Duration base = std::chrono::milliseconds(5);
  Duration max = std::chrono::seconds(1000);

  Duration For(int failures) const;
};

}  // namespace strata::kube
