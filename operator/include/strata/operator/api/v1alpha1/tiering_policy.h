#pragma once

#include "strata/operator/api/v1alpha1/common.h"

namespace strata::op::api::v1alpha1 {

// TieringPolicy (namespaced): moves the selected volumes between media tiers (and devices) as
// their load changes. Schema: charts/strata/crds/strata.io_tieringpolicies.yaml.

struct TieringRule {
  std::string name;        // DNS label
  std::string metric;      // ReadIOPS, WriteIOPS, TotalIOPS, ThroughputBytesPerSecond, IdleSeconds
  std::string comparison;  // Above, Below
  int64_t threshold = 0;
  std::string sustained_for = "10m";  // duration
  std::string target_tier;            // kTierClasses
};

struct TieringPolicySpec {
  LabelSelector selector;
  std::string scope = "IntraDevice";  // IntraDevice, CrossDevice
  std::vector<TieringRule> rules;     // 1-16, unique by name
  std::string cooldown = "1h";        // duration
  std::optional<LabelSelector> target_device_selector;
  std::vector<std::string> allowed_regions;
  std::vector<std::string> allowed_jurisdictions;
  int64_t max_concurrent_migrations = 2;  // 1-64
  bool paused = false;
};

struct TieringMigration {
  std::string volume;
  std::string from_tier;
  std::string to_tier;
  std::string rule;
  std::string time;
};

struct TieringPolicyStatus : ObjectStatus {
  std::string phase;  // Pending, Active, Paused, Error
  std::optional<int64_t> matched_volumes;
  std::optional<int64_t> migrations_in_progress;
  std::optional<std::string> last_evaluation_time;
  std::optional<TieringMigration> last_migration;
};

struct TieringPolicy : Object<TieringPolicySpec, TieringPolicyStatus> {
  static constexpr std::string_view kKind = "TieringPolicy";
};

Result<TieringPolicy> TieringPolicyFromJson(const kube::Json& json);
kube::Json ToJson(const TieringPolicy& policy);

}  // namespace strata::op::api::v1alpha1
