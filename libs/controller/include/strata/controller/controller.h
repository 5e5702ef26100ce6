#pragma once

#include <functional>
#include <mutex>
#include <stop_token>
#include <string>
#include <vector>

#include "strata/controller/metrics.h"
#include "strata/controller/reconciler.h"
#include "strata/kube/clock.h"
#include "strata/kube/events.h"
#include "strata/kube/informer.h"
#include "strata/kube/labels.h"
#include "strata/kube/workqueue.h"

namespace strata::ctrl {

// Maps a changed object of a watched kind to the keys ("NAMESPACE/NAME" or "NAME") of the primary
// objects that must be reconciled because of it: a policy selecting a PVC, a window selecting a
// StorageDevice. Runs on the informer's thread: no blocking calls (read caches only).
using Mapper = std::function<std::vector<std::string>(const kube::Json& object)>;

// Informer -> work queue -> workers -> Reconciler, as controller-runtime wires it (kube-runtime's
// Controller with `owns` and `watches`). The primary informer's handlers enqueue keys on add,
// delete, and on updates that change what the reconciler acts on (metadata.generation, labels,
// annotations, finalizers, deletion) -- status-only updates, which are mostly our own writes, are
// skipped. Watched kinds enqueue what their Mapper says on every change (their status counts: a
// device's free space is status). Results: OK forgets the key's backoff and requeues after
// requeue_after if set; an error requeues with per-key exponential backoff. A reconciler that
// throws is an INTERNAL error for that key (retried with backoff, and a Warning Event
// "ReconcileError" on the object), never a stopped worker. Normally built by Manager.
class Controller {
 public:
  struct Options {
    int workers = 2;
    // Checked before every reconcile: with leader election, "do we still hold the lease?". A key
    // that may not be acted on now is put back for later.
    std::function<bool()> may_act = [] { return true; };
    kube::WorkQueue::Options queue;
    // Only primary objects whose labels match are reconciled (sharding by label).
    kube::LabelSelector label_selector;
    // Where "ReconcileError" Events go; none when null.
    kube::EventRecorder* events = nullptr;
  };

  // Adds its handlers to `primary`. REQUIRES: the informer is not started yet.
  Controller(std::string name, kube::Informer* primary, Reconciler* reconciler, Metrics* metrics,
             Options options, kube::Clock* clock = kube::Clock::Real());

  // Reconciles the keys `mapper` gives for every change of an object of `informer`'s kind; on an
  // update both the old and the new object are mapped (an object leaving a selection matters).
  // REQUIRES: before the informers start and Run().
  Controller& Watches(kube::Informer* informer, Mapper mapper);
  // Objects of `informer`'s kind whose metadata.ownerReferences name an object of the primary
  // kind requeue that owner (namespaced owners in the owned object's namespace).
  Controller& Owns(kube::Informer* informer);

  // Enqueues everything in the primary informer's store, runs the workers until `stop`, then
  // drains.
  void Run(std::stop_token stop);

  const std::string& name() const { return name_; }
  kube::WorkQueue& queue() { return queue_; }
  const kube::Informer& primary() const { return *informer_; }

 private:
  void Work();
  void Enqueue(const kube::Json& object);
  void ReportThrow(const std::string& key, const Status& error);

  const std::string name_;
  kube::Informer* const informer_;
  Reconciler* const reconciler_;
  Metrics* const metrics_;
  const Options options_;
  kube::Clock* const clock_;
  kube::WorkQueue queue_;
  std::mutex mu_;
  std::map<std::string, std::string> reported_;  // key -> last error Evented; guarded by mu_
};

// The owner key of `object` when an ownerReference names kind `owner_kind`, for Owns().
std::vector<std::string> OwnerKeys(const kube::Json& object, const kube::Resource& owner_kind);

}  // namespace strata::ctrl
