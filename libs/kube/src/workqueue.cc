#include "strata/kube/workqueue.h"

#include <algorithm>
#include <vector>

namespace strata::kube {

WorkQueue::WorkQueue(Options options, Clock* clock)
    : clock_(clock), backoff_(options.backoff), bucket_(options.qps, options.burst, clock) {}

void WorkQueue::Add(const std::string& key) {
  std::lock_guard g(mu_);
  AddLocked(key);
}

void WorkQueue::AddLocked(const std::string& key) {
  if (shutting_down_) return;
  if (!dirty_.insert(key).second) return;  // already queued (or will be re-queued by Done)
  if (processing_.contains(key)) return;
  queue_.push_back(key);
  cv_.notify_one();
}

void WorkQueue::AddAfter(const std::string& key, Duration delay) {
  if (delay <= Duration::zero()) return Add(key);
  std::lock_guard g(mu_);
  if (shutting_down_) return;
  const TimePoint ready = clock_->Now() + delay;
  auto [it, inserted] = delayed_.try_emplace(key, ready);
  if (!inserted && ready < it->second) it->second = ready;
  // A sleeping Get() may need to wake earlier than it planned.
  cv_.notify_all();
}

void WorkQueue::AddRateLimited(const std::string& key) {
  Duration delay;
  {
    std::lock_guard g(mu_);
    delay = backoff_.For(failures_[key]++);
  }
  delay = std::max(delay, bucket_.Reserve());
  AddAfter(key, delay);
}

void WorkQueue::Forget(const std::string& key) {
  std::lock_guard g(mu_);
  failures_.erase(key);
}

int WorkQueue::NumRequeues(const std::string& key) const {
  std::lock_guard g(mu_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

void WorkQueue::PromoteDueLocked() {
  if (delayed_.empty()) return;
  const TimePoint now = clock_->Now();
  // Oldest-first so that keys become ready in deadline order.
  std::vector<std::pair<TimePoint, std::string>> due;
  for (auto it = delayed_.begin(); it != delayed_.end();) {
    if (it->second <= now) {
      due.emplace_back(it->second, it->first);
      it = delayed_.erase(it);
    } else {
      ++it;
    }
  }
  std::sort(due.begin(), due.end());
  for (auto& [when, key] : due) AddLocked(key);
}

std::optional<std::string> WorkQueue::Get() { return GetImpl(std::nullopt); }
std::optional<std::string> WorkQueue::GetUntil(TimePoint deadline) { return GetImpl(deadline); }

std::optional<std::string> WorkQueue::GetImpl(std::optional<TimePoint> deadline) {
  std::unique_lock lock(mu_);
  while (true) {
    PromoteDueLocked();
    if (!queue_.empty()) break;
    if (shutting_down_) return std::nullopt;
    TimePoint wake = TimePoint::max();
    for (const auto& [key, ready] : delayed_) wake = std::min(wake, ready);
    if (deadline) {
      if (clock_->Now() >= *deadline) return std::nullopt;
      wake = std::min(wake, *deadline);
    }
    if (wake == TimePoint::max()) {
      cv_.wait(lock);
    } else {
      clock_->WaitUntil(cv_, lock, wake);
    }
  }
  std::string key = std::move(queue_.front());
  queue_.pop_front();
  dirty_.erase(key);
  processing_.insert(key);
  return key;
}

void WorkQueue::Done(const std::string& key) {
  std::lock_guard g(mu_);
  processing_.erase(key);
  if (dirty_.contains(key) && !shutting_down_) {
    queue_.push_back(key);
    cv_.notify_one();
  }
}

void WorkQueue::ShutDown() {
  std::lock_guard g(mu_);
  shutting_down_ = true;
  cv_.notify_all();
}

bool WorkQueue::ShuttingDown() const {
  std::lock_guard g(mu_);
  return shutting_down_;
}

size_t WorkQueue::Len() const {
  std::lock_guard g(mu_);
  return queue_.size();
}

size_t WorkQueue::DelayedLen() const {
  std::lock_guard g(mu_);
  return delayed_.size();
}

}  // namespace strata::kube
