#pragma once

#include "strata/operator/api/v1alpha1/common.h"

namespace strata::op::api::v1alpha1 {

// NodeNetworkPolicy (cluster-scoped): the selected nodes' physical uplinks bonded under a bridge
// that pods attach to, applied by strata-netd on each node. Schema:
// charts/strata/crds/strata.io_nodenetworkpolicies.yaml. The rules the schema cannot say (which
// bond options go with which mode, primary among the uplinks, delays as multiples of miimon) are
// the bonding driver's and are checked where the bond is built (strata/net/bond_options.h), once
// the uplinks are resolved on the node.

// Shell-style patterns (fnmatch) over a node's interfaces; every given one must match.
struct UplinkMatch {
  std::optional<std::string> mac_address;
  std::optional<std::string> driver;
  std::optional<std::string> pci_address;
};

// Exactly one of `name` and `match` (the schema's oneOf).
struct Uplink {
  std::optional<std::string> name;
  std::optional<UplinkMatch> match;
};

inline constexpr std::string_view kBondModes[] = {"active-backup", "802.3ad",     "balance-xor",
                                                  "balance-tlb",   "balance-alb", "balance-rr",
                                                  "broadcast"};
inline constexpr std::string_view kXmitHashPolicies[] = {"layer2",   "layer3+4", "layer2+3",
                                                         "encap2+3", "encap3+4", "vlan+srcmac"};
inline constexpr std::string_view kLacpRates[] = {"slow", "fast"};
inline constexpr std::string_view kPrimaryReselect[] = {"always", "better", "failure"};

struct UplinkBond {
  std::string name;             // IFNAMSIZ
  std::string mode;             // kBondModes
  std::vector<Uplink> uplinks;  // 1-8
  std::optional<std::string> primary;
  std::string primary_reselect = "always";
  int64_t miimon_milliseconds = 100;   // 10-10000
  int64_t updelay_milliseconds = 0;    // 0-600000
  int64_t downdelay_milliseconds = 0;  // 0-600000
  std::optional<std::string> xmit_hash_policy;
  std::optional<std::string> lacp_rate;
  std::optional<int64_t> mtu;  // 576-9216
};

struct UplinkBridge {
  std::string name;
  bool vlan_filtering = false;
  bool stp = false;
};

struct NodeNetworkPolicySpec {
  LabelSelector node_selector;  // empty: every node
  UplinkBond bond;
  std::optional<UplinkBridge> bridge;
};

struct UplinkStatus {
  std::string name;
  std::optional<std::string> link_state;  // up, down
  std::optional<std::string> mac_address;
};

// What one node's strata-netd observed; list-map keyed by node_name.
struct NodeUplinkStatus {
  std::string node_name;
  std::optional<int64_t> observed_generation;
  std::optional<bool> bond_present;
  std::optional<bool> bridge_present;
  std::optional<std::string> active_slave;
  std::optional<int64_t> failovers;
  std::optional<std::string> last_failover_time;
  std::vector<UplinkStatus> uplinks;
  std::vector<Condition> conditions;  // Ready, Degraded
};

struct NodeNetworkPolicyStatus {
  std::vector<NodeUplinkStatus> nodes;
};

struct NodeNetworkPolicy : Object<NodeNetworkPolicySpec, NodeNetworkPolicyStatus> {
  static constexpr std::string_view kKind = "NodeNetworkPolicy";
};

Result<NodeNetworkPolicy> NodeNetworkPolicyFromJson(const kube::Json& json);
kube::Json ToJson(const NodeNetworkPolicy& policy);

}  // namespace strata::op::api::v1alpha1
