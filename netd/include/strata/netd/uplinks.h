#pragma once

// A node's uplink bond under a bridge (NodeNetworkPolicy), without Kubernetes: resolving a policy
// against the node's interfaces into a plan, applying the plan through the netlink seam by
// changing only what differs from the live state, tearing down what an earlier apply created,
// and observing the live bond (link state per uplink, active slave).
//
// The uplinks must not carry addresses (the node's management address above all): enslaving a
// link drops its addresses and routes, which is how a bad NMState policy cuts a node off. This
// version does not move addresses to the bridge; Resolve refuses such an uplink with an error
// naming it, before anything is changed.
//
// Thread-safety: thread-compatible; one NetlinkManager per caller.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "strata/common/result.h"
#include "strata/net/netlink.h"
#include "strata/operator/api/v1alpha1/node_network_policy.h"

namespace strata::netd {

namespace api = op::api::v1alpha1;

// What a policy asks of this node, with names resolved and every option checked.
struct UplinkPlan {
  net::BondSpec bond;
  std::vector<std::string> uplinks;  // in the policy's order (matches: sorted by name)
  std::optional<std::string> primary;
  std::optional<net::BridgeSpec> bridge;
};

// What one apply created, so that tearing down removes that and nothing else. Kept in the
// node-local state file (UplinkStateFile).
struct UplinkOwnership {
  std::string policy_uid;
  std::string bond;
  bool created_bond = false;
  std::vector<std::string> enslaved;  // uplinks this agent put into the bond
  std::string bridge;
  bool created_bridge = false;
  friend bool operator==(const UplinkOwnership&, const UplinkOwnership&) = default;
};

// The live state of a plan's bond and bridge.
struct UplinkObservation {
  bool bond_present = false;
  bool bridge_present = false;
  bool bond_up = false;                   // admin up with carrier
  std::string active_slave;               // "" when none or not active-backup
  std::map<std::string, bool> uplink_up;  // per planned uplink: carrier and enslaved to the bond
  std::map<std::string, std::string> uplink_mac;
};

// Where Resolve reads interface attributes the rtnetlink seam does not carry (driver, PCI
// address): `sysfs_root`/class/net/IF/device (a link to the PCI device, its basename the
// address) and .../device/driver (a link to the driver, its basename the name).
struct ResolveOptions {
  std::string sysfs_root = "/sys";
};

// Policy -> plan on this node. INVALID_ARGUMENT naming the policy field (spec.bond.uplinks[1],
// spec.bond.primary, ...) for anything the kernel would refuse or that would cut the node off:
// an uplink that does not exist, matches nothing, is enslaved elsewhere or carries an address;
// the bond rules of net::ValidateBond. Changes nothing.
Result<UplinkPlan> ResolveUplinkPlan(const api::NodeNetworkPolicySpec& spec,
                                     net::NetlinkManager& nl, const ResolveOptions& options = {});

// Makes the live state match `plan`, changing only what differs: an identical live bond and
// bridge are left alone (no flap on an agent restart). A mode change rebuilds the bond (the
// driver only changes mode without slaves). `owned` is what earlier applies recorded; it is
// updated to include what this one created, also when it fails half-way (so a later teardown
// finds it). `changes`, when given, receives one line per change made.
Status ApplyUplinkPlan(const UplinkPlan& plan, net::NetlinkManager& nl, UplinkOwnership* owned,
                       std::vector<std::string>* changes = nullptr);

// Removes what `owned` says was created: releases the uplinks it enslaved (back up, as they
// were), deletes the bond and bridge it created. Gone already is fine.
Status TeardownUplinks(const UplinkOwnership& owned, net::NetlinkManager& nl);

UplinkObservation ObserveUplinks(const UplinkPlan& plan, net::NetlinkManager& nl);

}  // namespace strata::netd
