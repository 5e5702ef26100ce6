#pragma once

#include <prometheus/collectable.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "strata/common/status.h"
#include "strata/kube/client.h"
#include "strata/kube/clock.h"
#include "strata/operator/api/v1alpha1/usage_report.h"
#include "strata/operator/volume_inventory.h"

namespace strata::op {

// The pay-per-use ledger: integrates what every namespace's volumes use over the volume
// inventory's sweeps and keeps it in one UsageReport named "usage" per namespace.
//
// - Volumes: every LUN the inventory resolves to a PVC (by_pvc); the namespace is the PVC's.
// - GiB-hours: for each volume seen by two consecutive observations, size_bytes / 2^30 x the
//   hours between them, on the device and tier of the earlier observation, at that device's
//   price_per_gib_hour for that tier then (a tier move, or a price change, counts from the sweep
//   that sees it). A volume is billed from the first sweep that sees it; a volume on a device that
//   does not answer is not billed while it does not (its line is kept); a volume gone from a
//   device that answers is dropped (its totals stay in the namespace's).
// - Logical and unique bytes: gauges (now). Snapshot and clone space, gauges too: per volume
//   the LUN's exclusive bytes (only it holds them), shared bytes (with its snapshots, clones or
//   dedup) and snapshot bytes (only its snapshots hold them); per namespace the volumes' sums of
//   exclusive and shared bytes, and snapshot bytes = the devices' owner space of the namespace
//   (strata-csi's owner is the PVC's namespace), so snapshots that outlived their volume count
//   too; a device that does not answer counts with what it reported last.
// - Read/write ops and bytes: deltas of the LUN's
//   counters; a counter below the previous value (device restarted) or on another device counts
//   from zero.
// - The previous observation of each volume is its line in the report (device, tier, size,
//   price, raw counters as of status.lastUpdate): after a restart or a change of leader the
//   ledger GETs the report and continues from it, so the time in between is billed on the tier
//   last seen, and nothing is counted twice.
// - Writes: a report is written (created first if missing) when its volumes or their tiers
//   change, else at most every `write_interval`. Writes happen on the sweep's thread, outside
//   the lock scrapes take.
// - Metrics (Collectable(), registered beside ctrl::Metrics): strata_usage_gib_hours_total and
//   strata_usage_cost_total {namespace,tier,device}, strata_usage_logical_bytes and
//   strata_usage_unique_bytes, strata_usage_exclusive_bytes, strata_usage_shared_bytes and
//   strata_usage_snapshot_bytes {namespace}, strata_device_usage_gib_hours_total and
//   strata_device_usage_cost_total {device,tier} = the sum over namespaces, all from one state at
//   scrape time (consistent with each other).
// Thread-safe: OnSweep runs on the inventory's thread, Collect on the exposer's.
class UsageLedger {
 public:
  struct Options {
    kube::Duration write_interval = std::chrono::seconds(30);
  };

  UsageLedger(kube::ApiClient* client, Options options, kube::Clock* clock = kube::Clock::Real());

  // VolumeInventory listener. Integrates `current` (the ledger keeps its own previous
  // observation, so `previous` is not needed) and writes the reports that are due.
  void OnSweep(const InventorySnapshot& previous, const InventorySnapshot& current);

  // Writes every report whose state is not written yet, due or not.
  Status Flush();

  // The namespace's report status as the ledger has it (nullopt: not known).
  std::optional<api::v1alpha1::UsageReportStatus> Report(const std::string& ns) const;

  // strata_usage_* and strata_device_usage_*; register beside ctrl::Metrics::registry().
  std::shared_ptr<prometheus::Collectable> Collectable() const { return collectable_; }

 private:
  // What the ledger knows of a namespace (guarded by mu_).
  struct Namespace {
    api::v1alpha1::UsageReportStatus status;
    bool urgent = false;  // volumes or tiers changed since the last write (or it failed)
    // Bytes only the namespace's snapshots hold, per device as it last answered.
    std::map<std::string, int64_t> snapshot_bytes;
  };
  // The namespace's report in the API (guarded by work_mu_).
  struct Written {
    kube::Json object;  // as last read or written; null: to be created
    std::optional<kube::TimePoint> at;
  };
  class Metrics;

  // Loads (or starts) `ns`'s ledger from its report. False when the report cannot be read.
  // REQUIRES: work_mu_ held, mu_ not held.
  bool Load(const std::string& ns, kube::WallTime taken);
  // REQUIRES: mu_ held.
  static void Integrate(Namespace& n, const std::string& ns, const InventorySnapshot& current);
  // Creates the report if needed and writes `status`. REQUIRES: work_mu_ held, mu_ not held.
  Status Write(const std::string& ns, const api::v1alpha1::UsageReportStatus& status);

  kube::ApiClient* const client_;
  const Options options_;
  kube::Clock* const clock_;
  // work_mu_: one sweep or flush at a time, held across API calls. mu_: the ledger's state, held
  // briefly (a scrape never waits for the API). Order: work_mu_, then mu_.
  std::mutex work_mu_;
  std::map<std::string, Written> written_;  // guarded by work_mu_
  mutable std::mutex mu_;
  std::map<std::string, Namespace> namespaces_;  // guarded by mu_
  std::shared_ptr<prometheus::Collectable> collectable_;
};

}  // namespace strata::op
