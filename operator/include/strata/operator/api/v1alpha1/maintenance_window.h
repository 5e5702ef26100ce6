#pragma once

#include "strata/operator/api/v1alpha1/common.h"

namespace strata::op::api::v1alpha1 {

// MaintenanceWindow (cluster-scoped): a planned maintenance of storage devices, drained by live
// migration first. Schema: charts/strata/crds/strata.io_maintenancewindows.yaml.

struct MaintenanceSchedule {
  std::string start;                      // RFC 3339
  std::string duration;                   // duration
  std::optional<std::string> recurrence;  // Daily, Weekly, Monthly; absent: once
};

// Defaulted as a whole ({}) when absent, so its own defaults always apply.
struct MaintenanceDrain {
  std::string policy = "MigrateVolumes";  // MigrateVolumes, None
  std::string lead_time = "2h";           // duration
  std::optional<LabelSelector> target_device_selector;
  int64_t max_concurrent_migrations = 2;  // 1-64
};

struct MaintenanceWindowSpec {
  LabelSelector device_selector;
  MaintenanceSchedule schedule;
  MaintenanceDrain drain;
  std::vector<std::string> allowed_regions;
  std::vector<std::string> allowed_jurisdictions;
  // Move the LUNs back to their devices when the window ends (false: they stay on the targets).
  bool restore = true;
  // Set by `kubectl strata maintenance finish`: end the window now (InMaintenance -> Restoring).
  bool finish = false;
  // Set by `kubectl strata maintenance abort`: stop at any phase; in-flight moves are cancelled
  // (the LUN stays whole on its source), moved LUNs come back when `restore`.
  bool abort = false;
  // Like a CronJob's: no occurrence starts while true (one under way is not affected); the
  // occurrences of a recurring window that end meanwhile are skipped.
  bool suspend = false;
};

// One past occurrence of a recurring window.
struct MaintenanceOccurrence {
  std::string start;   // RFC 3339
  std::string end;     // when it ended (Missed: when it would have)
  std::string result;  // Completed, Failed, Aborted, Missed
  std::optional<std::string> message;
};

struct MaintenanceDeviceStatus {
  std::string name;
  std::string phase;  // Pending, Draining, Drained, InMaintenance, Online, Failed
  std::optional<int64_t> volumes_remaining;
};

// One LUN the window moves: where from and to (StorageDevice names), and the move's progress.
struct MaintenanceVolumeStatus {
  std::string lun;
  std::string from_device;
  std::string to_device;
  std::optional<int64_t> bytes_copied;
  std::optional<int64_t> bytes_total;
  std::optional<int64_t> rate;     // bytes per second
  std::optional<std::string> eta;  // duration
  // Pending, Moving, Moved, Restoring, Restored, Cancelled, Failed
  std::string phase;
  std::optional<int64_t> attempts;
  std::optional<std::string> message;
};

struct MaintenanceWindowStatus : ObjectStatus {
  // Pending, Draining, InMaintenance, Restoring, Completed, Failed, Aborted
  std::string phase;
  std::optional<std::string> progress;  // e.g. 1/2 LUNs, 63%
  std::optional<int64_t> device_count;
  // The start of the occurrence under way or next (recurring windows).
  std::optional<std::string> next_start;
  std::optional<int64_t> occurrences;          // occurrences run to their end
  std::optional<int64_t> missed_occurrences;   // skipped: past their end before they could run
  std::optional<std::string> last_completed;   // when the last Completed occurrence ended
  std::vector<MaintenanceOccurrence> history;  // newest first, at most 10
  std::vector<MaintenanceDeviceStatus> devices;
  std::vector<MaintenanceVolumeStatus> volumes;
};

struct MaintenanceWindow : Object<MaintenanceWindowSpec, MaintenanceWindowStatus> {
  static constexpr std::string_view kKind = "MaintenanceWindow";
};

Result<MaintenanceWindow> MaintenanceWindowFromJson(const kube::Json& json);
kube::Json ToJson(const MaintenanceWindow& window);

}  // namespace strata::op::api::v1alpha1
