#pragma once

#include <functional>
#include <stop_token>
#include <string>

#include "strata/kube/clock.h"
#include "strata/kube/informer.h"
#include "strata/kube/workqueue.h"
#include "strata/operator/metrics.h"
#include "strata/operator/reconciler.h"

namespace strata::op {

// Informer -> work queue -> workers -> Reconciler, as controller-runtime wires it. The informer's
// handlers enqueue keys on add, delete, and on updates that change what the reconciler acts on
// (metadata.generation, labels, annotations, finalizers, deletion) -- status-only updates, which
// are mostly our own writes, are skipped. Results: OK forgets the key's backoff and requeues after
// requeue_after if set; an error requeues with per-key exponential backoff.
class Controller {
 public:
  struct Options {
    int workers = 2;
    // Checked before every reconcile: with leader election, "do we still hold the lease?". A key
    // that may not be acted on now is put back for later.
    std::function<bool()> may_act = [] { return true; };
    kube::WorkQueue::Options queue;
  };

  // Adds its handlers to `informer`. REQUIRES: the informer is not started yet.
  Controller(std::string name, kube::Informer* informer, Reconciler* reconciler, Metrics* metrics,
             Options options, kube::Clock* clock = kube::Clock::Real());

  // Enqueues everything in the informer's store, runs the workers until `stop`, then drains.
  void Run(std::stop_token stop);

  const std::string& name() const { return name_; }
  kube::WorkQueue& queue() { return queue_; }

 private:
  void Work();

  const std::string name_;
  kube::Informer* const informer_;
  Reconciler* const reconciler_;
  Metrics* const metrics_;
  const Options options_;
  kube::Clock* const clock_;
  kube::WorkQueue queue_;
};

}  // namespace strata::op
