#include "strata/cni/bond_plugin.h"

#include <algorithm>
#include <array>
#include <set>
#include <utility>

#include "strata/cni/scope_guard.h"
#include "strata/net/bond_options.h"

namespace strata::cni {
namespace {

using nlohmann::json;

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

std::string_view BondModeName(net::BondMode mode) { return net::BondModeName(mode); }

// Reads the NetConf's keys; the bonding driver's names and the rules between options are
// net::ValidateBond's (shared with strata-netd's NodeNetworkPolicy), with the keys as field names.
Result<BondPlugin::Config> BondPlugin::ParseConfig(const NetConf& conf, const std::string& ifname) {
  const json& j = conf.raw;
  Config c;
  c.spec.name = ifname;
  STRATA_ASSIGN_OR_RETURN(auto mode, GetString(j, "mode"));
  if (!mode) return InvalidArgumentError("mode: required (" + net::BondModeChoices() + ")");
  STRATA_ASSIGN_OR_RETURN(c.spec.mode, net::ParseBondMode(*mode, "mode"));
  STRATA_ASSIGN_OR_RETURN(auto miimon, NonNegative(j, "miimon"));
  c.spec.miimon_ms = miimon.value_or(100);
  STRATA_ASSIGN_OR_RETURN(auto up, NonNegative(j, "updelay"));
  STRATA_ASSIGN_OR_RETURN(auto down, NonNegative(j, "downdelay"));
  c.spec.updelay_ms = up.value_or(0);
  c.spec.downdelay_ms = down.value_or(0);
  STRATA_ASSIGN_OR_RETURN(auto hash, GetString(j, "xmitHashPolicy"));
  if (hash) {
    STRATA_ASSIGN_OR_RETURN(c.spec.xmit_hash_policy,
                            net::ParseXmitHashPolicy(*hash, "xmitHashPolicy"));
  }
  STRATA_ASSIGN_OR_RETURN(auto fom, GetString(j, "failOverMac"));
  if (fom) {
    STRATA_ASSIGN_OR_RETURN(c.spec.fail_over_mac, net::ParseFailOverMac(*fom, "failOverMac"));
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
  STRATA_ASSIGN_OR_RETURN(c.primary, GetString(j, "primary"));
  STRATA_RETURN_IF_ERROR(net::ValidateBond(c.spec, c.links, c.primary));
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
    return CheckMismatchError(name + " is in mode " + std::string(net::BondModeName(st.mode)) +
                              ", configured " + std::string(net::BondModeName(cfg.spec.mode)));
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
