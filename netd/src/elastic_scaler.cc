#include "strata/netd/elastic_scaler.h"

#include <algorithm>

namespace strata::netd {

ElasticScaler::ElasticScaler(ElasticConfig config, uint64_t initial_rate_bits)
    : config_(config),
      rate_(std::clamp(initial_rate_bits, config.min_rate_bits,
                       std::max(config.min_rate_bits, config.max_rate_bits))) {}

std::optional<ElasticStep> ElasticScaler::Observe(uint64_t bits, kube::Duration elapsed,
                                                  kube::TimePoint now) {
  if (elapsed.count() <= 0 || rate_ == 0) return std::nullopt;
  const double seconds = std::chrono::duration<double>(elapsed).count();
  const double utilization = static_cast<double>(bits) / seconds / static_cast<double>(rate_) * 100;
  if (utilization >= config_.high_water_percent) {
    ++high_streak_;
    low_streak_ = 0;
  } else if (utilization <= config_.low_water_percent) {
    ++low_streak_;
    high_streak_ = 0;
  } else {
    high_streak_ = low_streak_ = 0;
  }
  if (last_step_ && now - *last_step_ < config_.cooldown) return std::nullopt;
  // At least one byte per second per step, so a tiny rate still moves.
  const uint64_t step =
      std::max<uint64_t>(rate_ * static_cast<uint64_t>(config_.step_percent) / 100, 8);
  std::optional<ElasticStep> out;
  if (high_streak_ >= config_.sustained_samples && rate_ < config_.max_rate_bits) {
    const uint64_t to = std::min(config_.max_rate_bits, rate_ + step);
    out = ElasticStep{ElasticStep::Direction::kUp, rate_, to, utilization};
  } else if (low_streak_ >= config_.sustained_samples && rate_ > config_.min_rate_bits) {
    const uint64_t to = rate_ - std::min(step, rate_ - config_.min_rate_bits);
    out = ElasticStep{ElasticStep::Direction::kDown, rate_, to, utilization};
  }
  if (out) {
    rate_ = out->to_rate_bits;
    last_step_ = now;
    high_streak_ = low_streak_ = 0;
  }
  return out;
}

}  // namespace strata::netd
