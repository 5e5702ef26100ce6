#pragma once

// The bonding driver's option names and the rules between options, shared by everything that
// builds a bond from user input: the strata-bond CNI plugin (a pod's bond, from its NetConf) and
// strata-netd (a node's uplink bond, from a NodeNetworkPolicy). The names are the kernel's own
// (Documentation/networking/bonding.rst, the sysfs/iproute2 spellings); the values are the
// IFLA_BOND_* numbers. Errors are INVALID_ARGUMENT naming the caller's field (see BondFields).
//
// Thread-safety: pure functions.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "strata/common/result.h"
#include "strata/net/netlink.h"

namespace strata::net {

// How the caller spells each field in its errors ("miimon" in a CNI config,
// "spec.bond.miimonMilliseconds" in a NodeNetworkPolicy).
struct BondFields {
  std::string mode = "mode";
  std::string miimon = "miimon";
  std::string updelay = "updelay";
  std::string downdelay = "downdelay";
  std::string xmit_hash_policy = "xmitHashPolicy";
  std::string lacp_rate = "lacpRate";
  std::string primary_reselect = "primaryReselect";
  std::string fail_over_mac = "failOverMac";
  std::string primary = "primary";
  std::string links = "links";
};

// "active-backup" -> kActiveBackup, ...; the error lists the accepted names.
Result<BondMode> ParseBondMode(std::string_view name, const std::string& field);
std::string_view BondModeName(BondMode mode);
// "balance-rr, active-backup, ...": every mode name, for messages.
std::string BondModeChoices();
// "layer2" (0), "layer3+4" (1), "layer2+3" (2), "encap2+3" (3), "encap3+4" (4), "vlan+srcmac" (5).
Result<int> ParseXmitHashPolicy(std::string_view name, const std::string& field);
std::string_view XmitHashPolicyName(int value);
// "slow" (0), "fast" (1).
Result<int> ParseLacpRate(std::string_view name, const std::string& field);
// "always" (0), "better" (1), "failure" (2).
Result<int> ParsePrimaryReselect(std::string_view name, const std::string& field);
// "none" (0), "active" (1), "follow" (2).
Result<int> ParseFailOverMac(std::string_view name, const std::string& field);

// The rules the driver applies across options, checked before anything is created so nothing is
// half-built: updelay/downdelay need miimon and are multiples of it; xmit_hash_policy only in
// balance-xor, 802.3ad and balance-tlb; lacp_rate only in 802.3ad; primary, primary_reselect and
// fail_over_mac only in active-backup; at least 2 links, none twice; primary one of them.
// Ranges of single values are the caller's (its schema's) business.
Status ValidateBond(const BondSpec& spec, const std::vector<std::string>& links,
                    const std::optional<std::string>& primary, const BondFields& fields = {});

}  // namespace strata::net
