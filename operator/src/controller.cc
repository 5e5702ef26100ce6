#include "strata/operator/controller.h"

#include <spdlog/spdlog.h>

#include <thread>
#include <vector>

namespace strata::op {
namespace {

using kube::Json;

// The parts of an object whose change is worth a reconcile.
Json Trigger(const Json& o) {
  const Json& m = o.contains("metadata") ? o["metadata"] : Json::object();
  return Json{{"generation", m.value("generation", Json())},
              {"labels", m.value("labels", Json())},
              {"annotations", m.value("annotations", Json())},
              {"finalizers", m.value("finalizers", Json())},
              {"deletionTimestamp", m.value("deletionTimestamp", Json())}};
}

// Reconcile, with any exception a reconciler lets escape (a JSON accessor on a malformed object,
// a library's throw) turned into an INTERNAL error: that key is retried with backoff like any
// other failure, and the worker, the controller and the operator keep running.
Result<ReconcileResult> GuardedReconcile(Reconciler* reconciler, const std::string& key) {
  try {
    return reconciler->Reconcile(key);
  } catch (const std::exception& e) {
    return InternalError("reconcile threw: " + std::string(e.what()));
  } catch (...) {
    return InternalError("reconcile threw a non-standard exception");
  }
}

}  // namespace

Controller::Controller(std::string name, kube::Informer* informer, Reconciler* reconciler,
                       Metrics* metrics, Options options, kube::Clock* clock)
    : name_(std::move(name)),
      informer_(informer),
      reconciler_(reconciler),
      metrics_(metrics),
      options_(std::move(options)),
      clock_(clock),
      queue_(options_.queue, clock) {
  informer_->AddHandlers({
      [this](const Json& o) { queue_.Add(kube::ObjectKey(o)); },
      [this](const Json& old_object, const Json& o) {
        if (Trigger(old_object) != Trigger(o)) queue_.Add(kube::ObjectKey(o));
      },
      [this](const Json& o) { queue_.Add(kube::ObjectKey(o)); },
  });
}

void Controller::Run(std::stop_token stop) {
  // Objects listed before we started leading were not enqueued by us: take them all once.
  for (const auto& key : informer_->store().Keys()) queue_.Add(key);
  std::stop_callback shutdown(stop, [this] { queue_.ShutDown(); });
  spdlog::info("controller {}: {} workers started", name_, options_.workers);
  std::vector<std::jthread> workers;
  for (int i = 0; i < options_.workers; ++i) workers.emplace_back([this] { Work(); });
  workers.clear();  // joins after ShutDown
  spdlog::info("controller {}: stopped", name_);
}

void Controller::Work() {
  while (auto key = queue_.Get()) {
    if (metrics_)
      metrics_->SetQueueDepth(name_, static_cast<double>(queue_.Len() + queue_.DelayedLen()));
    if (!options_.may_act()) {
      // Not (or no longer surely) the leader: leave the key for whoever is.
      queue_.Done(*key);
      queue_.AddAfter(*key, std::chrono::seconds(1));
      continue;
    }
    const kube::TimePoint start = clock_->Now();
    auto result = GuardedReconcile(reconciler_, *key);
    const double seconds = std::chrono::duration<double>(clock_->Now() - start).count();
    std::string outcome;
    if (!result.ok()) {
      outcome = "error";
      spdlog::warn("controller {}: reconcile {}: {} (retry {})", name_, *key,
                   result.status().ToString(), queue_.NumRequeues(*key) + 1);
      queue_.AddRateLimited(*key);
    } else {
      queue_.Forget(*key);
      outcome = result->requeue_after ? "requeue" : "success";
      if (result->requeue_after) queue_.AddAfter(*key, *result->requeue_after);
    }
    spdlog::debug("controller {}: reconciled {} ({}, {:.1f} ms)", name_, *key, outcome,
                  seconds * 1000);
    if (metrics_) metrics_->ObserveReconcile(name_, outcome, seconds);
    queue_.Done(*key);
  }
}

}  // namespace strata::op
