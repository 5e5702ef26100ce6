#include "strata/operator/api/v1alpha1/dedup_policy.h"

#include "field_io.h"

namespace strata::op::api::v1alpha1 {

constexpr std::string_view kDedupModes[] = {"Inline", "Disabled"};
constexpr std::string_view kDedupPhases[] = {"Pending", "Active", "Error"};

void Fields(auto& io, Is<DedupPolicySpec> auto& s) {
  io.Field("selector", s.selector, {.required = true});
  io.Field("mode", s.mode, {.one_of = kDedupModes});
  io.Field("tiers", s.tiers, {.max_items = 3, .set = true, .items = &kTierClassRule});
  io.Field("minSavingsRatio", s.min_savings_ratio, {.minimum = 1, .maximum = 100});
  io.Field("evaluationWindow", s.evaluation_window, kDurationRule);
  io.Field("maxIndexMemoryBytes", s.max_index_memory_bytes, kNonNegative);
  io.Field("crossOwnerSharing", s.cross_owner_sharing);
}

void Fields(auto& io, Is<DedupPolicyStatus> auto& s) {
  io.Field("phase", s.phase, {.one_of = kDedupPhases});
  io.Field("matchedVolumes", s.matched_volumes, kNonNegative);
  io.Field("logicalBytes", s.logical_bytes, kNonNegative);
  io.Field("uniqueBytes", s.unique_bytes, kNonNegative);
  io.Field("dedupRatio", s.dedup_ratio, kNonNegative);
  ObjectStatusFields(io, s);
}

Result<DedupPolicy> DedupPolicyFromJson(const kube::Json& json) {
  return ObjectFromJson<DedupPolicy>(json);
}
kube::Json ToJson(const DedupPolicy& policy) { return ObjectToJson(policy); }

}  // namespace strata::op::api::v1alpha1
