#pragma once

#include <string>

#include "strata/controller/reconciler.h"
#include "strata/kube/store.h"
#include "strata/vnc/node_store.h"

namespace strata::netd {

// Pods of this node -> workload keys in the node-local store (NodeStore::PutPod, the rule of
// vnc::WorkloadOfPod: vm.kubevirt.io/name or kubevirt.io/domain, then strata.io/workload, then
// the pod's name), so the strata-vnc CNI plugin knows a virt-launcher pod's VM or a pod's
// strata.io/workload label without the apiserver (the CNI gets no labels). Reconciled on every
// Pod change of the node's Pod cache (labels included); a pod gone from the cache loses its entry
// (pods deleted while the agent was down: VirtualNetworkConfigReconciler::SyncStore).
// Thread-safe (stateless; the store's files have one writer, this agent).
class PodIndexReconciler : public ctrl::Reconciler {
 public:
  PodIndexReconciler(const kube::Store* pods, const vnc::NodeStore* store)
      : pods_(pods), store_(store) {}
  Result<ctrl::ReconcileResult> Reconcile(const std::string& key) override;

 private:
  const kube::Store* const pods_;
  const vnc::NodeStore* const store_;
};

}  // namespace strata::netd
