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

void Fields(auto& io, Is<DedupVolumeStatus> auto& v) {
  io.Field("pvc", v.pvc, {.required = true});
  io.Field("device", v.device);
  io.Field("lun", v.lun);
  io.Field("tier", v.tier, kTierClassRule);
  io.Field("dedup", v.dedup);
  io.Field("logicalBytes", v.logical_bytes, kNonNegative);
  io.Field("uniqueBytes", v.unique_bytes, kNonNegative);
  io.Field("ratio", v.ratio, kNonNegative);
  io.Field("since", v.since, {.format = Format::kDateTime});
  io.Field("state", v.state, {.one_of = kDedupVolumeStates});
  io.Field("message", v.message);
  io.Field("turnedOffAt", v.turned_off_at, {.format = Format::kDateTime});
  io.Field("turnedOffGeneration", v.turned_off_generation, kNonNegative);
}

void Fields(auto& io, Is<DedupDeviceStatus> auto& d) {
  io.Field("name", d.name, {.required = true});
  io.Field("volumes", d.volumes, kNonNegative);
  io.Field("logicalBytes", d.logical_bytes, kNonNegative);
  io.Field("uniqueBytes", d.unique_bytes, kNonNegative);
  io.Field("dedupRatio", d.dedup_ratio, kNonNegative);
  io.Field("dedupEnabled", d.dedup_enabled);
}

void Fields(auto& io, Is<DedupPolicyStatus> auto& s) {
  io.Field("phase", s.phase, {.one_of = kDedupPhases});
  io.Field("matchedVolumes", s.matched_volumes, kNonNegative);
  io.Field("logicalBytes", s.logical_bytes, kNonNegative);
  io.Field("uniqueBytes", s.unique_bytes, kNonNegative);
  io.Field("savedBytes", s.saved_bytes, kNonNegative);
  io.Field("dedupRatio", s.dedup_ratio, kNonNegative);
  io.Field("volumes", s.volumes, {.map_key = "pvc"});
  io.Field("devices", s.devices, {.map_key = "name"});
  ObjectStatusFields(io, s);
}

Result<DedupPolicy> DedupPolicyFromJson(const kube::Json& json) {
  return ObjectFromJson<DedupPolicy>(json);
}
kube::Json ToJson(const DedupPolicy& policy) { return ObjectToJson(policy); }

}  // namespace strata::op::api::v1alpha1
