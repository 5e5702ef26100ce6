#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "strata/controller/reconciler.h"
#include "strata/device/client.h"
#include "strata/kube/client.h"
#include "strata/kube/clock.h"
#include "strata/kube/events.h"
#include "strata/kube/store.h"
#include "strata/operator/api/v1alpha1/dedup_policy.h"
#include "strata/operator/volume_inventory.h"

namespace strata::op {

// DedupPolicy: turns inline de-duplication on (mode Inline) or off (mode Disabled) for the
// volumes the policy selects, and off again where it does not pay.
//
// - Selected volumes: PVCs of the policy's namespace whose labels match spec.selector, resolved
//   to their LUN through the inventory's by_pvc, whose LUN's tier is in spec.tiers (empty: all).
// - Inline: SetLunDedup(on, fold_existing): new writes de-duplicate at once, blocks already
//   written are folded by the device in the background (throttled). The time dedup went on is
//   kept in status.volumes[].since (the status is the reconciler's memory: restart-safe).
// - minSavingsRatio/evaluationWindow: a volume whose dedup has been on for at least the window
//   and whose logical/unique ratio is below the minimum gets dedup turned off, state
//   BelowMinSavings with the time and the policy generation; it stays off until the generation
//   changes (an edit of the policy re-evaluates it).
// - Two policies selecting one volume: the older one (creationTimestamp, then name) governs it;
//   the younger lists it with state Conflict and has condition Conflict=True naming the other.
// - A device running with dedup disabled: the volume's entry says DeviceDedupDisabled, Ready is
//   False naming the device, and the device is not asked again (no retry storm: the next
//   inventory sweep re-evaluates).
// - Status: phase, matchedVolumes, logical/unique/saved bytes and the ratio of the governed
//   volumes, one entry per volume and totals per device; conditions Ready, Progressing, Conflict.
//   Events when dedup is turned on or off, saying why.
// - A policy that does not parse: ReportInvalidObject (phase Error), not retried.
// - Deleting a policy leaves the volumes as they are (dedup is a property of the LUN's data; a
//   policy with mode Disabled turns it off explicitly).
// Reconciled on changes of the policy, of PVCs in its namespace, of StorageDevices, and after
// every inventory sweep. Thread-safe (stateless between calls; its collaborators are).
class DedupPolicyReconciler : public ctrl::Reconciler {
 public:
  using SnapshotFn = std::function<std::shared_ptr<const InventorySnapshot>()>;

  // `policies` and `pvcs`: the shared informers' stores. `snapshot`: the inventory's last sweep.
  DedupPolicyReconciler(kube::ApiClient* client, const kube::Store* policies,
                        const kube::Store* pvcs, SnapshotFn snapshot, device::ClientCache* devices,
                        kube::EventRecorder* events, kube::Clock* clock = kube::Clock::Real());

  Result<ctrl::ReconcileResult> Reconcile(const std::string& key) override;

  // Keys of the policies in `ns` (what a PVC change maps to), and of every policy.
  std::vector<std::string> PolicyKeysIn(const std::string& ns) const;
  std::vector<std::string> AllPolicyKeys() const;

 private:
  kube::ApiClient* const client_;
  const kube::Store* const policies_;
  const kube::Store* const pvcs_;
  const SnapshotFn snapshot_;
  device::ClientCache* const devices_;
  kube::EventRecorder* const events_;
  kube::Clock* const clock_;
};

}  // namespace strata::op
