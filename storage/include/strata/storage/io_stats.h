#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>

namespace strata::storage {

enum class IoKind { kRead = 0, kWrite, kFlush, kTrim, kWriteZeroes };
inline constexpr int kIoKinds = 5;

// Counters and latency histograms for one LUN, recorded by the data path.
//
// Thread-safe and lock-free: Record() is called on every request from many threads
// (relaxed atomics; a Snapshot may be a few requests behind, never torn per field).
class LunIoStats {
 public:
  // Log-linear latency buckets: 8 sub-buckets per power of two of nanoseconds, so a
  // reported percentile is within 12.5 % of the true value.
  static constexpr int kSubBuckets = 8;
  static constexpr int kBuckets = 64 * kSubBuckets;

  struct KindSnapshot {
    uint64_t ops = 0;
    uint64_t bytes = 0;
    uint64_t errors = 0;
    // Percentiles of latency in nanoseconds (0 when no ops).
    uint64_t p50_ns = 0;
    uint64_t p90_ns = 0;
    uint64_t p99_ns = 0;
    uint64_t p999_ns = 0;
    uint64_t max_ns = 0;
  };
  struct Snapshot {
    std::array<KindSnapshot, kIoKinds> kinds;
    const KindSnapshot& of(IoKind k) const { return kinds[static_cast<int>(k)]; }
  };

  void Record(IoKind kind, uint64_t bytes, std::chrono::nanoseconds latency, bool ok);
  Snapshot Take() const;

  // Also told each successful request Record() counts (the engine's copy pacing
  // follows the clients' latency). Called on the data path's threads: must be cheap
  // and thread-safe.
  class Listener {
   public:
    virtual void OnRequest(IoKind kind, uint64_t bytes, std::chrono::nanoseconds latency) = 0;

   protected:
    ~Listener() = default;
  };
  // Null: none. The listener must outlive this object's use.
  void set_listener(Listener* l) { listener_.store(l, std::memory_order_release); }

  static int BucketFor(uint64_t ns);
  static uint64_t BucketUpperBound(int bucket);

 private:
  struct PerKind {
    std::atomic<uint64_t> ops{0};
    std::atomic<uint64_t> bytes{0};
    std::atomic<uint64_t> errors{0};
    std::atomic<uint64_t> max_ns{0};
    std::array<std::atomic<uint64_t>, kBuckets> buckets{};
  };
  std::array<PerKind, kIoKinds> kinds_;
  std::atomic<Listener*> listener_{nullptr};
};

struct IoRates {
  std::array<double, kIoKinds> ops_per_second{};
  std::array<double, kIoKinds> bytes_per_second{};
};

// Current rates of one LUN's counters: operations and bytes per second between the
// oldest of the last `max_samples` samples and now. Time is passed in, so tests need
// no clock. Not thread-safe.
class IoRateWindow {
 public:
  using Clock = std::chrono::steady_clock;
  explicit IoRateWindow(size_t max_samples = 6) : max_samples_(max_samples) {}

  void Add(Clock::time_point at, const LunIoStats::Snapshot& counters);
  // Zeros without an earlier sample (or when `at` is not after it).
  IoRates Rates(Clock::time_point at, const LunIoStats::Snapshot& counters) const;

 private:
  struct Sample {
    Clock::time_point at;
    std::array<uint64_t, kIoKinds> ops{};
    std::array<uint64_t, kIoKinds> bytes{};
  };
  size_t max_samples_;
  std::deque<Sample> samples_;
};

}  // namespace strata::storage
