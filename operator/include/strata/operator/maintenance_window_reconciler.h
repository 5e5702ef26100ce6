#pragma once

#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "strata/controller/reconciler.h"
#include "strata/device/client.h"
#include "strata/kube/client.h"
#include "strata/kube/clock.h"
#include "strata/kube/events.h"
#include "strata/kube/store.h"
#include "strata/operator/api/v1alpha1/maintenance_window.h"
#include "strata/operator/volume_inventory.h"

namespace strata::op {

// MaintenanceWindow (issue #11): drains the LUNs of the StorageDevices the window selects to other
// devices by live device-to-device moves, holds the devices in Maintenance for the window, and
// brings the LUNs back when it ends. Phases (status.phase):
//   Pending       before schedule.start - drain.leadTime, or while the targets lack room: every
//                 LUN is placed first (biggest first onto the target with most free bytes in the
//                 LUN's tier class); a shortfall is Ready=False reason InsufficientCapacity naming
//                 it, and no move starts. A window whose end passes while Pending is Failed.
//   Draining      the plan (status.volumes[]: lun, fromDevice, toDevice) is written BEFORE any
//                 move; at most drain.maxConcurrentMigrations moves run; progress from the
//                 source's migration state. LUNs that appear on a selected device meanwhile are
//                 added to the plan.
//   InMaintenance every LUN moved: the selected StorageDevices get spec.desiredState Maintenance
//                 (their reconciler carries it to the devices).
//   Restoring     at start + duration or spec.finish: desiredState back to Online, then each LUN
//                 moves back to fromDevice (spec.restore; false ends Completed directly).
//   Completed, Failed (a move failed Options::max_attempts times: unwound as an abort), Aborted
//                 (spec.abort or deletion -- the finalizer runs the same unwinding): moves in
//                 flight are cancelled (the LUN stays whole on its source), moved LUNs come back
//                 when restore, the devices return Online.
// Recurring windows (spec.schedule.recurrence; MaintenanceSchedule): each occurrence runs the
// phases above; when it ends Completed or Failed the window returns to Pending with
// status.nextStart = the next occurrence, the occurrence in status.history (newest first, 10),
// status.occurrences / lastCompleted, Event OccurrenceCompleted or OccurrenceFailed. While an
// occurrence runs, status.nextStart is its start (the drain time and end derive from it). An
// occurrence over before it could start (operator down, spec.suspend, not drained) is skipped:
// Missed in history, status.missedOccurrences, Event OccurrenceMissed; one still inside its
// duration runs late. spec.finish ends one occurrence (and is set back to false afterwards);
// spec.abort and deletion end the series (Aborted); spec.suspend starts no occurrence.
// Restart safety: every decision is re-derived from status.volumes[] and the devices' own LUN and
// migration state (a source LUN with moved_to is moved; a running migration is in flight), so an
// operator restart or leader change resumes and never starts a second move of one LUN.
// Metrics (on Options::registry, per window, from the status each pass reads and writes; removed
// once the window is gone): strata_maintenance_luns_draining{window} (moves in flight: LUNs
// Moving out or Restoring back), strata_maintenance_bytes_left{window} (sum of bytesTotal -
// bytesCopied over the plan; Cancelled and Failed LUNs left out, while Restoring a Moved LUN
// counts whole) and
// strata_maintenance_window_phase{window,phase} (1 for the current phase, 0 for the six others).
// Thread-safe: no state between calls beyond the collaborators'.
class MaintenanceWindowReconciler : public ctrl::Reconciler {
 public:
  static constexpr char kFinalizer[] = "strata.io/maintenance-window";

  using Lookup = std::function<std::optional<kube::Json>(const std::string& key)>;

  struct Options {
    // How soon to look again while moves run (the inventory's sweeps requeue too).
    kube::Duration poll = std::chrono::seconds(2);
    // Failed attempts of one LUN's move before the window fails.
    int max_attempts = 3;
    // Called for every move the window has in flight (the source device's endpoint, the LUN, the
    // window's key), each pass: main gives MoveWatcher::Watch, so the window is reconciled the
    // moment a move ends and its next move starts then, not at the next poll. Null: none.
    std::function<void(const std::string& endpoint, const std::string& lun, const std::string& key)>
        watch_move = nullptr;
    // The StorageDevice of a name from the informer's cache (main: the shared device store).
    // Used to skip the live GET of each selected device on every pass when the cache already shows
    // the desiredState the window wants (a cache that lags is caught up by its own update event,
    // which requeues the window). Null: always the live object.
    Lookup device_lookup = nullptr;
    // Where the strata_maintenance_* gauges go (the operator's ctrl::Metrics::registry());
    // null: none.
    std::shared_ptr<prometheus::Registry> registry;
  };
  using Inventory = std::function<std::shared_ptr<const InventorySnapshot>()>;

  MaintenanceWindowReconciler(kube::ApiClient* client, Lookup lookup, Inventory inventory,
                              device::ClientCache* devices, kube::EventRecorder* events,
                              Options options, kube::Clock* clock = kube::Clock::Real());

  Result<ctrl::ReconcileResult> Reconcile(const std::string& key) override;

  // Keys of the windows in `windows` that select `device` (a StorageDevice object) or move LUNs
  // to or from it, for Controller::Watches.
  static std::vector<std::string> WindowsFor(const kube::Store& windows, const kube::Json& device);

  // One LUN to move and where.
  struct Placement {
    std::string lun, from, to;
    uint64_t size_bytes = 0;
    std::string tier;
  };
  // Places every LUN of `luns` (biggest first onto the eligible target with the most free bytes
  // in the LUN's tier class, after `reserved` bytes per (device, tier)). Returns the placements,
  // or FAILED_PRECONDITION whose message names the LUNs that fit nowhere and the shortfall.
  // Pure; exposed for unit tests.
  static Result<std::vector<Placement>> Plan(
      const InventorySnapshot& snapshot, const api::v1alpha1::MaintenanceWindow& window,
      const std::set<std::string>& selected, const std::vector<Placement>& luns,
      std::map<std::pair<std::string, std::string>, uint64_t> reserved = {});

 private:
  Result<ctrl::ReconcileResult> Step(const kube::Json& object, bool deleting);
  // Sets (Publish) or removes (Unpublish) the window's gauges; no-ops without a registry.
  void Publish(const std::string& window, const kube::Json& status);
  void Unpublish(const std::string& window);

  kube::ApiClient* const client_;
  const Lookup lookup_;
  const Inventory inventory_;
  device::ClientCache* const devices_;
  kube::EventRecorder* const events_;
  const Options options_;
  kube::Clock* const clock_;
  prometheus::Family<prometheus::Gauge>* luns_draining_ = nullptr;
  prometheus::Family<prometheus::Gauge>* bytes_left_ = nullptr;
  prometheus::Family<prometheus::Gauge>* phase_ = nullptr;
};

}  // namespace strata::op
