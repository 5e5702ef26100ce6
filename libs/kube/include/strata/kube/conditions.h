#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "strata/kube/client.h"
#include "strata/kube/clock.h"

namespace strata::kube {

// A status condition as metav1.Condition defines it.
struct Condition {
  std::string type;    // CamelCase, e.g. "Ready"
  std::string status;  // "True", "False", "Unknown"
  std::string reason;  // CamelCase, e.g. "DeviceUnreachable"
  std::string message;
  int64_t observed_generation = 0;
  std::string last_transition_time;  // RFC 3339; set by SetCondition
};

// Sets `c` in status.conditions (creating the list). lastTransitionTime is `now` when the
// condition is new or its status changed, and kept otherwise, as meta.SetStatusCondition does.
// Returns true when anything changed.
bool SetCondition(Json& status, const Condition& c, WallTime now);
std::optional<Condition> FindCondition(const Json& status, std::string_view type);
bool IsConditionTrue(const Json& status, std::string_view type);
bool RemoveCondition(Json& status, std::string_view type);

// metadata.finalizers helpers; Add/Remove return true when they changed the object.
bool HasFinalizer(const Json& object, std::string_view finalizer);
bool AddFinalizer(Json& object, std::string_view finalizer);
bool RemoveFinalizer(Json& object, std::string_view finalizer);

// "2006-01-02T15:04:05Z" (metav1.Time) and "2006-01-02T15:04:05.000000Z" (metav1.MicroTime).
std::string FormatTime(WallTime t);
std::string FormatMicroTime(WallTime t);
std::optional<WallTime> ParseTime(std::string_view text);

}  // namespace strata::kube
