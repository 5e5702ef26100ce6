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
};

struct MaintenanceDeviceStatus {
  std::string name;
  std::string phase;  // Pending, Draining, Drained, InMaintenance, Online, Failed
  std::optional<int64_t> volumes_remaining;
};

struct MaintenanceWindowStatus : ObjectStatus {
  std::string phase;  // Scheduled, Draining, InProgress, Completed, Failed, Cancelled
  std::optional<int64_t> device_count;
  std::optional<std::string> next_start;
  std::vector<MaintenanceDeviceStatus> devices;
};

struct MaintenanceWindow : Object<MaintenanceWindowSpec, MaintenanceWindowStatus> {
  static constexpr std::string_view kKind = "MaintenanceWindow";
};

Result<MaintenanceWindow> MaintenanceWindowFromJson(const kube::Json& json);
kube::Json ToJson(const MaintenanceWindow& window);

}  // namespace strata::op::api::v1alpha1
