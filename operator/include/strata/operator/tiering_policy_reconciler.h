#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "strata/controller/reconciler.h"
#include "strata/device/client.h"
#include "strata/kube/client.h"
#include "strata/kube/clock.h"
#include "strata/kube/events.h"
#include "strata/kube/labels.h"
#include "strata/operator/api/v1alpha1/tiering_policy.h"
#include "strata/operator/volume_inventory.h"

namespace strata::op {

// metav1.LabelSelector (typed) -> the evaluator. INVALID_ARGUMENT naming `field` when an
// expression makes no sense (In without values, Exists with values).
Result<kube::LabelSelector> ToKubeSelector(const api::v1alpha1::LabelSelector& selector,
                                           std::string_view field);

// TieringPolicy (issue #10): moves the volumes a policy selects between media tiers, and with
// scope CrossDevice between devices, as their load changes.
//
// Each reconcile reads the latest VolumeInventory snapshot (no device calls besides MigrateLun):
// - selected volumes: the PVCs of the policy's namespace that spec.selector matches (shared PVC
//   informer), resolved to their LUN through the snapshot's by_pvc;
// - per volume and rule, whether the rule's condition holds, with hysteresis: it starts to hold
//   when the metric crosses the threshold and stops only once the metric is back beyond a 10%
//   band around it (Above: < 0.9 x threshold; Below: > 1.1 x threshold), so a metric hovering
//   at the threshold neither resets nor re-arms the timer on every sample;
// - the first rule (in spec order) whose condition has held for sustainedFor acts, unless the
//   volume is on its targetTier already, moved less than `cooldown` ago (status.volumes[].lastMove,
//   so a restart keeps it), is moving, or its device has maxConcurrentMigrations moves in flight
//   (RUNNING in the snapshot plus those started since);
// - the move: MigrateLun to the target tier on the LUN's device when that tier has room for the
//   LUN; else, with scope CrossDevice, to another device's tier (a live move; the old device
//   proxies I/O until clients switch): devices that accept volumes, match targetDeviceSelector,
//   are in allowedRegions/allowedJurisdictions (empty: any) and have room; most free bytes on the
//   tier wins, then the name. A device the audit lists exclude is never a target: it is named in
//   status.refusedDevices and a Warning Event "DeviceRefused", once per device and generation.
// Every move is a Normal Event "MoveStarted" (and "VolumeMoved" when a later snapshot shows it
// done, "MoveFailed" when the device reports it failed), status.lastMigration and
// status.history (the last 20). A rule whose targetTier no device the policy may use offers is
// skipped: Ready=False, reason TargetTierUnavailable naming the rule and tier, and a Warning
// Event. A policy that does not parse: Ready=False InvalidSpec, phase Error, no retry.
//
// Sustain timers live in memory (per policy, volume and rule, on `clock`): an operator restart
// restarts them. Moves in flight are the device's truth (RUNNING), so a restart never starts one
// twice. Status is written only when it changed; lastEvaluationTime is refreshed with any other
// change and at least every minute. Returns requeue_after = `requeue` (the inventory period).
// Thread-safe: the per-policy memory is guarded by one mutex (reconciles of one key never run
// at once; different keys touch different entries).
class TieringPolicyReconciler : public ctrl::Reconciler {
 public:
  struct Options {
    kube::Duration requeue = std::chrono::seconds(5);
  };
  // The policy by key, from the informer's cache.
  using Lookup = std::function<std::optional<kube::Json>(const std::string& key)>;
  // Every PVC the cache holds (filtered by namespace here).
  using ListPvcs = std::function<std::vector<kube::Json>()>;
  using SnapshotFn = std::function<std::shared_ptr<const InventorySnapshot>()>;

  TieringPolicyReconciler(kube::ApiClient* client, Lookup lookup, ListPvcs pvcs,
                          SnapshotFn snapshot, device::ClientCache* devices,
                          kube::EventRecorder* events, Options options,
                          kube::Clock* clock = kube::Clock::Real());

  ctrl::ReconcileResult Requeue() const { return {options_.requeue}; }
  Result<ctrl::ReconcileResult> Reconcile(const std::string& key) override;

 private:
  // One rule's condition on one volume.
  struct Sustain {
    bool holding = false;
    kube::TimePoint since{};
  };
  // A move this process started, until a snapshot shows it finished.
  struct Started {
    api::v1alpha1::TieringMigration record;
    kube::WallTime at{};
    std::string lun;
  };
  struct PolicyMemory {
    int64_t generation = -1;
    std::map<std::pair<std::string, std::string>, Sustain> sustain;  // (pvc, rule)
    std::map<std::string, Started> started;                          // by pvc
    std::map<std::string, kube::WallTime> last_move;                 // by pvc
    std::vector<api::v1alpha1::TieringMigration> unrecorded;  // moves not yet in status.history
    std::set<std::string> refused_reported;                   // devices, this generation
    std::set<std::string> unavailable_reported;               // rules, this generation
  };

  kube::ApiClient* const client_;
  const Lookup lookup_;
  const ListPvcs pvcs_;
  const SnapshotFn snapshot_;
  device::ClientCache* const devices_;
  kube::EventRecorder* const events_;
  const Options options_;
  kube::Clock* const clock_;
  std::mutex mu_;
  std::map<std::string, PolicyMemory> memory_;  // by policy key; guarded by mu_
};

}  // namespace strata::op
