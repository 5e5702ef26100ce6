#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <utility>

namespace strata::storage {

// When copy threads at SCHED_IDLE (strata-stored --copy-priority idle) are starved and
// must be raised to SCHED_BATCH, decided from the copies' progress (a running byte
// total) sampled at a steady tick: while copy threads exist and the last `window`
// moved less than half the floor rate, raise them for `hold`; then lower them again.
// A raise soon after a lower (within 3 windows: the host is still saturated) doubles
// the hold, up to `max_hold`, so a copy on a host kept busy runs at batch nearly all
// the time and pays a window of starvation per hold; a raise after a quiet spell
// starts again at `hold`.
//
// A raise for a copy that is slow for another reason (its pacing, the target, the
// verification's pause) costs only what --copy-priority batch costs: the copy's
// threads no longer step aside for every other thread until the hold ends.
//
// Not thread-safe: the guard's one thread calls it. Time is passed in (tests need no
// clock).
class CopyStarvationPolicy {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    uint64_t floor_bytes_per_second = 32ull << 20;
    std::chrono::milliseconds window{500};
    std::chrono::milliseconds hold{2000};
    std::chrono::milliseconds max_hold{32000};
  };
  enum class Action { kNone, kRaise, kLower };

  explicit CopyStarvationPolicy(Options options) : o_(options), hold_(options.hold) {}

  // `progress`: the copies' bytes so far; `copying`: copy threads exist now.
  Action Tick(Clock::time_point now, uint64_t progress, bool copying);

  bool raised() const { return raised_; }
  // The hold of the current raise, or of the last one.
  std::chrono::milliseconds hold() const { return hold_; }

 private:
  const Options o_;
  bool raised_ = false;
  Clock::time_point raised_until_{};
  Clock::time_point lowered_at_ = Clock::time_point::min();
  std::chrono::milliseconds hold_;
  std::deque<std::pair<Clock::time_point, uint64_t>> samples_;  // while copying, lowered
};

}  // namespace strata::storage
