#pragma once

// strata-netd --node-network-policy-file: one NodeNetworkPolicy from a local file (YAML or JSON,
// as kubectl would apply it), applied to this node without an apiserver, the way kubelet runs
// static pods. For nodes whose uplinks must be up before the cluster is reachable, and for the VM
// tier test (no apiserver in the guest). The node selector is not consulted: the file is this
// node's; removing the file removes what the policy created. Status (the same entry as
// status.nodes[] of the API object) is written atomically to `status_file` whenever it changes;
// metrics as in the API mode (UplinkAgent).

#include <chrono>
#include <stop_token>
#include <string>

#include "strata/netd/uplink_agent.h"

namespace strata::netd {

struct StaticUplinkOptions {
  std::string policy_file;
  std::string status_file;
  std::string node_name;
  // How often the bond is sampled: a failover shows in the status file within this.
  std::chrono::milliseconds sample_interval{100};
  // How often the file and the live state are re-checked (re-applied when either changed).
  std::chrono::milliseconds resync_interval{std::chrono::seconds(10)};
};

// Applies, samples and reports until `stop`. A policy that does not parse or resolve is reported
// (Ready=False naming the field) and retried at each resync; it is not an error of the run.
// Errors: the status file cannot be written.
Status RunStaticUplinks(UplinkAgent* agent, Env* env, const StaticUplinkOptions& options,
                        kube::Clock* clock, std::stop_token stop);

}  // namespace strata::netd
