#include "strata/operator/move_watcher.h"

#include <spdlog/spdlog.h>

#include <condition_variable>

namespace strata::op {

MoveWatcher::MoveWatcher(device::ClientCache* devices, Notify notify, Options options)
    : devices_(devices), notify_(std::move(notify)), options_(options) {}

MoveWatcher::~MoveWatcher() {
  std::vector<std::jthread> threads;
  {
    std::lock_guard g(mu_);
    for (auto& [target, entry] : watches_) {
      entry.thread.request_stop();
      threads.push_back(std::move(entry.thread));
    }
    for (auto& t : ended_) threads.push_back(std::move(t));
    ended_.clear();
  }
  threads.clear();  // joins, outside the lock: a thread ending takes it
}

void MoveWatcher::Watch(const std::string& endpoint, const std::string& lun,
                        const std::string& key) {
  if (endpoint.empty() || lun.empty()) return;
  std::lock_guard g(mu_);
  ReapLocked();
  Target target{endpoint, lun};
  auto [it, added] = watches_.try_emplace(target);
  it->second.keys.insert(key);
  if (added) {
    it->second.thread =
        std::jthread([this, target](std::stop_token stop) { Follow(stop, target); });
  }
}

size_t MoveWatcher::watching() const {
  std::lock_guard g(mu_);
  return watches_.size();
}

void MoveWatcher::ReapLocked() {
  // Every thread in ended_ has left Follow's last lock; joining it here is short.
  ended_.clear();
}

void MoveWatcher::Follow(std::stop_token stop, Target target) {
  const auto& [endpoint, lun] = target;
  device::ClientPtr device = devices_->Get(endpoint);
  using Clock = std::chrono::steady_clock;
  std::string why;
  while (!stop.stop_requested()) {
    const auto began = Clock::now();
    auto m = device->WaitMigration(lun, options_.wait);
    if (!m.ok()) {
      why = m.status().ToString();
      break;
    }
    if (m->state() != storage::v1::MIGRATION_STATE_RUNNING) {
      why = storage::v1::MigrationState_Name(m->state());
      break;
    }
    // Still running. A device that ignores wait_ms answers at once: never ask more often than
    // once a wait, so such a device is polled, not spun on.
    const auto next = began + options_.wait;
    if (Clock::now() < next) {
      std::mutex m_wait;
      std::condition_variable_any cv;
      std::unique_lock l(m_wait);
      cv.wait_until(l, stop, next, [] { return false; });
    }
  }
  std::set<std::string> keys;
  {
    std::lock_guard g(mu_);
    auto it = watches_.find(target);
    if (it != watches_.end()) {
      keys = std::move(it->second.keys);
      // This thread cannot join itself: it is joined by the next Watch() or the destructor.
      ended_.push_back(std::move(it->second.thread));
      watches_.erase(it);
    }
  }
  if (stop.stop_requested()) return;
  spdlog::debug("move of LUN {} on {} ended ({}): requeue {} key(s)", lun, endpoint, why,
                keys.size());
  for (const auto& key : keys) notify_(key);
}

}  // namespace strata::op
