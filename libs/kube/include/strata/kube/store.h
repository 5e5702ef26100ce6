#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "strata/kube/client.h"

namespace strata::kube {

// What changed when a store took in a change or a full list.
struct StoreDelta {
  enum class Type { kAdded, kUpdated, kDeleted };
  Type type;
  Json old_object;  // kUpdated, kDeleted (the last state seen)
  Json object;      // kAdded, kUpdated
};

// The informer's local cache of one kind: objects by ObjectKey(). Thread-safe; readers get copies.
class Store {
 public:
  std::optional<Json> Get(const std::string& key) const;
  std::vector<Json> List() const;
  std::vector<std::string> Keys() const;
  size_t Size() const;

  // Applies one watch event; returns the delta to report (none for a stale or no-op event).
  std::optional<StoreDelta> Upsert(Json object);
  std::optional<StoreDelta> Remove(const Json& object);
  // Replaces everything with a fresh list and returns the differences: objects that are new, whose
  // resourceVersion changed, or that vanished while we were not watching.
  std::vector<StoreDelta> Replace(std::vector<Json> objects);

 private:
  mutable std::mutex mu_;
  std::map<std::string, Json> objects_;  // guarded by mu_
};

// metadata.resourceVersion, or "".
std::string ResourceVersionOf(const Json& object);

}  // namespace strata::kube
