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

// One move the policy started: status.lastMigration and status.history[].
struct TieringMigration {
  std::string volume;  // the PVC's name
  std::string from_device;
  std::string from_tier;
  std::string to_device;
  std::string to_tier;
  std::string rule;
  std::string reason;  // the metric's value and the threshold, e.g. "ReadIOPS 812 Above 500 for 3s"
  std::string time;
};

// status.volumes[]: one selected volume as the last evaluation saw it.
inline constexpr std::string_view kTieringVolumeStates[] = {"Idle", "Sustaining", "Moving",
                                                            "Cooldown"};
struct TieringVolumeStatus {
  std::string pvc;
  std::string device;  // empty: no LUN found for the PVC
  std::string lun;
  std::string tier;
  std::optional<int64_t> read_iops, write_iops, total_iops, throughput_bytes_per_second,
      idle_seconds;
  std::optional<std::string> last_move;
  std::string state;    // kTieringVolumeStates
  std::string message;  // why a due move waits (no room, concurrency limit, ...)
};

struct TieringPolicyStatus : ObjectStatus {
  std::string phase;  // Pending, Active, Paused, Error
  std::optional<int64_t> matched_volumes;
  std::optional<int64_t> migrations_in_progress;
  std::optional<std::string> last_evaluation_time;
  std::optional<TieringMigration> last_migration;
  std::vector<TieringMigration> history;     // the last kTieringHistoryLimit moves, oldest first
  std::vector<TieringVolumeStatus> volumes;  // by pvc
  std::vector<std::string> refused_devices;  // audit: devices the allowed lists exclude, why
};

inline constexpr int kTieringHistoryLimit = 20;

struct TieringPolicy : Object<TieringPolicySpec, TieringPolicyStatus> {
  static constexpr std::string_view kKind = "TieringPolicy";
};

Result<TieringPolicy> TieringPolicyFromJson(const kube::Json& json);
kube::Json ToJson(const TieringPolicy& policy);

}  // namespace strata::op::api::v1alpha1
