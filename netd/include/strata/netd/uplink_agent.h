#pragma once

// The node-local half of NodeNetworkPolicy, without Kubernetes: applies and removes policies'
// uplink plans with a durable record of ownership (UplinkStateFile), and samples the live bonds
// (link state per uplink, active slave, failovers) into per-policy status and Prometheus
// metrics:
//   strata_netd_uplink_up{bond,slave}            1 when the uplink is in the bond with carrier
//   strata_netd_bond_active_slave{bond,slave}    1 for the active slave, 0 for the others
//   strata_netd_bond_failovers_total{bond}       changes of active slave seen by this agent
// Used by NodeNetworkPolicyReconciler (policies from the apiserver) and by strata-netd's
// --node-network-policy-file mode (one static policy, status to a file).
//
// Thread-safety: thread-safe (one mutex; netlink calls are made under it).

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "strata/common/env.h"
#include "strata/kube/clock.h"
#include "strata/kube/conditions.h"
#include "strata/netd/uplink_state.h"
#include "strata/netd/uplinks.h"

namespace prometheus {
class Registry;
template <typename T>
class Family;
class Gauge;
class Counter;
}  // namespace prometheus

namespace strata::netd {

class UplinkAgent {
 public:
  UplinkAgent(net::NetlinkFactory* netlink, Env* env, std::string state_path,
              std::shared_ptr<prometheus::Registry> registry, kube::Clock* clock,
              ResolveOptions resolve = {});

  // Reads the ownership record. REQUIRES: before anything else.
  Status Start();

  // Resolves `spec` on this node and makes the live state match it. INVALID_ARGUMENT naming the
  // field when the policy cannot be applied here (nothing changed then); other errors come from
  // the kernel (what was created so far is recorded).
  Status Apply(const std::string& policy, const std::string& uid,
               const api::NodeNetworkPolicySpec& spec, std::vector<std::string>* changes = nullptr);
  // Tears down what `policy` created (nothing if it created nothing) and forgets it.
  Status Remove(const std::string& policy);
  // Policies with something recorded in the state file.
  std::vector<std::string> Owned() const;
  bool Applied(const std::string& policy) const;

  // Observes every applied policy's bond once, updates the metrics and failover counts. Returns
  // the policies whose observed state changed since the previous sample.
  std::vector<std::string> Sample();

  // The node's status entry for `policy` (without nodeName, observedGeneration and
  // conditions, which the caller owns); nullopt when it is not applied here.
  std::optional<api::NodeUplinkStatus> Observed(const std::string& policy) const;

 private:
  struct Applied_ {
    UplinkPlan plan;
    UplinkObservation last;
    bool sampled = false;
    int64_t failovers = 0;
    std::optional<std::string> last_failover_time;
  };
  void UpdateMetricsLocked(const Applied_& a);
  void ClearMetricsLocked(const UplinkPlan& plan);

  net::NetlinkFactory* const netlink_;
  UplinkStateFile state_;
  kube::Clock* const clock_;
  const ResolveOptions resolve_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Gauge>* uplink_up_;
  prometheus::Family<prometheus::Gauge>* active_slave_;
  prometheus::Family<prometheus::Counter>* failovers_;

  mutable std::mutex mu_;
  net::NetlinkManagerPtr nl_;                     // guarded by mu_; the host namespace
  std::map<std::string, UplinkOwnership> owned_;  // guarded by mu_; mirrors the state file
  std::map<std::string, Applied_> applied_;       // guarded by mu_
};

// Ready with `status`, `reason`, `message` for `generation`.
kube::Condition ReadyCondition(bool status, std::string reason, std::string message,
                               int64_t generation);

// One node's entry of status.nodes: nodeName, the observed fields (replaced as a whole), and the
// conditions of `previous` updated: Ready set to `ready` when given (with observedGeneration),
// Degraded computed from `observed` (True/UplinkDown naming the down uplinks or a missing bond).
kube::Json NodeUplinkEntry(const std::string& node, const kube::Json& previous,
                           const std::optional<api::NodeUplinkStatus>& observed,
                           const std::optional<kube::Condition>& ready, kube::WallTime now);

}  // namespace strata::netd
