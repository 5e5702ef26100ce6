#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "strata/device/client.h"

namespace strata::op {

// Tells a controller the moment a LUN's move ends, so that what follows it (a drain's next move,
// a window's next phase) starts then rather than at the controller's next poll: an external
// source of requeues, as kube-runtime's Controller::reconcile_on. Each watched move has one
// thread that long-polls its source device (device::Client::WaitMigration) until the migration is
// no longer RUNNING, the call fails (device gone, LUN gone, a device without long polls) or the
// watcher stops; then it calls `notify` once for every key that asked, and the watch ends. The
// controller's own poll stays the fallback for every case the watch gives up on.
// Watch() of a (device, LUN) already watched only adds the key. `notify` runs on a watch's thread
// and must not call Watch() (main's adds the key to a work queue). Thread-safe; the destructor
// stops every watch and joins (at most one long poll, Options::wait, plus the call's deadline).
class MoveWatcher {
 public:
  using Notify = std::function<void(const std::string& key)>;
  struct Options {
    // One long poll's wait: how long a stop may take to be seen.
    std::chrono::milliseconds wait{1000};
  };

  MoveWatcher(device::ClientCache* devices, Notify notify, Options options);
  MoveWatcher(device::ClientCache* devices, Notify notify)
      : MoveWatcher(devices, std::move(notify), Options{}) {}
  ~MoveWatcher();
  MoveWatcher(const MoveWatcher&) = delete;
  MoveWatcher& operator=(const MoveWatcher&) = delete;

  // Watches the move of `lun` whose source is the device at `endpoint`; `key` is requeued when
  // it ends.
  void Watch(const std::string& endpoint, const std::string& lun, const std::string& key);
  // Moves being watched now.
  size_t watching() const;

 private:
  using Target = std::pair<std::string, std::string>;  // endpoint, LUN
  struct Entry {
    std::set<std::string> keys;
    std::jthread thread;
  };
  void Follow(std::stop_token stop, Target target);
  void ReapLocked();  // REQUIRES: mu_ held

  device::ClientCache* const devices_;
  const Notify notify_;
  const Options options_;
  mutable std::mutex mu_;
  std::map<Target, Entry> watches_;  // guarded by mu_
  std::vector<std::jthread> ended_;  // guarded by mu_; threads past their last use of *this
};

}  // namespace strata::op
