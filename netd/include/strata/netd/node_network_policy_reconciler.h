#pragma once

// NodeNetworkPolicy on one node (strata-netd): the policies whose nodeSelector matches this
// node's labels are applied through UplinkAgent; each selected node reports its own entry in
// status.nodes (keyed by nodeName): bond/bridge present, link state per uplink, active slave,
// failovers, and conditions
//   Ready     True/Applied; False/InvalidSpec (message names the field), Conflict, ApplyFailed
//   Degraded  True/UplinkDown when an uplink is down or the bond has no active slave
// A policy that stops selecting the node, or is deleted, is torn down (only what it created).
//
// Conflict rule: a node takes ONE NodeNetworkPolicy. When two or more select it, none of them is
// changed on it (what is applied stays as it is: no teardown of a working bond) and each gets
// Ready=False/Conflict naming the others, until the labels or selectors leave one. NMState does
// not merge two policies either; unlike NMState, nothing is applied in an order-dependent way.
//
// Thread-safety: Reconcile is called by the controller's workers (never twice at once for one
// key); the conflict check reads the shared informer stores; UplinkAgent is thread-safe.

#include <string>

#include "strata/controller/reconciler.h"
#include "strata/kube/client.h"
#include "strata/kube/clock.h"
#include "strata/kube/store.h"
#include "strata/netd/uplink_agent.h"

namespace strata::netd {

class NodeNetworkPolicyReconciler final : public ctrl::Reconciler {
 public:
  // `policies` and `nodes` are the stores of the NodeNetworkPolicy and Node informers.
  NodeNetworkPolicyReconciler(kube::ApiClient* client, const kube::Store* policies,
                              const kube::Store* nodes, UplinkAgent* agent, std::string node_name,
                              kube::Clock* clock = kube::Clock::Real());

  Result<ctrl::ReconcileResult> Reconcile(const std::string& key) override;

  // Tears down what policies that no longer exist created (the agent was down while they were
  // deleted). REQUIRES: the policy informer has synced.
  Status CollectOrphans();
  // Samples the applied bonds and writes the status of each whose observed state changed
  // (a failover shows in status within one sampling interval).
  void SampleAndReport();

  // How often a reconcile re-checks the live state against the policy (drift repair).
  static constexpr auto kResync = std::chrono::seconds(30);

 private:
  Status WriteNodeStatus(const std::string& name, const std::optional<kube::Condition>& ready);
  Status RemoveNodeStatus(const std::string& name);

  kube::ApiClient* const client_;
  const kube::Store* const policies_;
  const kube::Store* const nodes_;
  UplinkAgent* const agent_;
  const std::string node_name_;
  kube::Clock* const clock_;
};

}  // namespace strata::netd
