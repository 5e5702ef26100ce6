#include "strata/net/bond_options.h"

#include <algorithm>
#include <array>
#include <set>
#include <utility>

namespace strata::net {
namespace {

constexpr std::array<std::pair<std::string_view, BondMode>, 7> kModes = {{
    {"balance-rr", BondMode::kBalanceRr},
    {"active-backup", BondMode::kActiveBackup},
    {"balance-xor", BondMode::kBalanceXor},
    {"broadcast", BondMode::kBroadcast},
    {"802.3ad", BondMode::k8023ad},
    {"balance-tlb", BondMode::kBalanceTlb},
    {"balance-alb", BondMode::kBalanceAlb},
}};
// IFLA_BOND_XMIT_HASH_POLICY values (include/uapi/linux/if_bonding.h BOND_XMIT_POLICY_*).
constexpr std::array<std::pair<std::string_view, int>, 6> kHashPolicies = {{
    {"layer2", 0},
    {"layer3+4", 1},
    {"layer2+3", 2},
    {"encap2+3", 3},
    {"encap3+4", 4},
    {"vlan+srcmac", 5},
}};
// IFLA_BOND_AD_LACP_RATE: slow = a LACPDU every 30 s, fast = every second.
constexpr std::array<std::pair<std::string_view, int>, 2> kLacpRates = {{{"slow", 0}, {"fast", 1}}};
// IFLA_BOND_PRIMARY_RESELECT (BOND_PRI_RESELECT_*).
constexpr std::array<std::pair<std::string_view, int>, 3> kPrimaryReselect = {{
    {"always", 0},
    {"better", 1},
    {"failure", 2},
}};
constexpr std::array<std::pair<std::string_view, int>, 3> kFailOverMac = {{
    {"none", 0},
    {"active", 1},
    {"follow", 2},
}};

template <typename T, size_t N>
Result<T> Lookup(const std::array<std::pair<std::string_view, T>, N>& table, std::string_view name,
                 const std::string& field) {
  for (const auto& [n, v] : table) {
    if (n == name) return v;
  }
  std::string choices;
  for (const auto& [n, v] : table) {
    (void)v;
    if (!choices.empty()) choices += ", ";
    choices += n;
  }
  return InvalidArgumentError(field + ": '" + std::string(name) + "' is not one of " + choices);
}

template <typename T, size_t N>
std::string_view NameOf(const std::array<std::pair<std::string_view, T>, N>& table, T value) {
  for (const auto& [n, v] : table) {
    if (v == value) return n;
  }
  return "unknown";
}

}  // namespace

Result<BondMode> ParseBondMode(std::string_view name, const std::string& field) {
  return Lookup(kModes, name, field);
}
std::string_view BondModeName(BondMode mode) { return NameOf(kModes, mode); }
std::string BondModeChoices() {
  std::string out;
  for (const auto& [n, v] : kModes) {
    (void)v;
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}
Result<int> ParseXmitHashPolicy(std::string_view name, const std::string& field) {
  return Lookup(kHashPolicies, name, field);
}
std::string_view XmitHashPolicyName(int value) { return NameOf(kHashPolicies, value); }
Result<int> ParseLacpRate(std::string_view name, const std::string& field) {
  return Lookup(kLacpRates, name, field);
}
Result<int> ParsePrimaryReselect(std::string_view name, const std::string& field) {
  return Lookup(kPrimaryReselect, name, field);
}
Result<int> ParseFailOverMac(std::string_view name, const std::string& field) {
  return Lookup(kFailOverMac, name, field);
}

Status ValidateBond(const BondSpec& spec, const std::vector<std::string>& links,
                    const std::optional<std::string>& primary, const BondFields& fields) {
  for (const auto& [field, v] : {std::pair{&fields.updelay, spec.updelay_ms},
                                 std::pair{&fields.downdelay, spec.downdelay_ms}}) {
    if (v == 0) continue;
    if (spec.miimon_ms == 0) return InvalidArgumentError(*field + ": needs miimon > 0");
    // The driver rounds down to a multiple and only warns: refuse instead of applying another
    // value than the one asked for.
    if (v % spec.miimon_ms != 0) {
      return InvalidArgumentError(*field + ": " + std::to_string(v) +
                                  " ms is not a multiple of miimon " +
                                  std::to_string(spec.miimon_ms) + " ms");
    }
  }
  const std::string mode(BondModeName(spec.mode));
  if (spec.xmit_hash_policy && spec.mode != BondMode::kBalanceXor &&
      spec.mode != BondMode::k8023ad && spec.mode != BondMode::kBalanceTlb) {
    return InvalidArgumentError(fields.xmit_hash_policy +
                                ": applies to balance-xor, 802.3ad and balance-tlb, not " + mode);
  }
  if (spec.lacp_rate && spec.mode != BondMode::k8023ad) {
    return InvalidArgumentError(fields.lacp_rate + ": applies to 802.3ad only, not " + mode);
  }
  if (spec.fail_over_mac && spec.mode != BondMode::kActiveBackup) {
    return InvalidArgumentError(fields.fail_over_mac + ": applies to active-backup only");
  }
  if (spec.primary_reselect && !primary) {
    return InvalidArgumentError(fields.primary_reselect + ": needs a primary");
  }
  if (links.size() < 2) {
    return InvalidArgumentError(fields.links + ": a bond needs at least 2 links, got " +
                                std::to_string(links.size()));
  }
  std::set<std::string> seen;
  for (const std::string& l : links) {
    if (!seen.insert(l).second) {
      return InvalidArgumentError(fields.links + ": '" + l + "' is listed twice");
    }
  }
  if (primary) {
    if (spec.mode != BondMode::kActiveBackup) {
      return InvalidArgumentError(fields.primary + ": applies to active-backup only");
    }
    if (!seen.count(*primary)) {
      return InvalidArgumentError(fields.primary + ": '" + *primary + "' is not one of the links");
    }
  }
  return Status::Ok();
}

}  // namespace strata::net
