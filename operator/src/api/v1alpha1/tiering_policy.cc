#include "strata/operator/api/v1alpha1/tiering_policy.h"

#include "field_io.h"

namespace strata::op::api::v1alpha1 {

constexpr std::string_view kMetrics[] = {"ReadIOPS", "WriteIOPS", "TotalIOPS",
                                         "ThroughputBytesPerSecond", "IdleSeconds"};
constexpr std::string_view kComparisons[] = {"Above", "Below"};
constexpr std::string_view kScopes[] = {"IntraDevice", "CrossDevice"};
constexpr std::string_view kTieringPhases[] = {"Pending", "Active", "Paused", "Error"};
constexpr const char* kRuleNamePattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

void Fields(auto& io, Is<TieringRule> auto& r) {
  io.Field("name", r.name, {.required = true, .pattern = kRuleNamePattern, .max_length = 63});
  io.Field("metric", r.metric, {.required = true, .one_of = kMetrics});
  io.Field("comparison", r.comparison, {.required = true, .one_of = kComparisons});
  io.Field("threshold", r.threshold, {.required = true, .minimum = 0});
  io.Field("sustainedFor", r.sustained_for, kDurationRule);
  io.Field("targetTier", r.target_tier, kRequiredTierClass);
}

void Fields(auto& io, Is<TieringPolicySpec> auto& s) {
  io.Field("selector", s.selector, {.required = true});
  io.Field("scope", s.scope, {.one_of = kScopes});
  io.Field("rules", s.rules,
           {.required = true, .min_items = 1, .max_items = 16, .map_key = "name"});
  io.Field("cooldown", s.cooldown, kDurationRule);
  io.Field("targetDeviceSelector", s.target_device_selector);
  io.Field("allowedRegions", s.allowed_regions, kAuditList);
  io.Field("allowedJurisdictions", s.allowed_jurisdictions, kAuditList);
  io.Field("maxConcurrentMigrations", s.max_concurrent_migrations, {.minimum = 1, .maximum = 64});
  io.Field("paused", s.paused);
}

void Fields(auto& io, Is<TieringMigration> auto& m) {
  io.Field("volume", m.volume);
  io.Field("fromDevice", m.from_device);
  io.Field("fromTier", m.from_tier, kTierClassRule);
  io.Field("toDevice", m.to_device);
  io.Field("toTier", m.to_tier, kTierClassRule);
  io.Field("rule", m.rule);
  io.Field("reason", m.reason);
  io.Field("time", m.time, {.format = Format::kDateTime});
}

void Fields(auto& io, Is<TieringVolumeStatus> auto& v) {
  io.Field("pvc", v.pvc, {.required = true});
  io.Field("device", v.device);
  io.Field("lun", v.lun);
  io.Field("tier", v.tier, kTierClassRule);
  io.Field("readIOPS", v.read_iops, kNonNegative);
  io.Field("writeIOPS", v.write_iops, kNonNegative);
  io.Field("totalIOPS", v.total_iops, kNonNegative);
  io.Field("throughputBytesPerSecond", v.throughput_bytes_per_second, kNonNegative);
  io.Field("idleSeconds", v.idle_seconds, kNonNegative);
  io.Field("lastMove", v.last_move, {.format = Format::kDateTime});
  io.Field("state", v.state, {.one_of = kTieringVolumeStates});
  io.Field("message", v.message);
}

void Fields(auto& io, Is<TieringPolicyStatus> auto& s) {
  io.Field("phase", s.phase, {.one_of = kTieringPhases});
  io.Field("matchedVolumes", s.matched_volumes, kNonNegative);
  io.Field("migrationsInProgress", s.migrations_in_progress, kNonNegative);
  io.Field("lastEvaluationTime", s.last_evaluation_time, {.format = Format::kDateTime});
  io.Field("lastMigration", s.last_migration);
  io.Field("history", s.history, {.max_items = kTieringHistoryLimit});
  io.Field("volumes", s.volumes, {.map_key = "pvc"});
  io.Field("refusedDevices", s.refused_devices);
  ObjectStatusFields(io, s);
}

Result<TieringPolicy> TieringPolicyFromJson(const kube::Json& json) {
  return ObjectFromJson<TieringPolicy>(json);
}
kube::Json ToJson(const TieringPolicy& policy) { return ObjectToJson(policy); }

}  // namespace strata::op::api::v1alpha1
