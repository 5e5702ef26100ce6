#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "strata/common/result.h"
#include "strata/kube/client.h"

namespace strata::kube {

// A label selector as the API server evaluates it: every requirement must hold. Built from the
// string form of `kubectl -l` / `?labelSelector=` (ParseLabelSelector) or from a
// metav1.LabelSelector object (LabelSelectorFromJson). The empty selector matches everything.
// Value type; thread-compatible.
class LabelSelector {
 public:
  enum class Op { kEquals, kNotEquals, kIn, kNotIn, kExists, kDoesNotExist };
  struct Requirement {
    std::string key;
    Op op;
    std::vector<std::string> values;  // one for kEquals/kNotEquals; any number for kIn/kNotIn
  };

  LabelSelector() = default;
  explicit LabelSelector(std::vector<Requirement> requirements)
      : requirements_(std::move(requirements)) {}

  bool Matches(const std::map<std::string, std::string>& labels) const;
  // Reads metadata.labels of `object` (absent or malformed labels: none).
  bool MatchesObject(const Json& object) const;
  bool empty() const { return requirements_.empty(); }
  const std::vector<Requirement>& requirements() const { return requirements_; }

 private:
  std::vector<Requirement> requirements_;
};

// "app=web,tier!=db,env in (a,b),env notin (c),feature,!legacy" ("==" is "="). INVALID_ARGUMENT
// naming the offending term.
Result<LabelSelector> ParseLabelSelector(std::string_view text);

// metav1.LabelSelector {matchLabels, matchExpressions[{key, operator In|NotIn|Exists|
// DoesNotExist, values}]}; null or {} matches everything. INVALID_ARGUMENT naming `field` and
// the bad part (In/NotIn need values, Exists/DoesNotExist take none, as the API validates).
Result<LabelSelector> LabelSelectorFromJson(const Json& selector, std::string_view field);

// metadata.labels of `object` as a map (non-string values skipped).
std::map<std::string, std::string> LabelsOf(const Json& object);

}  // namespace strata::kube
