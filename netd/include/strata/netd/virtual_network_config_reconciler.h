#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <stop_token>
#include <string>
#include <vector>

#include "strata/controller/reconciler.h"
#include "strata/kube/client.h"
#include "strata/kube/clock.h"
#include "strata/kube/events.h"
#include "strata/kube/store.h"
#include "strata/vnc/node_store.h"

namespace strata::netd {

// VirtualNetworkConfig (seed 13.9) on one node: replicates every VirtualNetworkConfig of the
// cluster (all namespaces) into the node-local store (libs/vnc), where the strata-vnc CNI plugin
// reads it without the apiserver, and reports in status where the configuration is applied.
//
// - Replication: one record per workload key (namespace, kind, name). The record of a workload is
//   recomputed from the informer's cache on every change of an object naming it: the oldest valid
//   object (creationTimestamp, then name) governs; a younger one for the same workload gets
//   Ready=False WorkloadConflict naming the governing one. A workload no valid object names loses
//   its record (the object was deleted, or its spec.workload changed). NodeStore::Put refuses a
//   record older than the stored one (resourceVersion), so a late reconcile never rolls back.
// - An object that does not decode or makes no sense (an address that is not one, a gateway of
//   the other family, bond settings on an sriov interface): Ready=False InvalidSpec naming the
//   field, phase Error, a Warning Event; its workload keeps the record of the last valid version
//   (a bad edit does not take a running VM's network away), or gets none if there never was one.
// - Sync (SyncStore, run once the caches synced and then every period): the store equals the
//   cluster's set: records whose object is gone (deleted while the agent was down) are removed;
//   pod entries of pods no longer on this node are removed; objects whose applied records changed
//   (the CNI ran ADD or DEL) are requeued so their status follows.
// - Status: each agent owns its node's entry of status.nodes (pod, interfaces with MAC, applied
//   time, resourceVersion), built from the CNI's applied records for this object on this node.
//   Agents never overwrite each other's entries: every write is a read-modify-write of the whole
//   list conditional on resourceVersion (WriteStatus, re-read and recomputed on 409). phase
//   (Applied when any node has it, else Pending), node and lastAppliedTime (the newest entry) and
//   status.interfaces are derived from the list the same way by every agent, so they do not
//   flap. Ready=True Replicated when valid and governing.
// Thread-safe: Reconcile for different keys runs concurrently (the work queue never runs one key
// twice at once); the store serializes its writes.
class VirtualNetworkConfigReconciler : public ctrl::Reconciler {
 public:
  // `configs`: the shared VirtualNetworkConfig informer's store (all namespaces).
  VirtualNetworkConfigReconciler(kube::ApiClient* client, const kube::Store* configs,
                                 const vnc::NodeStore* store, std::string node,
                                 kube::EventRecorder* events,
                                 kube::Clock* clock = kube::Clock::Real());

  Result<ctrl::ReconcileResult> Reconcile(const std::string& key) override;

  // One pass of the sync above. `requeue` receives the keys ("NS/NAME") of objects whose applied
  // records changed since the last pass. `pods`: the node's Pod cache, for stale pod entries
  // (null: pod entries are left alone).
  void SyncStore(const kube::Store* pods, const std::function<void(const std::string&)>& requeue);
  // SyncStore now, then every `period` until `stop`.
  void RunSync(std::stop_token stop, const kube::Store* pods,
               const std::function<void(const std::string&)>& requeue,
               std::chrono::milliseconds period);

 private:
  struct Candidate {
    std::string key;  // NS/NAME of the object
    vnc::WorkloadConfig config;
    std::string created;  // creationTimestamp
  };
  // The valid objects naming `workload`, oldest first.
  std::vector<Candidate> CandidatesFor(const vnc::WorkloadKey& workload) const;
  // Writes (or removes) the record of `workload` from the cache. Returns the governing object's
  // key ("" when none).
  Result<std::string> ReplicateWorkload(const vnc::WorkloadKey& workload);
  Status WriteStatus(const kube::Json& object, bool governing, const std::string& governor);

  kube::ApiClient* const client_;
  const kube::Store* const configs_;
  const vnc::NodeStore* const store_;
  const std::string node_;
  kube::EventRecorder* const events_;
  kube::Clock* const clock_;

  std::mutex mu_;
  // Per object uid: a signature of its applied records on this node at the last sync.
  std::map<std::string, std::string> applied_signature_;  // guarded by mu_
};

}  // namespace strata::netd
