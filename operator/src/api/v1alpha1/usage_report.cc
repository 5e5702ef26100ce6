#include "strata/operator/api/v1alpha1/usage_report.h"

#include "field_io.h"

namespace strata::op::api::v1alpha1 {

void Fields(auto&, Is<UsageReportSpec> auto&) {}

void Fields(auto& io, Is<IoCounts> auto& c) {
  io.Field("readOps", c.read_ops, kNonNegative);
  io.Field("writeOps", c.write_ops, kNonNegative);
  io.Field("readBytes", c.read_bytes, kNonNegative);
  io.Field("writeBytes", c.write_bytes, kNonNegative);
}

void Fields(auto& io, Is<TierUsage> auto& t) {
  io.Field("tier", t.tier, kRequiredTierClass);
  io.Field("gibHours", t.gib_hours, kNonNegative);
  io.Field("cost", t.cost, kNonNegative);
}

void Fields(auto& io, Is<DeviceTierUsage> auto& u) {
  io.Field("device", u.device, {.required = true});
  io.Field("tier", u.tier, kRequiredTierClass);
  io.Field("gibHours", u.gib_hours, kNonNegative);
  io.Field("cost", u.cost, kNonNegative);
}

void Fields(auto& io, Is<VolumeUsage> auto& v) {
  io.Field("pvc", v.pvc, {.required = true});
  io.Field("device", v.device);
  io.Field("lun", v.lun);
  io.Field("tier", v.tier, kTierClassRule);
  io.Field("sizeBytes", v.size_bytes, kNonNegative);
  io.Field("pricePerGibHour", v.price_per_gib_hour, kNonNegative);
  io.Field("firstSeen", v.first_seen, {.format = Format::kDateTime});
  io.Field("gibHours", v.gib_hours, kNonNegative);
  io.Field("cost", v.cost, kNonNegative);
  io.Field("logicalBytes", v.logical_bytes, kNonNegative);
  io.Field("uniqueBytes", v.unique_bytes, kNonNegative);
  io.Field("exclusiveBytes", v.exclusive_bytes, kNonNegative);
  io.Field("sharedBytes", v.shared_bytes, kNonNegative);
  io.Field("snapshotBytes", v.snapshot_bytes, kNonNegative);
  io.Field("io", v.io);
  io.Field("counters", v.counters);
}

void Fields(auto& io, Is<UsageReportStatus> auto& s) {
  io.Field("windowStart", s.window_start, {.format = Format::kDateTime});
  io.Field("lastUpdate", s.last_update, {.format = Format::kDateTime});
  io.Field("volumeCount", s.volume_count, kNonNegative);
  io.Field("gibHours", s.gib_hours, kNonNegative);
  io.Field("totalCost", s.total_cost, kNonNegative);
  io.Field("logicalBytes", s.logical_bytes, kNonNegative);
  io.Field("uniqueBytes", s.unique_bytes, kNonNegative);
  io.Field("exclusiveBytes", s.exclusive_bytes, kNonNegative);
  io.Field("sharedBytes", s.shared_bytes, kNonNegative);
  io.Field("snapshotBytes", s.snapshot_bytes, kNonNegative);
  io.Field("io", s.io);
  io.Field("tiers", s.tiers, {.map_key = "tier"});
  io.Field("usage", s.usage);
  io.Field("volumes", s.volumes, {.map_key = "pvc"});
  ObjectStatusFields(io, s);
}

Result<UsageReport> UsageReportFromJson(const kube::Json& json) {
  return ObjectFromJson<UsageReport>(json);
}
kube::Json ToJson(const UsageReport& report) { return ObjectToJson(report); }

kube::Resource UsageReports() {
  return {"strata.io", "v1alpha1", "usagereports", "UsageReport", true};
}

}  // namespace strata::op::api::v1alpha1
