#include "strata/netd/bandwidth_policy.h"

#include <algorithm>

#include "strata/operator/api/v1alpha1/bandwidth_policy.h"

namespace strata::netd {
namespace {

namespace api = op::api::v1alpha1;

// tbf keeps rates as 32-bit bytes per second (libnl): the most a BandwidthPolicy can ask of it.
constexpr uint64_t kTbfMaxRateBits = (uint64_t{1} << 31) * 8 - 8;

Status CheckRate(int64_t bits, const std::string& field) {
  if (static_cast<uint64_t>(bits) > kTbfMaxRateBits) {
    return InvalidArgumentError(field + ": " + std::to_string(bits) + " bit/s is above the " +
                                std::to_string(kTbfMaxRateBits) + " bit/s a tbf qdisc can hold");
  }
  return Status::Ok();
}

Result<DirectionLimit> Direction(const std::optional<api::BandwidthLimit>& l,
                                 const std::string& field) {
  DirectionLimit d;
  if (!l) return d;
  STRATA_RETURN_IF_ERROR(CheckRate(l->rate_bits_per_second, field + ".rateBitsPerSecond"));
  d.rate_bits = static_cast<uint64_t>(l->rate_bits_per_second);
  d.burst_bits =
      l->burst_bytes ? static_cast<uint64_t>(*l->burst_bytes) * 8 : DefaultBurstBits(d.rate_bits);
  if (d.burst_bits / d.rate_bits >= 100) {
    return InvalidArgumentError(field + ".burstBytes: " + std::to_string(d.burst_bits / 8) +
                                " bytes take over 100 s to send at " + std::to_string(d.rate_bits) +
                                " bit/s");
  }
  return d;
}

}  // namespace

bool PolicySpec::AppliesTo(const std::string& ifname) const {
  return interfaces.empty() ||
         std::find(interfaces.begin(), interfaces.end(), ifname) != interfaces.end();
}

uint64_t DefaultBurstBits(uint64_t rate_bits) {
  return std::max<uint64_t>(rate_bits / 50, uint64_t{64} * 1024 * 8);
}

Result<PolicySpec> ParsePolicy(const kube::Json& object) {
  STRATA_ASSIGN_OR_RETURN(api::BandwidthPolicy p, api::BandwidthPolicyFromJson(object));
  PolicySpec s;
  const kube::Json& meta = object.value("metadata", kube::Json::object());
  s.namespace_ = meta.value("namespace", "");
  s.name = meta.value("name", "");
  s.creation_timestamp = meta.value("creationTimestamp", "");
  s.generation = meta.value("generation", int64_t{0});
  STRATA_ASSIGN_OR_RETURN(s.selector, kube::LabelSelectorFromJson(
                                          object["spec"].value("podSelector", kube::Json::object()),
                                          "spec.podSelector"));
  s.interfaces = p.spec.interfaces;
  STRATA_ASSIGN_OR_RETURN(s.ingress, Direction(p.spec.ingress, "spec.ingress"));
  STRATA_ASSIGN_OR_RETURN(s.egress, Direction(p.spec.egress, "spec.egress"));
  if (p.spec.elastic) {
    const auto& e = *p.spec.elastic;
    ElasticConfig c;
    if (e.min_rate_bits_per_second > e.max_rate_bits_per_second) {
      return InvalidArgumentError(
          "spec.elastic.minRateBitsPerSecond: " + std::to_string(e.min_rate_bits_per_second) +
          " is above spec.elastic.maxRateBitsPerSecond " +
          std::to_string(e.max_rate_bits_per_second));
    }
    STRATA_RETURN_IF_ERROR(
        CheckRate(e.max_rate_bits_per_second, "spec.elastic.maxRateBitsPerSecond"));
    if (e.scale_down_utilization_percent >= e.scale_up_utilization_percent) {
      return InvalidArgumentError("spec.elastic.scaleDownUtilizationPercent: " +
                                  std::to_string(e.scale_down_utilization_percent) +
                                  " must be below spec.elastic.scaleUpUtilizationPercent " +
                                  std::to_string(e.scale_up_utilization_percent) +
                                  " (the band between them is the "
                                  "hysteresis)");
    }
    if (s.egress.rate_bits != 0 &&
        (s.egress.rate_bits < static_cast<uint64_t>(e.min_rate_bits_per_second) ||
         s.egress.rate_bits > static_cast<uint64_t>(e.max_rate_bits_per_second))) {
      return InvalidArgumentError(
          "spec.egress.rateBitsPerSecond: " + std::to_string(s.egress.rate_bits) +
          " is outside spec.elastic [minRateBitsPerSecond, "
          "maxRateBitsPerSecond]");
    }
    c.min_rate_bits = static_cast<uint64_t>(e.min_rate_bits_per_second);
    c.max_rate_bits = static_cast<uint64_t>(e.max_rate_bits_per_second);
    c.high_water_percent = static_cast<int>(e.scale_up_utilization_percent);
    c.low_water_percent = static_cast<int>(e.scale_down_utilization_percent);
    c.step_percent = static_cast<int>(e.step_percent);
    STRATA_ASSIGN_OR_RETURN(auto sustained, api::ParseDuration(e.sustained_for));
    STRATA_ASSIGN_OR_RETURN(c.cooldown, api::ParseDuration(e.cooldown));
    STRATA_ASSIGN_OR_RETURN(s.sample_interval, api::ParseDuration(e.sample_interval));
    if (s.sample_interval < std::chrono::milliseconds(100)) {
      return InvalidArgumentError("spec.elastic.sampleInterval: " + e.sample_interval +
                                  " is below the 100ms the agent can sample at");
    }
    if (sustained < s.sample_interval) {
      return InvalidArgumentError("spec.elastic.sustainedFor: " + e.sustained_for +
                                  " is shorter than spec.elastic.sampleInterval " +
                                  e.sample_interval);
    }
    c.sustained_samples = static_cast<int>(sustained / s.sample_interval);
    s.elastic = c;
    if (s.egress.rate_bits == 0) {
      s.egress.rate_bits = c.min_rate_bits;
      s.egress.burst_bits = DefaultBurstBits(c.min_rate_bits);
    }
  }
  if (s.ingress.rate_bits == 0 && s.egress.rate_bits == 0) {
    return InvalidArgumentError("spec: none of ingress, egress, elastic is set: nothing to apply");
  }
  return s;
}

size_t ChooseWinner(const std::vector<const PolicySpec*>& c) {
  size_t best = 0;
  for (size_t i = 1; i < c.size(); ++i) {
    const auto& a = *c[i];
    const auto& b = *c[best];
    if (a.creation_timestamp < b.creation_timestamp ||
        (a.creation_timestamp == b.creation_timestamp && a.name < b.name)) {
      best = i;
    }
  }
  return best;
}

}  // namespace strata::netd
