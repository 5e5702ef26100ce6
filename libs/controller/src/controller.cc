#include "strata/controller/controller.h"

#include <spdlog/spdlog.h>

#include <set>
#include <thread>

namespace strata::ctrl {
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
// other failure, and the worker, the controller and the process keep running.
Result<ReconcileResult> GuardedReconcile(Reconciler* reconciler, const std::string& key,
                                         bool* threw) {
  try {
    return reconciler->Reconcile(key);
  } catch (const std::exception& e) {
    *threw = true;
    return InternalError("reconcile threw: " + std::string(e.what()));
  } catch (...) {
    *threw = true;
    return InternalError("reconcile threw a non-standard exception");
  }
}

}  // namespace

std::vector<std::string> OwnerKeys(const Json& object, const kube::Resource& owner_kind) {
  std::vector<std::string> keys;
  if (!object.is_object() || !object.contains("metadata") || !object["metadata"].is_object()) {
    return keys;
  }
  const Json& meta = object["metadata"];
  auto refs = meta.find("ownerReferences");
  if (refs == meta.end() || !refs->is_array()) return keys;
  const std::string ns = meta.value("namespace", "");
  for (const Json& ref : *refs) {
    if (!ref.is_object() || ref.value("kind", "") != owner_kind.kind) continue;
    const std::string api_version = ref.value("apiVersion", "");
    if (api_version.substr(0, api_version.find('/')) !=
        (owner_kind.group.empty() ? api_version : owner_kind.group)) {
      continue;
    }
    const std::string name = ref.value("name", "");
    if (name.empty()) continue;
    keys.push_back(owner_kind.namespaced ? ns + "/" + name : name);
  }
  return keys;
}

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
      [this](const Json& o) { Enqueue(o); },
      [this](const Json& old_object, const Json& o) {
        if (Trigger(old_object) != Trigger(o)) Enqueue(o);
      },
      // A deleted object is reconciled whatever its labels: its cleanup is ours.
      [this](const Json& o) { queue_.Add(kube::ObjectKey(o)); },
  });
}

void Controller::Enqueue(const Json& o) {
  if (!options_.label_selector.MatchesObject(o)) return;
  queue_.Add(kube::ObjectKey(o));
}

Controller& Controller::Watches(kube::Informer* informer, Mapper mapper) {
  auto add = [this, mapper](const Json& o) {
    for (const auto& key : mapper(o)) queue_.Add(key);
  };
  informer->AddHandlers({
      add,
      [this, mapper](const Json& old_object, const Json& o) {
        std::set<std::string> keys;
        for (auto& k : mapper(old_object)) keys.insert(std::move(k));
        for (auto& k : mapper(o)) keys.insert(std::move(k));
        for (const auto& k : keys) queue_.Add(k);
      },
      add,
  });
  return *this;
}

Controller& Controller::Owns(kube::Informer* informer) {
  const kube::Resource owner = informer_->resource();
  return Watches(informer, [owner](const Json& o) { return OwnerKeys(o, owner); });
}

void Controller::Run(std::stop_token stop) {
  // Objects listed before we started leading were not enqueued by us: take them all once.
  for (const auto& o : informer_->store().List()) Enqueue(o);
  std::stop_callback shutdown(stop, [this] { queue_.ShutDown(); });
  spdlog::info("controller {}: {} workers started", name_, options_.workers);
  std::vector<std::jthread> workers;
  for (int i = 0; i < options_.workers; ++i) workers.emplace_back([this] { Work(); });
  workers.clear();  // joins after ShutDown
  spdlog::info("controller {}: stopped", name_);
}

void Controller::ReportThrow(const std::string& key, const Status& error) {
  if (!options_.events) return;
  {
    std::lock_guard g(mu_);
    std::string& last = reported_[key];
    if (last == error.message()) return;  // once per distinct error, not per retry
    last = error.message();
  }
  if (auto object = informer_->store().Get(key)) {
    options_.events->Record(*object, kube::EventType::kWarning, "ReconcileError", error.message());
  }
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
    // A key from a watched kind's mapper or a requeue may name an object outside our shard.
    if (!options_.label_selector.empty()) {
      auto object = informer_->store().Get(*key);
      const bool deleting = object && object->is_object() && object->contains("metadata") &&
                            (*object)["metadata"].is_object() &&
                            (*object)["metadata"].contains("deletionTimestamp");
      if (object && !deleting && !options_.label_selector.MatchesObject(*object)) {
        queue_.Forget(*key);
        queue_.Done(*key);
        continue;
      }
    }
    const kube::TimePoint start = clock_->Now();
    bool threw = false;
    auto result = GuardedReconcile(reconciler_, *key, &threw);
    const double seconds = std::chrono::duration<double>(clock_->Now() - start).count();
    std::string outcome;
    if (!result.ok()) {
      outcome = "error";
      spdlog::warn("controller {}: reconcile {}: {} (retry {})", name_, *key,
                   result.status().ToString(), queue_.NumRequeues(*key) + 1);
      if (threw) ReportThrow(*key, result.status());
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

}  // namespace strata::ctrl
