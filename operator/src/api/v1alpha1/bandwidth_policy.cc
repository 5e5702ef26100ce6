#include "strata/operator/api/v1alpha1/bandwidth_policy.h"

#include "field_io.h"

namespace strata::op::api::v1alpha1 {

constexpr std::string_view kBandwidthPhases[] = {"Pending", "Applied", "Error"};
constexpr Rule kInterfaceName{.pattern = "^[A-Za-z0-9][-A-Za-z0-9_.]{0,14}$"};
constexpr double kMaxRate = 400e9;

void Fields(auto& io, Is<BandwidthLimit> auto& l) {
  io.Field("rateBitsPerSecond", l.rate_bits_per_second,
           {.required = true, .minimum = 8000, .maximum = kMaxRate});
  io.Field("burstBytes", l.burst_bytes, {.minimum = 1500, .maximum = 4294967295.0});
}

void Fields(auto& io, Is<ElasticBandwidth> auto& e) {
  io.Field("minRateBitsPerSecond", e.min_rate_bits_per_second, {.required = true, .minimum = 8000});
  io.Field("maxRateBitsPerSecond", e.max_rate_bits_per_second,
           {.required = true, .minimum = 8000, .maximum = kMaxRate});
  io.Field("scaleUpUtilizationPercent", e.scale_up_utilization_percent,
           {.minimum = 1, .maximum = 100});
  io.Field("scaleDownUtilizationPercent", e.scale_down_utilization_percent,
           {.minimum = 0, .maximum = 99});
  io.Field("stepPercent", e.step_percent, {.minimum = 1, .maximum = 100});
  io.Field("sustainedFor", e.sustained_for, kDurationRule);
  io.Field("cooldown", e.cooldown, kDurationRule);
  io.Field("sampleInterval", e.sample_interval, kDurationRule);
}

void Fields(auto& io, Is<BandwidthPolicySpec> auto& s) {
  io.Field("podSelector", s.pod_selector, {.required = true});
  io.Field("interfaces", s.interfaces, {.max_items = 16, .set = true, .items = &kInterfaceName});
  io.Field("ingress", s.ingress);
  io.Field("egress", s.egress);
  io.Field("elastic", s.elastic);
  io.Field("priority", s.priority, {.minimum = 0, .maximum = 7});
}

void Fields(auto& io, Is<BandwidthPolicyStatus> auto& s) {
  io.Field("phase", s.phase, {.one_of = kBandwidthPhases});
  io.Field("appliedPods", s.applied_pods, kNonNegative);
  io.Field("currentEgressRateBitsPerSecond", s.current_egress_rate_bits_per_second, kNonNegative);
  io.Field("lastScaleTime", s.last_scale_time, {.format = Format::kDateTime});
  ObjectStatusFields(io, s);
}

Result<BandwidthPolicy> BandwidthPolicyFromJson(const kube::Json& json) {
  return ObjectFromJson<BandwidthPolicy>(json);
}
kube::Json ToJson(const BandwidthPolicy& policy) { return ObjectToJson(policy); }

}  // namespace strata::op::api::v1alpha1
