#include "copy_starvation_policy.h"

#include <algorithm>

namespace strata::storage {

CopyStarvationPolicy::Action CopyStarvationPolicy::Tick(Clock::time_point now, uint64_t progress,
                                                        bool copying) {
  if (raised_) {
    if (now < raised_until_) return Action::kNone;
    raised_ = false;
    lowered_at_ = now;
    samples_.clear();
    return Action::kLower;
  }
  if (!copying) {  // the next copy's window starts with it
    samples_.clear();
    return Action::kNone;
  }
  samples_.emplace_back(now, progress);
  // The base: the newest sample at least a window old (none yet: too early to say).
  while (samples_.size() > 1 && samples_[1].first <= now - o_.window) samples_.pop_front();
  const auto& [base_time, base_progress] = samples_.front();
  if (base_time > now - o_.window) return Action::kNone;
  const double seconds = std::chrono::duration<double>(now - base_time).count();
  const double moved = static_cast<double>(progress - base_progress);
  if (moved >= static_cast<double>(o_.floor_bytes_per_second) / 2 * seconds) {
    return Action::kNone;
  }
  const bool again = lowered_at_ != Clock::time_point::min() && now - lowered_at_ < 3 * o_.window;
  hold_ = again ? std::min(hold_ * 2, o_.max_hold) : o_.hold;
  raised_ = true;
  raised_until_ = now + hold_;
  samples_.clear();
  return Action::kRaise;
}

}  // namespace strata::storage
