#include "strata/controller/finalizer.h"

#include "strata/kube/conditions.h"
#include "strata/kube/errors.h"

namespace strata::ctrl {

using kube::Json;

Result<ReconcileResult> Finalize(kube::ApiClient& client, const kube::Resource& resource,
                                 const Json& object, std::string_view finalizer,
                                 const FinalizerStep& apply, const FinalizerStep& cleanup) {
  const bool deleting = object.contains("metadata") && object["metadata"].is_object() &&
                        object["metadata"].contains("deletionTimestamp");
  const bool has = kube::HasFinalizer(object, finalizer);
  const std::string what = resource.kind + " " + kube::ObjectKey(object);
  if (deleting) {
    if (!has) return ReconcileResult{};
    auto done = cleanup(object);
    if (!done.ok() || done->requeue_after) return done;
    Json update = object;
    kube::RemoveFinalizer(update, finalizer);
    auto written = client.Update(resource, update);
    if (!written.ok() && !kube::IsNotFound(written.status())) {
      return written.status().WithContext(what + ": removing finalizer " + std::string(finalizer));
    }
    return ReconcileResult{};
  }
  if (has) return apply(object);
  Json update = object;
  kube::AddFinalizer(update, finalizer);
  auto written = client.Update(resource, update);
  if (!written.ok()) {
    if (kube::IsNotFound(written.status())) return ReconcileResult{};
    return written.status().WithContext(what + ": adding finalizer " + std::string(finalizer));
  }
  return apply(*written);
}

}  // namespace strata::ctrl
