#pragma once

#include "strata/operator/api/v1alpha1/common.h"

namespace strata::op::api::v1alpha1 {

// DedupPolicy (namespaced): inline block de-duplication for the selected volumes, turned off
// again where it does not pay. Schema: charts/strata/crds/strata.io_deduppolicies.yaml.

struct DedupPolicySpec {
  LabelSelector selector;
  std::string mode = "Inline";            // Inline, Disabled
  std::vector<std::string> tiers;         // kTierClasses; empty: all
  double min_savings_ratio = 1.1;         // 1-100
  std::string evaluation_window = "24h";  // duration
  int64_t max_index_memory_bytes = 0;     // 0: no bound
  bool cross_owner_sharing = false;
};

struct DedupPolicyStatus : ObjectStatus {
  std::string phase;  // Pending, Active, Error
  std::optional<int64_t> matched_volumes;
  std::optional<int64_t> logical_bytes;
  std::optional<int64_t> unique_bytes;
  std::optional<double> dedup_ratio;
};

struct DedupPolicy : Object<DedupPolicySpec, DedupPolicyStatus> {
  static constexpr std::string_view kKind = "DedupPolicy";
};

Result<DedupPolicy> DedupPolicyFromJson(const kube::Json& json);
kube::Json ToJson(const DedupPolicy& policy);

}  // namespace strata::op::api::v1alpha1
