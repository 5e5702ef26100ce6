#include "strata/kube/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace strata::kube {

TokenBucket::TokenBucket(double qps, int burst, Clock* clock)
    : qps_(qps), burst_(burst), clock_(clock), tokens_(burst), last_(clock->Now()) {}

Duration TokenBucket::Reserve() {
  std::lock_guard g(mu_);
  const TimePoint now = clock_->Now();
  if (now > last_) {
    const double elapsed = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min(burst_, tokens_ + elapsed * qps_);
    last_ = now;
  }
  tokens_ -= 1;
  if (tokens_ >= 0) return Duration::zero();
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(-tokens_ / qps_));
}

Duration ExponentialBackoff::For(int failures) const {
  if (failures <= 0) return base;
  // 2^failures overflows quickly: compare in floating point against the cap.
  const double scaled = static_cast<double>(base.count()) * std::pow(2.0, failures);
  if (scaled >= static_cast<double>(max.count())) return max;
  return Duration(static_cast<Duration::rep>(scaled));
}

}  // namespace strata::kube
