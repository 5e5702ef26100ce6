#include "strata/cni/bond_plugin.h"

#include <algorithm>
#include <array>
#include <set>
#include <utility>

#include "strata/cni/scope_guard.h"

namespace strata::cni {
namespace {

using nlohmann::json;

constexpr std::array<std::pair<std::string_view, net::BondMode>, 7> kModes = {{
    {"balance-rr", net::BondMode::kBalanceRr},
    {"active-backup", net::BondMode::kActiveBackup},
    {"balance-xor", net::BondMode::kBalanceXor},
    {"broadcast", net::BondMode::kBroadcast},
    {"802.3ad", net::BondMode::k8023ad},
    {"balance-tlb", net::BondMode::kBalanceTlb},
    {"balance-alb", net::BondMode::kBalanceAlb},
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
constexpr std::array<std::pair<std::string_view, int>, 3> kFailOverMac = {{
    {"none", 0},
    {"active", 1},
    {"follow", 2},
}};

template <typename T, size_t N>
std::string Choices(const std::array<std::pair<std::string_view, T>, N>& table) {
  std::string out;
  for (const auto& [name, v] : table) {
    (void)v;
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

Result<std::optional<int>> NonNegative(const json& j, const char* key) {
  STRATA_ASSIGN_OR_RETURN(auto v, GetInt(j, key));
  if (!v) return std::optional<int>();
  if (*v < 0 || *v > 1000000) {
    return InvalidArgumentError(std::string(key) + ": " + std::to_string(*v) +
                                " ms is outside 0..1000000");
  }
  return std::optional<int>(static_cast<int>(*v));
}

}  // namespace

std::string_view BondModeName(net::BondMode mode) {
  for (const auto& [name, m] : kModes) {
    if (m == mode) return name;
  }
  return "unknown";
}

Result<BondPlugin::Config> BondPlugin::ParseConfig(const NetConf& conf, const std::string& ifname) {
  const json& j = conf.raw;
  Config c;
  c.spec.name = ifname;
  STRATA_ASSIGN_OR_RETURN(auto mode, GetString(j, "mode"));
  if (!mode) return InvalidArgumentError("mode: required (" + Choices(kModes) + ")");
  auto m = std::find_if(kModes.begin(), kModes.end(), [&](auto& e) { return e.first == *mode; });
  if (m == kModes.end()) {
    return InvalidArgumentError("mode: '" + *mode + "' is not one of " + Choices(kModes));
  }
  c.spec.mode = m->second;
  STRATA_ASSIGN_OR_RETURN(auto miimon, NonNegative(j, "miimon"));
  c.spec.miimon_ms = miimon.value_or(100);
  STRATA_ASSIGN_OR_RETURN(auto up, NonNegative(j, "updelay"));
  STRATA_ASSIGN_OR_RETURN(auto down, NonNegative(j, "downdelay"));
  c.spec.updelay_ms = up.value_or(0);
  c.spec.downdelay_ms = down.value_or(0);
  for (auto [key, v] :
       {std::pair{"updelay", c.spec.updelay_ms}, std::pair{"downdelay", c.spec.downdelay_ms}}) {
    if (v == 0) continue;
    if (c.spec.miimon_ms == 0) {
      return InvalidArgumentError(std::string(key) + ": needs miimon > 0");
    }
    if (v % c.spec.miimon_ms != 0) {
      return InvalidArgumentError(std::string(key) + ": " + std::to_string(v) +
                                  " ms is not a multiple of miimon " +
                                  std::to_string(c.spec.miimon_ms) + " ms");
    }
  }
  STRATA_ASSIGN_OR_RETURN(auto hash, GetString(j, "xmitHashPolicy"));
  if (hash) {
    auto h = std::find_if(kHashPolicies.begin(), kHashPolicies.end(),
                          [&](auto& e) { return e.first == *hash; });
    if (h == kHashPolicies.end()) {
      return InvalidArgumentError("xmitHashPolicy: '" + *hash + "' is not one of " +
                                  Choices(kHashPolicies));
    }
    if (c.spec.mode != net::BondMode::kBalanceXor && c.spec.mode != net::BondMode::k8023ad &&
        c.spec.mode != net::BondMode::kBalanceTlb) {
      return InvalidArgumentError(
          "xmitHashPolicy: applies to balance-xor, 802.3ad and "
          "balance-tlb, not " +
          *mode);
    }
    c.spec.xmit_hash_policy = h->second;
  }
  STRATA_ASSIGN_OR_RETURN(auto fom, GetString(j, "failOverMac"));
  if (fom) {
    auto f = std::find_if(kFailOverMac.begin(), kFailOverMac.end(),
                          [&](auto& e) { return e.first == *fom; });
    if (f == kFailOverMac.end()) {
      return InvalidArgumentError("failOverMac: '" + *fom + "' is not one of " +
                                  Choices(kFailOverMac));
    }
    if (c.spec.mode != net::BondMode::kActiveBackup) {
      return InvalidArgumentError("failOverMac: applies to active-backup only");
    }
    c.spec.fail_over_mac = f->second;
  }
  STRATA_ASSIGN_OR_RETURN(auto mtu, GetInt(j, "mtu"));
  if (mtu) {
    if (*mtu < 68 || *mtu > 65535) {
      return InvalidArgumentError("mtu: " + std::to_string(*mtu) + " is outside 68..65535");
    }
    c.spec.mtu = static_cast<int>(*mtu);
  }
  auto links = j.find("links");
  if (links == j.end() || !links->is_array()) {
    return InvalidArgumentError("links: required, a list of {\"name\": IFNAME}");
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < links->size(); ++i) {
    const std::string prefix = "links[" + std::to_string(i) + "].";
    STRATA_ASSIGN_OR_RETURN(auto name, GetString((*links)[i], "name", prefix));
    if (!name) return InvalidArgumentError(prefix + "name: required");
    STRATA_RETURN_IF_ERROR(ValidateIfName(*name, prefix + "name"));
    if (!seen.insert(*name).second) {
      return InvalidArgumentError(prefix + "name: '" + *name + "' is listed twice");
    }
    c.links.push_back(*name);
  }
  if (c.links.size() < 2) {
    return InvalidArgumentError("links: a bond needs at least 2 links, got " +
                                std::to_string(c.links.size()));
  }
  STRATA_ASSIGN_OR_RETURN(c.primary, GetString(j, "primary"));
  if (c.primary) {
    if (c.spec.mode != net::BondMode::kActiveBackup) {
      return InvalidArgumentError("primary: applies to active-backup only");
    }
    if (!seen.count(*c.primary)) {
      return InvalidArgumentError("primary: '" + *c.primary + "' is not one of the links");
    }
  }
  STRATA_ASSIGN_OR_RETURN(auto vlan, GetInt(j, "vlan"));
  STRATA_ASSIGN_OR_RETURN(auto bond_name, GetString(j, "bondName"));
  if (vlan) {
    // 0 and 4095 are reserved by 802.1Q; an untagged bond is the config without `vlan`.
    if (*vlan < 1 || *vlan > 4094) {
      return InvalidArgumentError("vlan: " + std::to_string(*vlan) + " is outside 1..4094");
    }
    c.vlan = static_cast<int>(*vlan);
    c.spec.name = bond_name ? *bond_name : ifname.substr(0, 10) + "-bond";
    STRATA_RETURN_IF_ERROR(ValidateIfName(c.spec.name, "bondName"));
    if (c.spec.name == ifname) {
      return InvalidArgumentError("bondName: '" + c.spec.name +
                                  "' is CNI_IFNAME, which names the VLAN on the bond");
    }
    if (seen.count(c.spec.name)) {
      return InvalidArgumentError("bondName: '" + c.spec.name + "' is one of the links");
    }
  } else if (bond_name) {
    return InvalidArgumentError("bondName: applies with vlan only (the bond is CNI_IFNAME)");
  }
  return c;
}

Result<json> BondPlugin::Add(const CmdContext& ctx) {
  STRATA_ASSIGN_OR_RETURN(Config cfg, ParseConfig(ctx.conf, ctx.args.ifname));
  STRATA_ASSIGN_OR_RETURN(net::NetlinkManagerPtr pod, netlink_->Open(ctx.args.netns));
  if (pod->GetLink(ctx.args.ifname).ok()) {
    return AlreadyExistsError("CNI_IFNAME: " + ctx.args.ifname + " already exists in " +
                              ctx.args.netns);
  }
  if (cfg.vlan && pod->GetLink(cfg.spec.name).ok()) {
    return AlreadyExistsError("bondName: " + cfg.spec.name + " already exists in " +
                              ctx.args.netns);
  }
  for (size_t i = 0; i < cfg.links.size(); ++i) {
    auto link = pod->GetLink(cfg.links[i]);
    const std::string field = "links[" + std::to_string(i) + "].name";
    if (!link.ok()) {
      return InvalidArgumentError(field + ": " + cfg.links[i] + " not found in " + ctx.args.netns);
    }
    if (link->master_index != 0) {
      return InvalidArgumentError(field + ": " + cfg.links[i] + " is already enslaved");
    }
  }
  STRATA_RETURN_IF_ERROR(pod->CreateBond(cfg.spec));
  UndoStack undo;
  // Deleting the bond releases whatever was enslaved; members are brought back up.
  undo.Push([&] { (void)pod->DeleteLink(cfg.spec.name); });
  for (const std::string& m : cfg.links) {
    STRATA_RETURN_IF_ERROR(pod->SetLinkUp(m, false));
    undo.Push([&pod, m] { (void)pod->SetLinkUp(m, true); });
    STRATA_RETURN_IF_ERROR(pod->EnslaveLink(m, cfg.spec.name));
  }
  if (cfg.primary) STRATA_RETURN_IF_ERROR(pod->SetBondPrimary(cfg.spec.name, *cfg.primary));
  STRATA_RETURN_IF_ERROR(pod->SetLinkUp(cfg.spec.name, true));
  STRATA_ASSIGN_OR_RETURN(net::LinkInfo bond, pod->GetLink(cfg.spec.name));
  json result = ctx.conf.prev_result ? *ctx.conf.prev_result : json::object();
  AppendInterface(result, {bond.name, bond.mac, ctx.args.netns, bond.mtu, "", ""});
  if (cfg.vlan) {
    // The undo above deletes the bond, and the kernel the VLAN with it.
    STRATA_RETURN_IF_ERROR(pod->CreateVlan(ctx.args.ifname, cfg.spec.name, *cfg.vlan, 0));
    STRATA_RETURN_IF_ERROR(pod->SetLinkUp(ctx.args.ifname, true));
    STRATA_ASSIGN_OR_RETURN(net::LinkInfo vlan, pod->GetLink(ctx.args.ifname));
    AppendInterface(result, {vlan.name, vlan.mac, ctx.args.netns, vlan.mtu, "", ""});
  }
  undo.Dismiss();
  return result;
}

Status BondPlugin::DeleteBond(net::NetlinkManager& pod, const net::LinkInfo& bond) {
  STRATA_ASSIGN_OR_RETURN(auto links, pod.ListLinks());
  for (const net::LinkInfo& l : links) {
    if (l.master_index != bond.index) continue;
    Status s = pod.ReleaseLink(l.name);
    if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
  }
  Status s = pod.DeleteLink(bond.name);
  if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
  return Status::Ok();
}

Status BondPlugin::Del(const CmdContext& ctx) {
  if (ctx.args.netns.empty()) return Status::Ok();
  auto pod = netlink_->Open(ctx.args.netns);
  if (!pod.ok()) {
    return pod.status().code() == StatusCode::kNotFound ? Status::Ok() : pod.status();
  }
  auto link = (*pod)->GetLink(ctx.args.ifname);
  if (!link.ok() && link.status().code() != StatusCode::kNotFound) return link.status();
  if (link.ok() && link->kind == "bond") return DeleteBond(**pod, *link);
  if (link.ok() && link->kind == "vlan") {
    // Ours when its lower device is a bond: that bond goes too.
    auto lower = (*pod)->GetLinkByIndex(link->peer_index);
    if (!lower.ok() || lower->kind != "bond") return Status::Ok();
    Status s = (*pod)->DeleteLink(ctx.args.ifname);
    if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
    return DeleteBond(**pod, *lower);
  }
  if (link.ok()) return Status::Ok();  // not ours to delete
  // The VLAN is gone (an earlier DEL stopped half-way?): its bond, named by the config, goes too.
  // Lenient: DEL must work for a config that no longer parses.
  auto cfg = ParseConfig(ctx.conf, ctx.args.ifname);
  if (!cfg.ok() || !cfg->vlan) return Status::Ok();
  auto bond = (*pod)->GetLink(cfg->spec.name);
  if (!bond.ok() || bond->kind != "bond") return Status::Ok();
  return DeleteBond(**pod, *bond);
}

Status BondPlugin::Check(const CmdContext& ctx) {
  STRATA_ASSIGN_OR_RETURN(Config cfg, ParseConfig(ctx.conf, ctx.args.ifname));
  STRATA_ASSIGN_OR_RETURN(net::NetlinkManagerPtr pod, netlink_->Open(ctx.args.netns));
  const std::string& name = cfg.spec.name;
  auto bond = pod->GetLink(name);
  if (!bond.ok() || bond->kind != "bond") {
    return CheckMismatchError(name + " is not a bond in " + ctx.args.netns);
  }
  if (cfg.vlan) {
    auto vlan = pod->GetLink(ctx.args.ifname);
    if (!vlan.ok() || vlan->kind != "vlan" || vlan->peer_index != bond->index) {
      return CheckMismatchError(ctx.args.ifname + " is not a VLAN on " + name + " in " +
                                ctx.args.netns);
    }
    if (vlan->vlan_id != *cfg.vlan) {
      return CheckMismatchError(ctx.args.ifname + " has VLAN id " + std::to_string(vlan->vlan_id) +
                                ", configured " + std::to_string(*cfg.vlan));
    }
  }
  STRATA_ASSIGN_OR_RETURN(net::BondState st, pod->GetBond(name));
  if (st.mode != cfg.spec.mode) {
    return CheckMismatchError(name + " is in mode " + std::string(BondModeName(st.mode)) +
                              ", configured " + std::string(BondModeName(cfg.spec.mode)));
  }
  STRATA_ASSIGN_OR_RETURN(auto links, pod->ListLinks());
  std::set<std::string> members;
  std::set<int> member_indexes;
  for (const net::LinkInfo& l : links) {
    if (l.master_index == bond->index) {
      members.insert(l.name);
      member_indexes.insert(l.index);
    }
  }
  if (members != std::set<std::string>(cfg.links.begin(), cfg.links.end())) {
    std::string have;
    for (const auto& m : members) have += (have.empty() ? "" : ",") + m;
    return CheckMismatchError(name + " has members [" + have + "], not the configured links");
  }
  if (cfg.spec.mode == net::BondMode::kActiveBackup && bond->admin_up &&
      !member_indexes.count(st.active_slave_index)) {
    return CheckMismatchError(name + " has no active port");
  }
  return Status::Ok();
}

}  // namespace strata::cni
