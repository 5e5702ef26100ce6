#include "strata/operator/api/v1alpha1/maintenance_window.h"

#include "field_io.h"

namespace strata::op::api::v1alpha1 {

constexpr std::string_view kRecurrences[] = {"Daily", "Weekly", "Monthly"};
constexpr std::string_view kDrainPolicies[] = {"MigrateVolumes", "None"};
constexpr std::string_view kWindowPhases[] = {"Pending",   "Draining", "InMaintenance", "Restoring",
                                              "Completed", "Failed",   "Aborted"};
constexpr std::string_view kVolumePhases[] = {"Pending",  "Moving",    "Moved", "Restoring",
                                              "Restored", "Cancelled", "Failed"};
constexpr std::string_view kDevicePhases[] = {"Pending",       "Draining", "Drained",
                                              "InMaintenance", "Online",   "Failed"};

void Fields(auto& io, Is<MaintenanceSchedule> auto& s) {
  io.Field("start", s.start, {.required = true, .format = Format::kDateTime});
  io.Field("duration", s.duration,
           {.required = true, .format = Format::kDuration, .max_length = 32});
  io.Field("recurrence", s.recurrence, {.one_of = kRecurrences});
}

void Fields(auto& io, Is<MaintenanceDrain> auto& d) {
  io.Field("policy", d.policy, {.one_of = kDrainPolicies});
  io.Field("leadTime", d.lead_time, kDurationRule);
  io.Field("targetDeviceSelector", d.target_device_selector);
  io.Field("maxConcurrentMigrations", d.max_concurrent_migrations, {.minimum = 1, .maximum = 64});
}

void Fields(auto& io, Is<MaintenanceWindowSpec> auto& s) {
  io.Field("deviceSelector", s.device_selector, {.required = true});
  io.Field("schedule", s.schedule, {.required = true});
  io.Field("drain", s.drain);
  io.Field("allowedRegions", s.allowed_regions, kAuditList);
  io.Field("allowedJurisdictions", s.allowed_jurisdictions, kAuditList);
  io.Field("restore", s.restore);
  io.Field("finish", s.finish);
  io.Field("abort", s.abort);
  io.Field("suspend", s.suspend);
}

constexpr std::string_view kOccurrenceResults[] = {"Completed", "Failed", "Aborted", "Missed"};

void Fields(auto& io, Is<MaintenanceOccurrence> auto& o) {
  io.Field("start", o.start, {.required = true, .format = Format::kDateTime});
  io.Field("end", o.end, {.format = Format::kDateTime});
  io.Field("result", o.result, {.required = true, .one_of = kOccurrenceResults});
  io.Field("message", o.message, {.max_length = 1024});
}

void Fields(auto& io, Is<MaintenanceVolumeStatus> auto& v) {
  io.Field("lun", v.lun, {.required = true});
  io.Field("fromDevice", v.from_device, {.required = true});
  io.Field("toDevice", v.to_device);
  io.Field("bytesCopied", v.bytes_copied, kNonNegative);
  io.Field("bytesTotal", v.bytes_total, kNonNegative);
  io.Field("rate", v.rate, kNonNegative);
  io.Field("eta", v.eta, kDurationRule);
  io.Field("phase", v.phase, {.one_of = kVolumePhases});
  io.Field("attempts", v.attempts, kNonNegative);
  io.Field("message", v.message);
}

void Fields(auto& io, Is<MaintenanceDeviceStatus> auto& d) {
  io.Field("name", d.name, {.required = true});
  io.Field("phase", d.phase, {.one_of = kDevicePhases});
  io.Field("volumesRemaining", d.volumes_remaining, kNonNegative);
}

void Fields(auto& io, Is<MaintenanceWindowStatus> auto& s) {
  io.Field("phase", s.phase, {.one_of = kWindowPhases});
  io.Field("deviceCount", s.device_count, kNonNegative);
  io.Field("nextStart", s.next_start, {.format = Format::kDateTime});
  io.Field("occurrences", s.occurrences, kNonNegative);
  io.Field("missedOccurrences", s.missed_occurrences, kNonNegative);
  io.Field("lastCompleted", s.last_completed, {.format = Format::kDateTime});
  io.Field("history", s.history, {.max_items = 10});
  io.Field("progress", s.progress);
  io.Field("devices", s.devices, {.map_key = "name"});
  io.Field("volumes", s.volumes, {.map_key = "lun"});
  ObjectStatusFields(io, s);
}

Result<MaintenanceWindow> MaintenanceWindowFromJson(const kube::Json& json) {
  return ObjectFromJson<MaintenanceWindow>(json);
}
kube::Json ToJson(const MaintenanceWindow& window) { return ObjectToJson(window); }

}  // namespace strata::op::api::v1alpha1
