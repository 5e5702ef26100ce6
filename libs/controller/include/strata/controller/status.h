#pragma once

#include <functional>

#include "strata/common/result.h"
#include "strata/kube/client.h"
#include "strata/kube/clock.h"
#include "strata/kube/events.h"

namespace strata::ctrl {

// What a status write did.
struct StatusWrite {
  bool changed = false;  // a write was made
  bool gone = false;     // the object no longer exists (404): the reconcile is done
  kube::Json object;     // the object as written (or as given, when nothing changed)
  // The status the write replaced (as read from the server when a conflict forced a re-read):
  // transitions and their Events are judged against it, not against a cache that may lag.
  kube::Json replaced;
};

// The status an object should have, computed from the object (its spec and current status) and
// what the reconciler observed; pure, so it can be recomputed on a fresher copy.
using DesiredStatusFn = std::function<Result<kube::Json>(const kube::Json& object)>;

// Compare, UpdateStatus, retry on 409, done on 404: computes `desired(object)`, writes it to the
// status subresource only when it differs from object.status (no write, no churn on a resync),
// conditional on the object's resourceVersion; on a conflict it re-reads the object and
// recomputes, up to `attempts` times. A non-OK `desired` aborts with that Status.
Result<StatusWrite> WriteStatus(kube::ApiClient& client, const kube::Resource& resource,
                                kube::Json object, const DesiredStatusFn& desired,
                                int attempts = 5);

// An object that does not parse (or makes no sense) gets Ready=False with `reason` and the error
// naming the field, once per generation and error, and one Warning Event with the same reason
// (and status.phase = `error_phase` when that is not empty, for kinds whose phase has "Error");
// never a retry (only an edit fixes it, and an edit triggers a reconcile). Objects whose
// metadata cannot be read are logged and skipped. Returns the write's error (retried) or OK.
Status ReportInvalidObject(kube::ApiClient& client, kube::EventRecorder& events,
                           const kube::Resource& resource, kube::Json object, const Status& error,
                           kube::WallTime now, const std::string& reason = "InvalidSpec",
                           const std::string& error_phase = "");

}  // namespace strata::ctrl
