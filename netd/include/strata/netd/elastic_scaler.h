#pragma once

// The decision logic of elastic bandwidth (BandwidthPolicy spec.elastic), for one shaped
// interface direction: fed one counter sample per sampleInterval, it says when to step the rate.
//
//   utilization = measured bits/s / current rate
//   >= highWater% for `sustained_samples` samples in a row  -> rate += step% (<= max)
//   <= lowWater%  for `sustained_samples` samples in a row  -> rate -= step% (>= min)
//   in between (the hysteresis band)                        -> both streaks reset
// After a step, no other step for `cooldown` (the streak keeps counting meanwhile, so a step
// comes as soon as the cooldown ends if the load stayed). A step resets both streaks: the new
// rate is judged on fresh samples.
//
// Pure: no clock, no kernel; time comes in with each sample, so tests drive it with a FakeClock.
// Thread-compatible.

#include <cstdint>
#include <optional>
#include <string>

#include "strata/kube/clock.h"

namespace strata::netd {

struct ElasticConfig {
  uint64_t min_rate_bits = 0;
  uint64_t max_rate_bits = 0;
  int high_water_percent = 80;
  int low_water_percent = 30;
  int step_percent = 25;
  int sustained_samples = 5;
  kube::Duration cooldown = std::chrono::seconds(10);
  friend bool operator==(const ElasticConfig&, const ElasticConfig&) = default;
};

struct ElasticStep {
  enum class Direction { kUp, kDown };
  Direction direction;
  uint64_t from_rate_bits;
  uint64_t to_rate_bits;
  double utilization_percent;  // of the sample that triggered the step
};

class ElasticScaler {
 public:
  // `initial_rate_bits` is clamped into [min, max]: the rate the interface has now (read back
  // from the kernel after an agent restart) is kept when it is in range.
  ElasticScaler(ElasticConfig config, uint64_t initial_rate_bits);

  // One sample: `bits` sent during `elapsed`, taken at `now`. Returns the step to apply, if any
  // (rate() already reflects it). An `elapsed` of zero is ignored.
  std::optional<ElasticStep> Observe(uint64_t bits, kube::Duration elapsed, kube::TimePoint now);

  uint64_t rate() const { return rate_; }
  const ElasticConfig& config() const { return config_; }

 private:
  const ElasticConfig config_;
  uint64_t rate_;
  int high_streak_ = 0;
  int low_streak_ = 0;
  std::optional<kube::TimePoint> last_step_;
};

}  // namespace strata::netd
