#pragma once

#include "strata/operator/api/v1alpha1/common.h"

namespace strata::op::api::v1alpha1 {

// BandwidthPolicy (namespaced): shapes the selected pods' interfaces, optionally elastic with
// utilization. Schema: charts/strata/crds/strata.io_bandwidthpolicies.yaml.

struct BandwidthLimit {
  int64_t rate_bits_per_second = 0;    // 8000 - 400e9
  std::optional<int64_t> burst_bytes;  // 1500 - 2^32-1
};

struct ElasticBandwidth {
  int64_t min_rate_bits_per_second = 0;
  int64_t max_rate_bits_per_second = 0;
  int64_t scale_up_utilization_percent = 80;
  int64_t scale_down_utilization_percent = 30;
  int64_t step_percent = 25;
  std::string sustained_for = "5m";    // duration
  std::string cooldown = "10m";        // duration
  std::string sample_interval = "1s";  // duration: how often strata-netd reads the counters
};

struct BandwidthPolicySpec {
  LabelSelector pod_selector;
  std::vector<std::string> interfaces;  // empty: every interface strata-cni added
  std::optional<BandwidthLimit> ingress;
  std::optional<BandwidthLimit> egress;
  std::optional<ElasticBandwidth> elastic;
  int64_t priority = 0;  // 0-7
};

struct BandwidthPolicyStatus : ObjectStatus {
  std::string phase;  // Pending, Applied, Error
  std::optional<int64_t> applied_pods;
  std::optional<int64_t> current_egress_rate_bits_per_second;
  std::optional<std::string> last_scale_time;
};

struct BandwidthPolicy : Object<BandwidthPolicySpec, BandwidthPolicyStatus> {
  static constexpr std::string_view kKind = "BandwidthPolicy";
};

Result<BandwidthPolicy> BandwidthPolicyFromJson(const kube::Json& json);
kube::Json ToJson(const BandwidthPolicy& policy);

}  // namespace strata::op::api::v1alpha1
