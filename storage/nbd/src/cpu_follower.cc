#include "cpu_follower.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace strata::nbd {

bool FollowPolicy::Observe(bool qualifies, Clock::time_point now) {
  if (!qualifies) {
    state_ = State::kWatching;
    streak_ = 0;
    return false;
  }
  switch (state_) {
    case State::kWatching:
      if (streak_ > 0 && streak_ % kWindow == 0) {
        free_window_ = now - window_start_;
        if (streak_ >= needed()) {
          streak_ = 0;
          if (!trial_) {
            state_ = State::kFollowing;
            return true;
          }
          state_ = State::kTrying;
          tried_ = 0;
          return true;
        }
      }
      if (streak_ % kWindow == 0) window_start_ = now;
      ++streak_;
      return false;
    case State::kTrying:
      // kSettle requests settle (the threads move; the client may move once too),
      // the kWindow after them are timed.
      if (++tried_ == kSettle) trial_start_ = now;
      if (tried_ < kSettle + kWindow) return true;
      last_trial_ = now - trial_start_;
      if (last_trial_ * 10 <= free_window_ * 9) {
        state_ = State::kFollowing;
        backoff_ = 0;
        return true;
      }
      state_ = State::kWatching;
      backoff_ = std::min(backoff_ + 1, kMaxBackoff);
      return false;
    case State::kFollowing:
      return true;
  }
  return false;
}

CpuFollower::CpuFollower(bool enabled, bool trial) : policy_(trial) {
  CPU_ZERO(&base_);
  if (!enabled) return;
  if (sched_getaffinity(0, sizeof base_, &base_) == 0) {
    // With one CPU to run on there is nothing to follow.
    have_base_ = CPU_COUNT(&base_) > 1;
  } else {
    spdlog::debug("nbd: sched_getaffinity: {}; connections are not kept on their CPU",
                  std::strerror(errno));
  }
}

CpuFollower::~CpuFollower() = default;

cpu_set_t CpuFollower::SetFor(int cpu) const {
  if (cpu < 0) return base_;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  return one;
}

void CpuFollower::AddThisThread() {
  if (!have_base_) return;
  std::lock_guard lock(mu_);
  threads_.push_back(gettid());
  const cpu_set_t set = SetFor(applied_);
  sched_setaffinity(0, sizeof set, &set);
}

void CpuFollower::RemoveThisThread() {
  if (!have_base_) return;
  std::lock_guard lock(mu_);
  threads_.erase(std::remove(threads_.begin(), threads_.end(), gettid()), threads_.end());
}

void CpuFollower::Observe(bool alone, uint32_t bytes, int sock) {
  if (!have_base_) return;
  if (!policy_.Observe(alone && bytes <= kMaxSmallBytes, FollowPolicy::Clock::now())) {
    if (cpu_ >= 0) MoveTo(-1);
    return;
  }
  int cpu = -1;
  socklen_t len = sizeof cpu;
  if (getsockopt(sock, SOL_SOCKET, SO_INCOMING_CPU, &cpu, &len) != 0 || cpu < 0 ||
      cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &base_)) {
    // Not known, or a CPU this process may not use (a container's cpuset): the
    // threads stay where the scheduler puts them.
    cpu = -1;
  }
  if (cpu != cpu_) MoveTo(cpu);
}

void CpuFollower::MoveTo(int cpu) {
  if (cpu_ < 0 || cpu < 0) {
    spdlog::debug(
        "nbd: connection threads {} ({} requests: {} us free, {} us on the last trial; next "
        "trial after {})",
        cpu < 0 ? std::string("free to run anywhere") : "kept on CPU " + std::to_string(cpu),
        FollowPolicy::kWindow,
        std::chrono::duration_cast<std::chrono::microseconds>(policy_.last_free()).count(),
        std::chrono::duration_cast<std::chrono::microseconds>(policy_.last_trial()).count(),
        policy_.needed());
  }
  cpu_ = cpu;
  const cpu_set_t set = SetFor(cpu);
  std::lock_guard lock(mu_);
  applied_ = cpu;
  for (pid_t t : threads_) {
    // A thread of this process that is in threads_ has not returned from
    // ServeLoop, so `t` is still that thread.
    if (sched_setaffinity(t, sizeof set, &set) != 0) {
      spdlog::debug("nbd: sched_setaffinity({}): {}", t, std::strerror(errno));
    }
  }
}

}  // namespace strata::nbd
