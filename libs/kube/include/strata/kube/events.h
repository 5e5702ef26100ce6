#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "strata/kube/client.h"
#include "strata/kube/clock.h"

namespace strata::kube {

enum class EventType { kNormal, kWarning };

// Records core/v1 Events about objects: what `kubectl describe` and `kubectl get events` show
// people. Best effort: a failure is logged, never returned to the reconciler.
class EventRecorder {
 public:
  virtual ~EventRecorder() = default;
  virtual void Record(const Json& involved_object, EventType type, const std::string& reason,
                      const std::string& message) = 0;
};

// Writes Events through the API. A repeat of the same (object, type, reason, message) within ten
// minutes bumps count and lastTimestamp of the existing Event instead of creating another, as
// client-go's correlator does. Events about cluster-scoped objects go to `default_namespace`.
// Thread-safe.
class ApiEventRecorder : public EventRecorder {
 public:
  ApiEventRecorder(ApiClient* client, std::string component, std::string instance,
                   Clock* clock = Clock::Real(), std::string default_namespace = "default");

  void Record(const Json& involved_object, EventType type, const std::string& reason,
              const std::string& message) override;

 private:
  struct Seen {
    std::string ns, name;
    int count;
    TimePoint last;
  };
  ApiClient* const client_;
  const std::string component_, instance_;
  Clock* const clock_;
  const std::string default_namespace_;
  std::mutex mu_;
  std::map<std::string, Seen> seen_;  // guarded by mu_
  uint64_t sequence_ = 0;             // guarded by mu_
};

// Records into `target` on a thread of its own, in order, so a reconciler never waits for an
// Event's API call (nor for the client-side rate limit it may meet): client-go's
// EventBroadcaster does the same. At most `capacity` Events wait; more are dropped (counted,
// logged), as Events are best effort. The destructor delivers what is still queued for up to
// `drain_on_stop`, then drops the rest. Thread-safe.
class QueuedEventRecorder : public EventRecorder {
 public:
  explicit QueuedEventRecorder(EventRecorder* target, size_t capacity = 1024,
                               std::chrono::milliseconds drain_on_stop = std::chrono::seconds(2));
  ~QueuedEventRecorder() override;
  QueuedEventRecorder(const QueuedEventRecorder&) = delete;
  QueuedEventRecorder& operator=(const QueuedEventRecorder&) = delete;

  void Record(const Json& involved_object, EventType type, const std::string& reason,
              const std::string& message) override;
  // Events dropped so far because the queue was full or the recorder stopped.
  uint64_t dropped() const;

 private:
  struct Pending {
    Json object;
    EventType type;
    std::string reason, message;
  };
  void Deliver(std::stop_token stop);

  EventRecorder* const target_;
  const size_t capacity_;
  const std::chrono::milliseconds drain_on_stop_;
  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  std::deque<Pending> queue_;  // guarded by mu_
  uint64_t dropped_ = 0;       // guarded by mu_
  std::jthread thread_;        // last: started after the rest, stopped first
};

}  // namespace strata::kube
