#pragma once

#include <map>
#include <mutex>
#include <string>

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

}  // namespace strata::kube
