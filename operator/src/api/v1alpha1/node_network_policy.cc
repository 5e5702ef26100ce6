#include "strata/operator/api/v1alpha1/node_network_policy.h"

#include "field_io.h"

namespace strata::op::api::v1alpha1 {

constexpr Rule kIfName{.pattern = "^[A-Za-z0-9][-A-Za-z0-9_.]{0,14}$"};
constexpr Rule kRequiredIfName{.required = true, .pattern = "^[A-Za-z0-9][-A-Za-z0-9_.]{0,14}$"};
constexpr Rule kPattern{.max_length = 64};
constexpr Rule kDelay{.minimum = 0, .maximum = 600000};
constexpr std::string_view kLinkStates[] = {"up", "down"};

void Fields(auto& io, Is<UplinkMatch> auto& m) {
  io.Field("macAddress", m.mac_address, kPattern);
  io.Field("driver", m.driver, kPattern);
  io.Field("pciAddress", m.pci_address, kPattern);
}

void Fields(auto& io, Is<Uplink> auto& u) {
  io.Field("name", u.name, kIfName);
  io.Field("match", u.match);
}

void Fields(auto& io, Is<UplinkBond> auto& b) {
  io.Field("name", b.name, kRequiredIfName);
  io.Field("mode", b.mode, {.required = true, .one_of = kBondModes});
  io.Field("uplinks", b.uplinks, {.required = true, .min_items = 1, .max_items = 8});
  io.Field("primary", b.primary, kIfName);
  io.Field("primaryReselect", b.primary_reselect, {.one_of = kPrimaryReselect});
  io.Field("miimonMilliseconds", b.miimon_milliseconds, {.minimum = 10, .maximum = 10000});
  io.Field("updelayMilliseconds", b.updelay_milliseconds, kDelay);
  io.Field("downdelayMilliseconds", b.downdelay_milliseconds, kDelay);
  io.Field("xmitHashPolicy", b.xmit_hash_policy, {.one_of = kXmitHashPolicies});
  io.Field("lacpRate", b.lacp_rate, {.one_of = kLacpRates});
  io.Field("mtu", b.mtu, {.minimum = 576, .maximum = 9216});
}

void Fields(auto& io, Is<UplinkBridge> auto& b) {
  io.Field("name", b.name, kRequiredIfName);
  io.Field("vlanFiltering", b.vlan_filtering);
  io.Field("stp", b.stp);
}

void Fields(auto& io, Is<NodeNetworkPolicySpec> auto& s) {
  io.Field("nodeSelector", s.node_selector);
  io.Field("bond", s.bond, {.required = true});
  io.Field("bridge", s.bridge);
}

void Fields(auto& io, Is<UplinkStatus> auto& u) {
  io.Field("name", u.name, {.required = true, .max_length = 15});
  io.Field("linkState", u.link_state, {.one_of = kLinkStates});
  io.Field("macAddress", u.mac_address, kPattern);
}

void Fields(auto& io, Is<NodeUplinkStatus> auto& n) {
  io.Field("nodeName", n.node_name, {.required = true, .max_length = 253});
  io.Field("observedGeneration", n.observed_generation, kNonNegative);
  io.Field("bondPresent", n.bond_present);
  io.Field("bridgePresent", n.bridge_present);
  io.Field("activeSlave", n.active_slave, {.max_length = 15});
  io.Field("failovers", n.failovers, kNonNegative);
  io.Field("lastFailoverTime", n.last_failover_time, {.format = Format::kDateTime});
  io.Field("uplinks", n.uplinks, {.map_key = "name"});
  io.Field("conditions", n.conditions, kConditionList);
}

void Fields(auto& io, Is<NodeNetworkPolicyStatus> auto& s) {
  io.Field("nodes", s.nodes, {.map_key = "nodeName"});
}

Result<NodeNetworkPolicy> NodeNetworkPolicyFromJson(const kube::Json& json) {
  STRATA_ASSIGN_OR_RETURN(NodeNetworkPolicy p, ObjectFromJson<NodeNetworkPolicy>(json));
  // The schema's oneOf and minProperties, which FieldReader has no rule for.
  for (size_t i = 0; i < p.spec.bond.uplinks.size(); ++i) {
    const Uplink& u = p.spec.bond.uplinks[i];
    const std::string path = "spec.bond.uplinks[" + std::to_string(i) + "]";
    if (u.name.has_value() == u.match.has_value()) {
      return InvalidArgumentError(path + ": exactly one of name and match is required");
    }
    if (u.match && !u.match->mac_address && !u.match->driver && !u.match->pci_address) {
      return InvalidArgumentError(path +
                                  ".match: needs at least one of macAddress, driver, pciAddress");
    }
  }
  return p;
}

kube::Json ToJson(const NodeNetworkPolicy& policy) { return ObjectToJson(policy); }

}  // namespace strata::op::api::v1alpha1
