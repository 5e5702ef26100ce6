#include "strata/netd/uplinks.h"

#include <fnmatch.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>

#include "strata/net/bond_options.h"

namespace strata::netd {
namespace {

namespace fs = std::filesystem;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool Glob(const std::optional<std::string>& pattern, const std::string& value) {
  return !pattern || fnmatch(pattern->c_str(), value.c_str(), 0) == 0;
}

// The basename of the symlink `path` points to; "" when it is not a link (a virtual device has
// no device/ and no driver).
std::string LinkTargetName(const fs::path& path) {
  std::error_code ec;
  fs::path target = fs::read_symlink(path, ec);
  if (ec) return "";
  return target.filename().string();
}

bool Matches(const api::UplinkMatch& m, const net::LinkInfo& l, const ResolveOptions& options) {
  const fs::path dev = fs::path(options.sysfs_root) / "class" / "net" / l.name / "device";
  return (!m.mac_address || Glob(Lower(*m.mac_address), Lower(l.mac))) &&
         (!m.driver || Glob(m.driver, LinkTargetName(dev / "driver"))) &&
         (!m.pci_address || Glob(m.pci_address, LinkTargetName(dev)));
}

// Links a match may select: not loopback, and not the kinds this agent builds.
bool Selectable(const net::LinkInfo& l) {
  return l.name != "lo" && l.kind != "bond" && l.kind != "bridge";
}

Status IgnoreNotFound(Status s) { return s.code() == StatusCode::kNotFound ? Status::Ok() : s; }

void Note(std::vector<std::string>* changes, std::string what) {
  if (changes != nullptr) changes->push_back(std::move(what));
}

}  // namespace

Result<UplinkPlan> ResolveUplinkPlan(const api::NodeNetworkPolicySpec& spec,
                                     net::NetlinkManager& nl, const ResolveOptions& options) {
  const api::UplinkBond& b = spec.bond;
  UplinkPlan plan;
  plan.bond.name = b.name;
  STRATA_ASSIGN_OR_RETURN(plan.bond.mode, net::ParseBondMode(b.mode, "spec.bond.mode"));
  plan.bond.miimon_ms = static_cast<int>(b.miimon_milliseconds);
  plan.bond.updelay_ms = static_cast<int>(b.updelay_milliseconds);
  plan.bond.downdelay_ms = static_cast<int>(b.downdelay_milliseconds);
  if (b.xmit_hash_policy) {
    STRATA_ASSIGN_OR_RETURN(
        plan.bond.xmit_hash_policy,
        net::ParseXmitHashPolicy(*b.xmit_hash_policy, "spec.bond.xmitHashPolicy"));
  }
  if (b.lacp_rate) {
    STRATA_ASSIGN_OR_RETURN(plan.bond.lacp_rate,
                            net::ParseLacpRate(*b.lacp_rate, "spec.bond.lacpRate"));
  }
  // primaryReselect has a schema default: it means something only with a primary.
  if (b.primary) {
    STRATA_ASSIGN_OR_RETURN(
        plan.bond.primary_reselect,
        net::ParsePrimaryReselect(b.primary_reselect, "spec.bond.primaryReselect"));
  }
  plan.bond.mtu = b.mtu ? static_cast<int>(*b.mtu) : 0;
  plan.primary = b.primary;

  STRATA_ASSIGN_OR_RETURN(std::vector<net::LinkInfo> links, nl.ListLinks());
  auto existing_bond = std::find_if(links.begin(), links.end(),
                                    [&](const net::LinkInfo& l) { return l.name == b.name; });
  if (existing_bond != links.end() && existing_bond->kind != "bond") {
    return InvalidArgumentError(
        "spec.bond.name: " + b.name + " exists on this node and is not a bond (" +
        (existing_bond->kind.empty() ? "a device" : existing_bond->kind) + ")");
  }
  const int bond_index = existing_bond != links.end() ? existing_bond->index : -1;

  std::vector<std::string> fields;  // the spec field each resolved uplink came from
  for (size_t i = 0; i < b.uplinks.size(); ++i) {
    const api::Uplink& u = b.uplinks[i];
    const std::string field = "spec.bond.uplinks[" + std::to_string(i) + "]";
    std::vector<const net::LinkInfo*> found;
    if (u.name) {
      auto it = std::find_if(links.begin(), links.end(),
                             [&](const net::LinkInfo& l) { return l.name == *u.name; });
      if (it == links.end()) {
        return InvalidArgumentError(field + ".name: " + *u.name + " does not exist on this node");
      }
      found.push_back(&*it);
    } else if (u.match) {
      std::vector<const net::LinkInfo*> matched;
      for (const net::LinkInfo& l : links) {
        if (Selectable(l) && Matches(*u.match, l, options)) matched.push_back(&l);
      }
      if (matched.empty()) {
        return InvalidArgumentError(field + ".match: matches no interface on this node");
      }
      std::sort(matched.begin(), matched.end(), [](auto* x, auto* y) { return x->name < y->name; });
      found = matched;
    }
    for (const net::LinkInfo* l : found) {
      if (l->name == b.name || (spec.bridge && l->name == spec.bridge->name)) {
        return InvalidArgumentError(field + ": " + l->name + " is the bond or the bridge itself");
      }
      if (l->master_index != 0 && l->master_index != bond_index) {
        std::string master = "#" + std::to_string(l->master_index);
        for (const net::LinkInfo& m : links) {
          if (m.index == l->master_index) master = m.name;
        }
        return InvalidArgumentError(field + ": " + l->name + " is already a port of " + master);
      }
      if (l->master_index == 0) {
        // Enslaving drops the link's addresses and routes: if this is the node's management
        // address, the node is cut off. Refuse; the address must move first (by hand, or a later
        // version of this agent).
        STRATA_ASSIGN_OR_RETURN(std::vector<std::string> addrs, nl.ListAddresses(l->name));
        if (!addrs.empty()) {
          return InvalidArgumentError(field + ": " + l->name + " carries address " + addrs[0] +
                                      "; uplinks must not carry addresses (enslaving drops them, "
                                      "and the node may lose its connectivity)");
        }
      }
      plan.uplinks.push_back(l->name);
      fields.push_back(field);
    }
  }
  net::BondFields names;
  names.mode = "spec.bond.mode";
  names.miimon = "spec.bond.miimonMilliseconds";
  names.updelay = "spec.bond.updelayMilliseconds";
  names.downdelay = "spec.bond.downdelayMilliseconds";
  names.xmit_hash_policy = "spec.bond.xmitHashPolicy";
  names.lacp_rate = "spec.bond.lacpRate";
  names.primary_reselect = "spec.bond.primaryReselect";
  names.fail_over_mac = "spec.bond.failOverMac";
  names.primary = "spec.bond.primary";
  names.links = "spec.bond.uplinks";
  STRATA_RETURN_IF_ERROR(net::ValidateBond(plan.bond, plan.uplinks, plan.primary, names));

  if (spec.bridge) {
    const api::UplinkBridge& br = *spec.bridge;
    if (br.name == b.name) {
      return InvalidArgumentError("spec.bridge.name: " + br.name + " is also the bond's name");
    }
    auto it = std::find_if(links.begin(), links.end(),
                           [&](const net::LinkInfo& l) { return l.name == br.name; });
    if (it != links.end() && it->kind != "bridge") {
      return InvalidArgumentError("spec.bridge.name: " + br.name +
                                  " exists on this node and is not a bridge");
    }
    net::BridgeSpec bs;
    bs.name = br.name;
    bs.vlan_filtering = br.vlan_filtering;
    bs.stp = br.stp;
    bs.mtu = plan.bond.mtu;
    plan.bridge = bs;
  }
  return plan;
}

Status ApplyUplinkPlan(const UplinkPlan& plan, net::NetlinkManager& nl, UplinkOwnership* owned,
                       std::vector<std::string>* changes) {
  const net::BondSpec& want = plan.bond;
  if (!owned->bond.empty() && owned->bond != want.name) {
    // The policy renamed its bond: the old one goes first (its uplinks are the new one's).
    UplinkOwnership old = *owned;
    old.bridge.clear();
    old.created_bridge = false;
    STRATA_RETURN_IF_ERROR(TeardownUplinks(old, nl));
    Note(changes, "removed bond " + owned->bond + " (renamed to " + want.name + ")");
    owned->bond.clear();
    owned->created_bond = false;
    owned->enslaved.clear();
  }
  owned->bond = want.name;

  // 1. The bond, with its options.
  auto bond = nl.GetLink(want.name);
  if (!bond.ok() && bond.status().code() != StatusCode::kNotFound) return bond.status();
  if (bond.ok()) {
    STRATA_ASSIGN_OR_RETURN(net::BondState live, nl.GetBond(want.name));
    if (live.mode != want.mode) {
      // The driver changes mode only on a bond without ports that is down: rebuild it.
      STRATA_ASSIGN_OR_RETURN(auto all, nl.ListLinks());
      for (const net::LinkInfo& l : all) {
        if (l.master_index == bond->index)
          STRATA_RETURN_IF_ERROR(IgnoreNotFound(nl.ReleaseLink(l.name)));
      }
      STRATA_RETURN_IF_ERROR(IgnoreNotFound(nl.DeleteLink(want.name)));
      Note(changes, "removed bond " + want.name + " to change its mode from " +
                        std::string(net::BondModeName(live.mode)) + " to " +
                        std::string(net::BondModeName(want.mode)));
      bond = NotFoundError(want.name);
    } else {
      const bool options_differ =
          live.miimon_ms != want.miimon_ms || live.updelay_ms != want.updelay_ms ||
          live.downdelay_ms != want.downdelay_ms ||
          (want.xmit_hash_policy && live.xmit_hash_policy != *want.xmit_hash_policy) ||
          (want.primary_reselect && live.primary_reselect != *want.primary_reselect);
      const bool lacp_differs = want.lacp_rate && live.lacp_rate != *want.lacp_rate;
      if (lacp_differs) {
        // lacp_rate is one of the options the driver takes only while the bond is down.
        STRATA_RETURN_IF_ERROR(nl.SetLinkUp(want.name, false));
      }
      if (options_differ || lacp_differs) {
        STRATA_RETURN_IF_ERROR(nl.SetBondOptions(want.name, want));
        Note(changes, "changed options of bond " + want.name);
      }
      if (want.mtu > 0 && bond->mtu != want.mtu) {
        net::LinkChange c;
        c.mtu = want.mtu;
        STRATA_RETURN_IF_ERROR(nl.ChangeLink(want.name, c));
        Note(changes, "set MTU of " + want.name + " to " + std::to_string(want.mtu));
      }
    }
  }
  if (!bond.ok()) {
    // Recorded before it exists: a crash between the two leaves a record of nothing, which a
    // teardown handles; the reverse would leak the bond.
    owned->created_bond = true;
    STRATA_RETURN_IF_ERROR(nl.CreateBond(want));
    Note(changes,
         "created bond " + want.name + " (" + std::string(net::BondModeName(want.mode)) + ")");
  }
  STRATA_ASSIGN_OR_RETURN(net::LinkInfo b, nl.GetLink(want.name));

  // 2. Its ports: the planned uplinks in, uplinks this agent enslaved and the plan dropped out.
  STRATA_ASSIGN_OR_RETURN(auto all, nl.ListLinks());
  std::set<std::string> ports;
  for (const net::LinkInfo& l : all) {
    if (l.master_index == b.index) ports.insert(l.name);
  }
  for (const std::string& u : plan.uplinks) {
    if (ports.count(u)) continue;
    STRATA_RETURN_IF_ERROR(nl.SetLinkUp(u, false));  // older drivers refuse an up port
    if (std::find(owned->enslaved.begin(), owned->enslaved.end(), u) == owned->enslaved.end()) {
      owned->enslaved.push_back(u);
    }
    STRATA_RETURN_IF_ERROR(nl.EnslaveLink(u, want.name));
    STRATA_RETURN_IF_ERROR(nl.SetLinkUp(u, true));
    Note(changes, "enslaved " + u + " to " + want.name);
  }
  for (auto it = owned->enslaved.begin(); it != owned->enslaved.end();) {
    if (std::find(plan.uplinks.begin(), plan.uplinks.end(), *it) != plan.uplinks.end()) {
      ++it;
      continue;
    }
    if (ports.count(*it)) {
      STRATA_RETURN_IF_ERROR(IgnoreNotFound(nl.ReleaseLink(*it)));
      STRATA_RETURN_IF_ERROR(IgnoreNotFound(nl.SetLinkUp(*it, true)));
      Note(changes, "released " + *it + " from " + want.name);
    }
    it = owned->enslaved.erase(it);
  }

  // 3. Primary and up.
  if (plan.primary) {
    STRATA_ASSIGN_OR_RETURN(net::BondState live, nl.GetBond(want.name));
    STRATA_ASSIGN_OR_RETURN(net::LinkInfo p, nl.GetLink(*plan.primary));
    if (live.primary_index != p.index) {
      STRATA_RETURN_IF_ERROR(nl.SetBondPrimary(want.name, *plan.primary));
      Note(changes, "set primary of " + want.name + " to " + *plan.primary);
    }
  }
  if (!b.admin_up) {
    STRATA_RETURN_IF_ERROR(nl.SetLinkUp(want.name, true));
    Note(changes, "set " + want.name + " up");
  }

  // 4. The bridge with the bond as its port.
  if (!owned->bridge.empty() && (!plan.bridge || plan.bridge->name != owned->bridge)) {
    if (owned->created_bridge) {
      STRATA_RETURN_IF_ERROR(IgnoreNotFound(nl.DeleteLink(owned->bridge)));
      Note(changes, "removed bridge " + owned->bridge);
    } else {
      STRATA_RETURN_IF_ERROR(IgnoreNotFound(nl.SetMaster(want.name, "")));
    }
    owned->bridge.clear();
    owned->created_bridge = false;
  }
  if (plan.bridge) {
    const net::BridgeSpec& br = *plan.bridge;
    auto live = nl.GetLink(br.name);
    if (!live.ok() && live.status().code() != StatusCode::kNotFound) return live.status();
    if (owned->bridge != br.name) {
      owned->bridge = br.name;
      owned->created_bridge = !live.ok();
    }
    if (!live.ok()) {
      STRATA_RETURN_IF_ERROR(nl.CreateBridge(br));
      Note(changes, "created bridge " + br.name);
    } else {
      STRATA_ASSIGN_OR_RETURN(net::BridgeState st, nl.GetBridge(br.name));
      if (st.vlan_filtering != br.vlan_filtering || st.stp != br.stp) {
        STRATA_RETURN_IF_ERROR(nl.SetBridgeOptions(br));
        Note(changes, "changed options of bridge " + br.name);
      }
      if (br.mtu > 0 && live->mtu != br.mtu) {
        net::LinkChange c;
        c.mtu = br.mtu;
        STRATA_RETURN_IF_ERROR(nl.ChangeLink(br.name, c));
        Note(changes, "set MTU of " + br.name + " to " + std::to_string(br.mtu));
      }
    }
    STRATA_ASSIGN_OR_RETURN(net::LinkInfo bridge, nl.GetLink(br.name));
    STRATA_ASSIGN_OR_RETURN(b, nl.GetLink(want.name));
    if (b.master_index != bridge.index) {
      STRATA_RETURN_IF_ERROR(nl.SetMaster(want.name, br.name));
      Note(changes, "attached " + want.name + " to bridge " + br.name);
    }
    if (!bridge.admin_up) {
      STRATA_RETURN_IF_ERROR(nl.SetLinkUp(br.name, true));
      Note(changes, "set " + br.name + " up");
    }
  }
  return Status::Ok();
}

Status TeardownUplinks(const UplinkOwnership& owned, net::NetlinkManager& nl) {
  if (!owned.bond.empty()) {
    auto bond = nl.GetLink(owned.bond);
    if (!bond.ok() && bond.status().code() != StatusCode::kNotFound) return bond.status();
    if (bond.ok() && bond->kind == "bond") {
      STRATA_ASSIGN_OR_RETURN(auto all, nl.ListLinks());
      for (const net::LinkInfo& l : all) {
        const bool ours =
            std::find(owned.enslaved.begin(), owned.enslaved.end(), l.name) != owned.enslaved.end();
        if (l.master_index != bond->index || (!ours && !owned.created_bond)) continue;
        STRATA_RETURN_IF_ERROR(IgnoreNotFound(nl.ReleaseLink(l.name)));
        STRATA_RETURN_IF_ERROR(IgnoreNotFound(nl.SetLinkUp(l.name, true)));
      }
      if (owned.created_bond) STRATA_RETURN_IF_ERROR(IgnoreNotFound(nl.DeleteLink(owned.bond)));
    }
  }
  if (!owned.bridge.empty() && owned.created_bridge) {
    auto br = nl.GetLink(owned.bridge);
    if (br.ok() && br->kind == "bridge") {
      STRATA_RETURN_IF_ERROR(IgnoreNotFound(nl.DeleteLink(owned.bridge)));
    }
  }
  return Status::Ok();
}

UplinkObservation ObserveUplinks(const UplinkPlan& plan, net::NetlinkManager& nl) {
  UplinkObservation o;
  auto bond = nl.GetLink(plan.bond.name);
  o.bond_present = bond.ok() && bond->kind == "bond";
  if (plan.bridge) {
    auto br = nl.GetLink(plan.bridge->name);
    o.bridge_present = br.ok() && br->kind == "bridge";
  }
  std::map<int, std::string> names;
  if (auto all = nl.ListLinks(); all.ok()) {
    for (const net::LinkInfo& l : *all) names[l.index] = l.name;
  }
  for (const std::string& u : plan.uplinks) {
    auto l = nl.GetLink(u);
    o.uplink_up[u] =
        l.ok() && o.bond_present && l->master_index == bond->index && l->admin_up && l->carrier;
    if (l.ok() && !l->mac.empty()) o.uplink_mac[u] = l->mac;
  }
  if (o.bond_present) {
    o.bond_up = bond->admin_up && bond->carrier;
    if (auto st = nl.GetBond(plan.bond.name); st.ok() && st->active_slave_index != 0) {
      auto it = names.find(st->active_slave_index);
      if (it != names.end()) o.active_slave = it->second;
    }
  }
  return o;
}

}  // namespace strata::netd
