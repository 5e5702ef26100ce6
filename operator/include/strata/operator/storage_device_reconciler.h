#pragma once

#include <functional>
#include <optional>
#include <string>

#include "strata/controller/reconciler.h"
#include "strata/kube/client.h"
#include "strata/kube/clock.h"
#include "strata/kube/events.h"
#include "strata/operator/api/v1alpha1/storage_device.h"
#include "strata/operator/device_client.h"

namespace strata::op {

using ctrl::Reconciler;
using ctrl::ReconcileResult;

// StorageDevice: asks the device's management endpoint (spec.endpoint) for its status, puts the
// device into spec.desiredState (Online or Maintenance) when it is in the other one, and reflects
// it into .status: phase, capacity, used bytes, dedup ratio, LUN count, identity, tiers, and the
// conditions Ready, Degraded and Unreachable. Records Events when a condition or the phase
// changes. Requeues every `resync` so the status follows the device as it changes, disappears and
// returns. Writes status only when it changed. The object is read through the typed API
// (api::v1alpha1::StorageDeviceFromJson): one that does not parse gets Ready=False with reason
// InvalidSpec and the error naming the field, and a Warning Event, once per generation and error;
// it is not retried (an edit of the object triggers the next reconcile).
// Thread-safe (no per-call state beyond what its collaborators guard).
class StorageDeviceReconciler : public Reconciler {
 public:
  struct Options {
    kube::Duration resync = std::chrono::seconds(5);
    std::chrono::milliseconds device_timeout{2000};
  };
  // `lookup` reads the informer's cache by key.
  using Lookup = std::function<std::optional<kube::Json>(const std::string& key)>;

  StorageDeviceReconciler(kube::ApiClient* client, Lookup lookup, DeviceClient* devices,
                          kube::EventRecorder* events, Options options,
                          kube::Clock* clock = kube::Clock::Real());

  Result<ReconcileResult> Reconcile(const std::string& key) override;

  // The status `device` should have given what the device reported (or the error reaching it).
  // `old_status` is the status as stored (fields this reconciler does not own are kept).
  // Pure; exposed for unit tests.
  static kube::Json DesiredStatus(const api::v1alpha1::StorageDevice& device,
                                  const kube::Json& old_status,
                                  const Result<storage::v1::DeviceStatus>& observed,
                                  kube::WallTime now);

 private:
  void RecordTransitions(const kube::Json& object, const kube::Json& old_status,
                         const kube::Json& new_status);

  kube::ApiClient* const client_;
  const Lookup lookup_;
  DeviceClient* const devices_;
  kube::EventRecorder* const events_;
  const Options options_;
  kube::Clock* const clock_;
};

}  // namespace strata::op
