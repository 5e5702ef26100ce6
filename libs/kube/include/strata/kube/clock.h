#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <stop_token>

namespace strata::kube {

using Duration = std::chrono::nanoseconds;
using TimePoint = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;

// Time as the controllers see it. Everything that waits or measures age (work-queue delays,
// backoff, leader-election expiry) goes through a Clock so unit tests can drive time by hand.
// Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;

  // Monotonic time: delays, expiries.
  virtual TimePoint Now() const = 0;
  // Wall time: timestamps written into objects (lastTransitionTime, Lease renewTime).
  virtual WallTime WallNow() const = 0;

  // Waits on `cv` (whose mutex `lock` holds) until notified or until Now() >= deadline. Spurious
  // wakeups are allowed: callers re-check their predicate.
  virtual void WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                         TimePoint deadline) = 0;

  // Sleeps until Now() >= deadline or `stop` is requested. Returns false when stopped.
  virtual bool SleepUntil(TimePoint deadline, std::stop_token stop) = 0;

  bool SleepFor(Duration d, std::stop_token stop) { return SleepUntil(Now() + d, std::move(stop)); }

  // The process-wide real clock. Never null; never destroyed.
  static Clock* Real();
};

// A clock that moves only when Advance() is called. Waiters wake when time passes their deadline.
// Thread-safe. Waits poll in 1 ms real-time slices as a guard against a notify racing a waiter
// that is about to block (the waiter's mutex is not ours to take). Sleepers() lets a test step
// time in lockstep with the threads it drives: after an Advance, wait until each of them sleeps
// again (for a time still ahead), so each has done what the new time called for.
class FakeClock : public Clock {
 public:
  FakeClock();

  TimePoint Now() const override;
  WallTime WallNow() const override;
  void WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                 TimePoint deadline) override;
  bool SleepUntil(TimePoint deadline, std::stop_token stop) override;

  void Advance(Duration d);

  // Threads in SleepUntil for a time still ahead of Now(): done with everything due so far.
  size_t Sleepers() const;
  // Advances `total` in steps of `step`, in lockstep with the threads a test drives: after each
  // step, waits (real time, polled) until Sleepers() >= running(), so each thread has done what
  // the step called for however late it got a CPU. False when a step's wait passed `timeout`
  // (a thread that never went back to sleep: a hang, not a pace).
  bool AdvanceInLockstep(Duration total, Duration step, const std::function<size_t()>& running,
                         std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  mutable std::mutex mu_;
  TimePoint now_;                               // guarded by mu_
  WallTime wall_;                               // guarded by mu_
  std::set<std::condition_variable*> waiters_;  // guarded by mu_
  std::multiset<TimePoint> sleeping_;           // SleepUntil's deadlines; guarded by mu_
};

}  // namespace strata::kube
