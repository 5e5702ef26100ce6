#include "strata/kube/clock.h"

#include <iterator>
#include <thread>

namespace strata::kube {
namespace {

class RealClock : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
  WallTime WallNow() const override { return std::chrono::system_clock::now(); }
  void WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                 TimePoint deadline) override {
    cv.wait_until(lock, deadline);
  }
  bool SleepUntil(TimePoint deadline, std::stop_token stop) override {
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock lock(mu);
    return !cv.wait_until(lock, stop, deadline, [] { return false; }) && !stop.stop_requested();
  }
};

}  // namespace

Clock* Clock::Real() {
  static RealClock* clock = new RealClock();
  return clock;
}

FakeClock::FakeClock()
    : now_(TimePoint{} + std::chrono::hours(1)),
      wall_(std::chrono::sys_days{std::chrono::year{2025} / 1 / 1}) {}

TimePoint FakeClock::Now() const {
  std::lock_guard g(mu_);
  return now_;
}

WallTime FakeClock::WallNow() const {
  std::lock_guard g(mu_);
  return wall_;
}

void FakeClock::WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                          TimePoint deadline) {
  {
    std::lock_guard g(mu_);
    if (now_ >= deadline) return;
    waiters_.insert(&cv);
  }
  cv.wait_for(lock, std::chrono::milliseconds(1));
  std::lock_guard g(mu_);
  waiters_.erase(&cv);
}

bool FakeClock::SleepUntil(TimePoint deadline, std::stop_token stop) {
  std::multiset<TimePoint>::iterator mine;
  {
    std::lock_guard g(mu_);
    mine = sleeping_.insert(deadline);
  }
  bool reached = false;
  while (!stop.stop_requested()) {
    if (Now() >= deadline) {
      reached = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::lock_guard g(mu_);
  sleeping_.erase(mine);
  return reached;
}

size_t FakeClock::Sleepers() const {
  std::lock_guard g(mu_);
  return static_cast<size_t>(std::distance(sleeping_.upper_bound(now_), sleeping_.end()));
}

bool FakeClock::AdvanceInLockstep(Duration total, Duration step,
                                  const std::function<size_t()>& running,
                                  std::chrono::milliseconds timeout) {
  for (Duration d{}; d < total; d += step) {
    Advance(step);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (Sleepers() < running()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  return true;
}

void FakeClock::Advance(Duration d) {
  std::lock_guard g(mu_);
  now_ += d;
  wall_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(d);
  for (auto* cv : waiters_) cv->notify_all();
}

}  // namespace strata::kube
