#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace strata::storage::engine {

// How fast a device's background copies (device moves in and out) may go while its
// clients are busy, following the clients' measured request latency the way a TCP
// sender follows congestion (AIMD), as Ceph's mClock keeps recovery behind client
// I/O:
//
// - The clients' request latencies (the NBD path's per-request service time) are
//   recorded as they complete: those completed while no copy ran for kIdleAfter go
//   into an idle window that gives the baseline (its percentile), the others into
//   the current copy window.
// - Every `interval` with at least `min_samples` in the copy window (or `max_interval`
//   with any), the window's percentile is compared with the target (an absolute
//   latency, or `target_factor` x the idle baseline): under it the rate rises
//   (doubling until the first cut, then by `increase`; only while the copy used at
//   least half of what the rate allowed, so an idle allowance does not pile up), over
//   it the rate is cut in proportion (x target / latency, at least x `decrease`).
//   Always within [floor, ceiling].
// - A copy starts at `start` (after a pause of over 2 s: again), or without a baseline
//   yet (clients were never seen without a copy) and no absolute target at the floor,
//   where the first window stands in for the baseline until an idle one comes.
// - While no client is busy (the caller decides: a request in flight or started
//   lately) there is no cap at all.
//
// Thread-safety: RecordLatency may be called from any thread at any time (lock-free);
// everything else must be serialised by the caller. Time is passed in (tests need no
// clock).
class CopyRateController {
 public:
  using Clock = std::chrono::steady_clock;
  // Samples completed this long after the last copied bytes count as idle (a move's
  // own pauses, its verification and switch, and the start of the next LUN's are not).
  static constexpr std::chrono::milliseconds kIdleAfter{1000};
  // Copied bytes this long after the last ones open a new copy window.
  static constexpr std::chrono::milliseconds kCopyQuiet{100};

  struct Options {
    uint64_t floor_bytes_per_second = 32ull << 20;
    // Where a copy starts (then slow start) once a target is known; without one, at
    // the floor. 128 MiB/s: the fixed cap that kept a drain's client p99 at idle.
    uint64_t start_bytes_per_second = 128ull << 20;
    uint64_t ceiling_bytes_per_second = 0;  // 0: none
    double target_factor = 3.0;             // x the idle baseline (when target is 0)
    std::chrono::nanoseconds target{0};     // absolute target; 0: target_factor x baseline
    double percentile = 0.99;               // of each window's latencies
    std::chrono::milliseconds interval{100};
    std::chrono::milliseconds max_interval{1000};
    uint32_t min_samples = 20;
    uint64_t increase_bytes_per_second = 32ull << 20;  // per interval under target
    // Over target the rate is multiplied by target/latency, but at least by this.
    double decrease = 0.5;
  };

  explicit CopyRateController(Options options);

  // A client request's latency, completed at `now`. Thread-safe, lock-free.
  void RecordLatency(Clock::time_point now, std::chrono::nanoseconds latency);

  // `bytes` were copied at `now` (0: none, just asking). Returns the cap for the
  // copies in bytes per second: 0 when !clients_busy (no cap), else the current rate.
  uint64_t OnCopy(Clock::time_point now, uint64_t bytes, bool clients_busy);

  // The current rate (what OnCopy returns while clients are busy).
  uint64_t rate() const { return rate_; }
  // The idle baseline (the percentile of the last idle window); 0: none yet.
  std::chrono::nanoseconds baseline() const { return baseline_; }
  // What a window's percentile is compared with; 0: none yet (rate held at floor).
  std::chrono::nanoseconds target() const;
  // The percentile of the last copy window decided on (0: none yet).
  std::chrono::nanoseconds last_window() const { return last_window_; }

 private:
  // A latency histogram filled lock-free (LunIoStats' log-linear buckets).
  struct Histogram {
    std::array<std::atomic<uint32_t>, 512> buckets{};
    std::atomic<uint32_t> count{0};
    void Add(uint64_t ns);
    // The percentile's bucket upper bound over what was added since the last Take,
    // and the number of samples; empties it.
    std::chrono::nanoseconds Take(double percentile, uint32_t* samples);
  };
  void Decide(Clock::time_point now);
  uint64_t Clamp(double rate) const;
  uint64_t StartRate() const;

  const Options o_;
  std::atomic<int64_t> last_copy_ns_{INT64_MIN};  // Clock ticks of the last copied bytes
  Histogram idle_;
  Histogram copy_;
  uint64_t rate_ = 0;
  bool slow_start_ = true;
  bool started_ = false;  // a copy window is open
  Clock::time_point window_start_{};
  uint64_t window_bytes_ = 0;
  std::chrono::nanoseconds baseline_{0};
  std::chrono::nanoseconds last_window_{0};
};

}  // namespace strata::storage::engine
