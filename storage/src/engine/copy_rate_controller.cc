#include "copy_rate_controller.h"

#include <algorithm>
#include <cmath>

#include "strata/storage/io_stats.h"

namespace strata::storage::engine {

namespace {
static_assert(LunIoStats::kBuckets == 512, "CopyRateController::Histogram has 512 buckets");
// A copy after this long without one starts again from the floor (slow start): the
// clients' load may have changed since.
constexpr std::chrono::seconds kRestartAfter{2};
}  // namespace

void CopyRateController::Histogram::Add(uint64_t ns) {
  buckets[static_cast<size_t>(LunIoStats::BucketFor(ns))].fetch_add(1, std::memory_order_relaxed);
  count.fetch_add(1, std::memory_order_relaxed);
}

std::chrono::nanoseconds CopyRateController::Histogram::Take(double percentile, uint32_t* samples) {
  // Emptied bucket by bucket: a sample landing meanwhile is counted in this window
  // or the next, never lost for both.
  std::array<uint32_t, 512> got{};
  uint64_t n = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    got[i] = buckets[i].exchange(0, std::memory_order_relaxed);
    n += got[i];
  }
  count.store(0, std::memory_order_relaxed);
  *samples = static_cast<uint32_t>(n);
  if (n == 0) return std::chrono::nanoseconds(0);
  // The smallest bucket with at least `percentile` of the samples at or below it.
  const auto want = static_cast<uint64_t>(std::ceil(percentile * static_cast<double>(n)));
  uint64_t seen = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    seen += got[i];
    if (seen >= want && got[i] > 0) {
      return std::chrono::nanoseconds(static_cast<int64_t>(
          std::min<uint64_t>(LunIoStats::BucketUpperBound(static_cast<int>(i)), INT64_MAX)));
    }
  }
  return std::chrono::nanoseconds(0);  // not reached: seen == n >= want
}

CopyRateController::CopyRateController(Options options) : o_(options) {
  rate_ = StartRate();  // after every member's initialiser (it reads baseline_)
}

uint64_t CopyRateController::StartRate() const {
  return Clamp(static_cast<double>(target().count() > 0 ? o_.start_bytes_per_second
                                                        : o_.floor_bytes_per_second));
}

uint64_t CopyRateController::Clamp(double rate) const {
  double r = std::max(rate, static_cast<double>(o_.floor_bytes_per_second));
  if (o_.ceiling_bytes_per_second > 0) {
    r = std::min(r, static_cast<double>(o_.ceiling_bytes_per_second));
  }
  r = std::max(r, 1.0);  // never 0, which reads as "no cap"
  return static_cast<uint64_t>(std::min(r, 1e18));
}

std::chrono::nanoseconds CopyRateController::target() const {
  if (o_.target.count() > 0) return o_.target;
  if (baseline_.count() == 0) return std::chrono::nanoseconds(0);
  return std::chrono::nanoseconds(
      static_cast<int64_t>(o_.target_factor * static_cast<double>(baseline_.count())));
}

void CopyRateController::RecordLatency(Clock::time_point now, std::chrono::nanoseconds latency) {
  const int64_t last = last_copy_ns_.load(std::memory_order_relaxed);
  const uint64_t ns = latency.count() > 0 ? static_cast<uint64_t>(latency.count()) : 0;
  const bool copying =
      last != INT64_MIN && now.time_since_epoch() - Clock::duration(last) < kIdleAfter;
  (copying ? copy_ : idle_).Add(ns);
}

uint64_t CopyRateController::OnCopy(Clock::time_point now, uint64_t bytes, bool clients_busy) {
  const int64_t last = last_copy_ns_.load(std::memory_order_relaxed);
  const bool after_quiet =
      last == INT64_MIN || now.time_since_epoch() - Clock::duration(last) >= kCopyQuiet;
  if (bytes > 0) {
    last_copy_ns_.store(now.time_since_epoch().count(), std::memory_order_relaxed);
  }
  // The idle window that ends here: its clients' latency is the baseline (too few
  // samples say nothing: dropped, so they never mix with a later idle window's).
  if (idle_.count.load(std::memory_order_relaxed) > 0) {
    uint32_t n = 0;
    auto p = idle_.Take(o_.percentile, &n);
    if (n >= o_.min_samples) baseline_ = p;
  }
  if (after_quiet) {
    // A copy (again) after a pause: what the copy window held is stale.
    if (!started_ || last == INT64_MIN ||
        now.time_since_epoch() - Clock::duration(last) >= kRestartAfter) {
      rate_ = StartRate();
      slow_start_ = true;
    }
    uint32_t n = 0;
    copy_.Take(o_.percentile, &n);
    started_ = bytes > 0;
    window_start_ = now;
    window_bytes_ = 0;
  } else if (started_) {
    window_bytes_ += bytes;
    const auto elapsed = now - window_start_;
    const uint32_t samples = copy_.count.load(std::memory_order_relaxed);
    if ((elapsed >= o_.interval && samples >= o_.min_samples) || elapsed >= o_.max_interval) {
      Decide(now);
    }
  }
  return clients_busy ? rate_ : 0;
}

void CopyRateController::Decide(Clock::time_point now) {
  const double secs = std::chrono::duration<double>(now - window_start_).count();
  const double allowed = static_cast<double>(rate_) * secs;
  const bool used = static_cast<double>(window_bytes_) >= allowed / 2;
  window_start_ = now;
  window_bytes_ = 0;
  uint32_t n = 0;
  const auto p = copy_.Take(o_.percentile, &n);
  if (n == 0) return;  // no client finished a request: nothing to go by
  last_window_ = p;
  if (o_.target.count() == 0 && baseline_.count() == 0) {
    // No idle baseline yet (clients were never seen without a copy): the first
    // window, taken with the copy at the floor, stands in until an idle one comes.
    baseline_ = p;
    return;
  }
  const auto t = target();
  if (t.count() == 0) return;
  if (p > t) {
    // Cut in proportion to the excess (as a delay-based TCP does), at most to
    // `decrease`: a window slightly over the target costs little, a spike halves.
    const double by =
        std::max(o_.decrease, static_cast<double>(t.count()) / static_cast<double>(p.count()));
    rate_ = Clamp(static_cast<double>(rate_) * by);
    slow_start_ = false;
  } else if (used) {
    rate_ = Clamp(slow_start_ ? 2.0 * static_cast<double>(rate_)
                              : static_cast<double>(rate_ + o_.increase_bytes_per_second));
  }
}

}  // namespace strata::storage::engine
