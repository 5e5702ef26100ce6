#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "strata/common/status.h"
#include "strata/controller/controller.h"
#include "strata/controller/metrics.h"
#include "strata/kube/client.h"
#include "strata/kube/events.h"
#include "strata/kube/informer.h"
#include "strata/kube/labels.h"
#include "strata/kube/leader_election.h"

namespace strata::ctrl {

// Runs a process's controllers, as controller-runtime's Manager and kube-runtime's shared
// reflectors do:
// - one informer per resource, shared by every controller and reconciler that asks for it (one
//   LIST+WATCH however many use it); namespaced kinds are watched in `watch_namespace` only when
//   it is set;
// - caches start at Run in every replica (a standby that takes over starts warm); the
//   controllers start once every cache has synced and, with leader election, only while this
//   replica holds the Lease;
// - readiness (Ready(): every cache synced) and metrics for every controller and informer.
// Typical use (see operator/src/main.cc):
//   Manager mgr(client, options, &metrics);
//   auto* pvcs = mgr.Informer(kube::resources::PersistentVolumeClaims());
//   mgr.AddController("tieringpolicy", resources::TieringPolicies(), &reconciler)
//      .Watches(pvcs, mapper);
//   mgr.Run(stop);
// Setup (Informer, AddController, Watches) happens before Run, on one thread; after that the
// Manager is thread-safe.
class Manager {
 public:
  struct Options {
    // "" = all namespaces.
    std::string watch_namespace;
    // Only primary objects with these labels are reconciled (sharding by label).
    kube::LabelSelector label_selector;
    int workers = 2;
    kube::WorkQueue::Options queue;
    // Set: controllers run only while holding this Lease. Unset (a per-node agent such as
    // strata-netd, where every replica acts on its own node): controllers run at once.
    std::optional<kube::LeaderElectionConfig> leader_election;
    // Server-side field selectors of the shared informers, by kind: {"Pod", "spec.nodeName=A"}
    // makes the Pod cache hold only that node's pods (what a per-node agent watches).
    std::map<std::string, std::string> field_selectors;
    kube::EventRecorder* events = nullptr;
  };

  Manager(kube::ApiClient* client, Options options, Metrics* metrics,
          kube::Clock* clock = kube::Clock::Real());
  ~Manager();
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  // The shared informer of `resource`, created on first use. REQUIRES: before Run().
  kube::Informer* Informer(const kube::Resource& resource);
  // A controller for `primary`, reconciled by `reconciler` with `workers` workers (0: the
  // default). Chain Watches()/Owns() on the result. REQUIRES: before Run().
  Controller& AddController(std::string name, const kube::Resource& primary, Reconciler* reconciler,
                            int workers = 0);

  // A task that runs beside the controllers, as controller-runtime's Runnable with
  // NeedLeaderElection: started once the caches synced (and, with leader election, while
  // leading), stopped with them through `stop`. E.g. a poller of external state.
  // REQUIRES: before Run().
  void AddRunnable(std::string name, std::function<void(std::stop_token stop)> run);

  // Every informer has listed once.
  bool Ready() const;
  // True without leader election; else whether this replica holds the Lease now.
  bool IsLeader() const;

  // Starts the informers, then runs the controllers (while leading) until `stop`. Returns OK
  // on stop; ABORTED when leadership was lost (the process should exit and restart as a fresh
  // candidate, as controller-runtime does: work begun as leader must not continue).
  Status Run(std::stop_token stop);

  kube::ApiClient* client() const { return client_; }
  const Options& options() const { return options_; }

 private:
  void RunControllers(std::stop_token stop);
  void SampleMetrics(std::stop_token stop);

  kube::ApiClient* const client_;
  const Options options_;
  Metrics* const metrics_;
  kube::Clock* const clock_;
  std::map<std::string, std::unique_ptr<kube::Informer>> informers_;  // by API path
  std::vector<std::unique_ptr<Controller>> controllers_;
  std::vector<std::pair<std::string, std::function<void(std::stop_token)>>> runnables_;
  std::unique_ptr<kube::LeaderElector> elector_;
};

}  // namespace strata::ctrl
