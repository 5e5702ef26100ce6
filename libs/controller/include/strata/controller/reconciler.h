#pragma once

#include <optional>
#include <string>

#include "strata/common/result.h"
#include "strata/kube/clock.h"

namespace strata::ctrl {

struct ReconcileResult {
  // Reconcile again after this long even if nothing changes (observing an external system).
  std::optional<kube::Duration> requeue_after;
};

// One reconciler per kind: read desired state, observe actual, act, write status. Called with an
// object key; never twice at once for one key (the work queue guarantees it). An error requeues
// the key with exponential backoff.
class Reconciler {
 public:
  virtual ~Reconciler() = default;
  virtual Result<ReconcileResult> Reconcile(const std::string& key) = 0;
};

}  // namespace strata::ctrl
