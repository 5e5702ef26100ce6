#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "strata/common/result.h"
#include "strata/kube/client.h"
#include "strata/kube/conditions.h"

// Typed strata.io/v1alpha1 objects, one header per kind. The CRDs (charts/strata/crds/) are the
// contract: field names, types, enums, ranges, patterns and defaults are theirs.
//
// Conventions, the same for every kind:
// - `Result<X> XFromJson(const kube::Json&)` never throws. It checks the JSON type of every field
//   before reading it and fails with INVALID_ARGUMENT naming the JSON path and the reason, e.g.
//   `spec.rules[0].comparison: "bigger" is not one of Above, Below`. It enforces what the schema
//   enforces (required, types, enums, minimum/maximum, lengths, item counts, patterns, list-map
//   and set uniqueness, date-time and duration formats) and applies the schema's defaults to
//   absent fields, as the apiserver would. Unknown fields are ignored (the apiserver prunes them).
// - `kube::Json ToJson(const X&)` writes the object back with apiVersion and kind. Absent
//   optionals, empty strings, empty lists and maps, and an empty status are left out (an empty
//   string in a custom resource is rejected by the 1.20 apiserver; absent means the same).
// - Enum-valued fields are strings holding one of the CRD's values (the k* constants below).
// - Durations are Go-style strings ("90s", "1h30m") as the CRDs type them; ParseDuration gives
//   the length. Times are RFC 3339 strings (kube::ParseTime reads the UTC ones the API writes).
// Value types: thread-compatible.
namespace strata::op::api::v1alpha1 {

inline constexpr std::string_view kApiVersion = "strata.io/v1alpha1";

// Media classes (StorageDevice tiers, tiering targets, dedup tiers).
inline constexpr std::string_view kTierClasses[] = {"ssd", "sas", "sata"};

// The metadata a controller reads. `deletion_timestamp` is set once deletion was requested.
struct ObjectMeta {
  std::string name;
  std::string namespace_;  // empty for cluster-scoped kinds
  std::string uid;
  std::string resource_version;
  std::optional<int64_t> generation;
  std::optional<std::string> creation_timestamp;
  std::optional<std::string> deletion_timestamp;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::vector<std::string> finalizers;
};

// metav1.LabelSelectorRequirement; operator is In, NotIn, Exists or DoesNotExist.
struct LabelSelectorRequirement {
  std::string key;
  std::string operator_;
  std::vector<std::string> values;
};

// metav1.LabelSelector. Empty selects everything.
struct LabelSelector {
  std::map<std::string, std::string> match_labels;
  std::vector<LabelSelectorRequirement> match_expressions;
};

// status.conditions[] items are metav1.Condition: kube::Condition (strata/kube/conditions.h).
using Condition = kube::Condition;

// What every kind's status has besides its own fields.
struct ObjectStatus {
  std::optional<int64_t> observed_generation;
  std::vector<Condition> conditions;  // unique by type
};

// Every kind X is `struct X : Object<XSpec, XStatus>` with metadata, spec and status, and
// `static constexpr std::string_view kKind`.
template <typename Spec, typename Status>
struct Object {
  ObjectMeta metadata;
  Spec spec;
  Status status;
};

// The length of a Go-style duration ("1h30m", "1.5s", "250ms"), as the CRDs' duration pattern
// admits it. INVALID_ARGUMENT when `text` does not match the pattern.
Result<std::chrono::nanoseconds> ParseDuration(std::string_view text);

}  // namespace strata::op::api::v1alpha1
