#pragma once

#include "strata/operator/api/v1alpha1/common.h"

namespace strata::op::api::v1alpha1 {

// UsageReport (namespaced, one named "usage" per namespace that owns volumes): what the
// namespace's volumes used and cost, maintained by the operator's usage ledger (pay-per-use).
// Everything is status; the spec is empty. Schema: charts/strata/crds/strata.io_usagereports.yaml.

inline constexpr std::string_view kUsageReportName = "usage";

struct UsageReportSpec {};

// I/O counted since the window began (deltas of the devices' counters).
struct IoCounts {
  int64_t read_ops = 0;
  int64_t write_ops = 0;
  int64_t read_bytes = 0;
  int64_t write_bytes = 0;
};

// GiB-hours and their cost on one tier (status.tiers[], keyed by tier).
struct TierUsage {
  std::string tier;
  double gib_hours = 0;
  double cost = 0;
};

// The same on one tier of one device (status.usage[]): what the ledger resumes from.
struct DeviceTierUsage {
  std::string device;
  std::string tier;
  double gib_hours = 0;
  double cost = 0;
};

// One volume of the namespace as the last sweep saw it, with its totals since it was first seen
// (status.volumes[], keyed by pvc). size, tier, price and counters are the previous observation
// the next interval is billed from (after a restart too).
struct VolumeUsage {
  std::string pvc;
  std::string device;
  std::string lun;
  std::string tier;
  int64_t size_bytes = 0;
  double price_per_gib_hour = 0;
  std::optional<std::string> first_seen;  // date-time
  double gib_hours = 0;
  double cost = 0;
  int64_t logical_bytes = 0;
  int64_t unique_bytes = 0;
  // The LUN's mapped bytes nobody else holds, those it shares (snapshots, clones, dedup), and
  // the bytes only its snapshots hold.
  int64_t exclusive_bytes = 0;
  int64_t shared_bytes = 0;
  int64_t snapshot_bytes = 0;
  IoCounts io;
  IoCounts counters;  // the device's raw counters at lastUpdate (deltas are taken against them)
};

struct UsageReportStatus : ObjectStatus {
  std::optional<std::string> window_start;  // date-time (microseconds)
  std::optional<std::string> last_update;   // date-time (microseconds): totals are up to here
  // Absent until the ledger first writes (an empty status is left out, as for every kind).
  std::optional<int64_t> volume_count;
  std::optional<double> gib_hours;
  std::optional<double> total_cost;
  std::optional<int64_t> logical_bytes;
  std::optional<int64_t> unique_bytes;
  // Sums of the volumes' exclusive and shared bytes; bytes only the namespace's snapshots hold
  // (snapshots of volumes since deleted included).
  std::optional<int64_t> exclusive_bytes;
  std::optional<int64_t> shared_bytes;
  std::optional<int64_t> snapshot_bytes;
  std::optional<IoCounts> io;
  std::vector<TierUsage> tiers;
  std::vector<DeviceTierUsage> usage;
  std::vector<VolumeUsage> volumes;
};

struct UsageReport : Object<UsageReportSpec, UsageReportStatus> {
  static constexpr std::string_view kKind = "UsageReport";
};

Result<UsageReport> UsageReportFromJson(const kube::Json& json);
kube::Json ToJson(const UsageReport& report);

// strata.io/v1alpha1 usagereports.
kube::Resource UsageReports();

}  // namespace strata::op::api::v1alpha1
