#pragma once

#include <functional>
#include <string_view>

#include "strata/common/result.h"
#include "strata/controller/reconciler.h"
#include "strata/kube/client.h"

namespace strata::ctrl {

// What to do with an object: make the world match it, or undo what we did for it.
using FinalizerStep = std::function<Result<ReconcileResult>(const kube::Json& object)>;

// The finalizer flow of kube-runtime's `finalizer()` and controller-runtime's finalizer helpers:
// - a live object without `finalizer` gets it first (an Update conditional on its
//   resourceVersion), then `apply` runs on the updated object;
// - a live object with it: `apply`;
// - an object being deleted with it: `cleanup`; when that succeeds (OK without requeue_after)
//   the finalizer is removed, and the API server completes the deletion; an error or a requeue
//   leaves the finalizer for the next attempt;
// - an object being deleted without it: nothing (our cleanup ran already, or never had to).
// A conflict on either write is returned as ABORTED (the key is retried on the fresh object);
// 404 is done.
Result<ReconcileResult> Finalize(kube::ApiClient& client, const kube::Resource& resource,
                                 const kube::Json& object, std::string_view finalizer,
                                 const FinalizerStep& apply, const FinalizerStep& cleanup);

}  // namespace strata::ctrl
