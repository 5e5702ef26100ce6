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

// status.volumes[].state.
inline constexpr std::string_view kDedupVolumeStates[] = {
    "Deduplicating",        // dedup on, as the policy wants
    "Off",                  // dedup off, as the policy wants (mode Disabled)
    "BelowMinSavings",      // turned off: ratio under minSavingsRatio after evaluationWindow
    "DeviceDedupDisabled",  // the device runs with --dedup off: it cannot be turned on
    "Conflict",             // an older policy selects the volume too; it governs it
    "Error",                // the device refused or did not answer; retried
};

// One volume the policy selects (status.volumes[], a list-map keyed by pvc).
struct DedupVolumeStatus {
  std::string pvc;  // PersistentVolumeClaim name (the policy's namespace)
  std::string device;
  std::string lun;
  std::string tier;
  bool dedup = false;  // as the device reports it now
  int64_t logical_bytes = 0;
  int64_t unique_bytes = 0;
  double ratio = 1;
  std::optional<std::string> since;  // when the operator turned (or found) dedup on; date-time
  std::string state;                 // kDedupVolumeStates
  std::string message;
  // BelowMinSavings: when, and at which policy generation (it stays off until that changes).
  std::optional<std::string> turned_off_at;
  std::optional<int64_t> turned_off_generation;
};

// Totals of the governed volumes on one device (status.devices[], a list-map keyed by name).
struct DedupDeviceStatus {
  std::string name;
  int64_t volumes = 0;
  int64_t logical_bytes = 0;
  int64_t unique_bytes = 0;
  double dedup_ratio = 1;
  std::optional<bool> dedup_enabled;  // the device's --dedup
};

struct DedupPolicyStatus : ObjectStatus {
  std::string phase;  // Pending, Active, Error
  std::optional<int64_t> matched_volumes;
  std::optional<int64_t> logical_bytes;
  std::optional<int64_t> unique_bytes;
  std::optional<int64_t> saved_bytes;  // logical - unique
  std::optional<double> dedup_ratio;
  std::vector<DedupVolumeStatus> volumes;
  std::vector<DedupDeviceStatus> devices;
};

struct DedupPolicy : Object<DedupPolicySpec, DedupPolicyStatus> {
  static constexpr std::string_view kKind = "DedupPolicy";
};

Result<DedupPolicy> DedupPolicyFromJson(const kube::Json& json);
kube::Json ToJson(const DedupPolicy& policy);

}  // namespace strata::op::api::v1alpha1
