#include "strata/cni/sriov_plugin.h"

#include <set>

#include "strata/cni/log.h"
#include "strata/cni/scope_guard.h"
#include "strata/cni/sriov_sim.h"
#include "strata/cni/sysfs.h"

namespace strata::cni {
namespace {

using nlohmann::json;

Result<std::optional<bool>> OnOff(const json& obj, const char* key) {
  STRATA_ASSIGN_OR_RETURN(auto v, GetString(obj, key));
  if (!v) return std::optional<bool>();
  if (*v == "on") return std::optional<bool>(true);
  if (*v == "off") return std::optional<bool>(false);
  return InvalidArgumentError(std::string(key) + ": '" + *v + "' is not \"on\" or \"off\"");
}

Result<std::optional<int>> IntIn(const json& obj, const char* key, int64_t lo, int64_t hi) {
  STRATA_ASSIGN_OR_RETURN(auto v, GetInt(obj, key));
  if (!v) return std::optional<int>();
  if (*v < lo || *v > hi) {
    return InvalidArgumentError(std::string(key) + ": " + std::to_string(*v) + " is outside " +
                                std::to_string(lo) + ".." + std::to_string(hi));
  }
  return std::optional<int>(static_cast<int>(*v));
}

// MAC, MTU and admin state of the VF netdev on the host back to what the record saw, in one
// request, only where they differ; absent is fine.
Status RestoreHostLink(net::NetlinkManager& host, const VfRecord& r) {
  auto link = host.GetLink(r.host_ifname);
  if (!link.ok()) return Status::Ok();
  net::LinkChange c;
  if (!r.host_mac.empty() && link->mac != r.host_mac) c.mac = r.host_mac;
  if (r.host_mtu > 0 && link->mtu != r.host_mtu) c.mtu = r.host_mtu;
  if (link->admin_up != r.host_admin_up) c.up = r.host_admin_up;
  if (!c.mac && !c.mtu && !c.up) return Status::Ok();
  return host.ChangeLink(r.host_ifname, c);
}

bool IsIpv6(const std::string& cidr) { return cidr.find(':') != std::string::npos; }

// The IPAM plugin's view of one attachment: the CNI_* of the call, or of the record (GC).
CniArgs ArgsFor(const CniArgs& call, const VfRecord& r) {
  CniArgs a = call;
  a.container_id = r.container_id;
  a.ifname = r.ifname;
  a.netns = r.netns;
  return a;
}

net::VfConfig FullConfig(const net::VfState& s) {
  net::VfConfig c;
  c.mac = s.mac;
  c.vlan = s.vlan;
  c.vlan_qos = s.vlan_qos;
  c.spoof_check = s.spoof_check;
  c.trust = s.trust;
  c.link_state = s.link_state;
  c.min_tx_rate_mbps = s.min_tx_rate_mbps;
  c.max_tx_rate_mbps = s.max_tx_rate_mbps;
  return c;
}

}  // namespace

SriovPlugin::Options SriovPlugin::Options::FromEnv(const std::map<std::string, std::string>& env) {
  Options o;
  if (auto it = env.find("STRATA_CNI_SYSFS_ROOT"); it != env.end() && !it->second.empty()) {
    o.sysfs_root = it->second;
  }
  if (auto it = env.find("STRATA_CNI_STATE_DIR"); it != env.end() && !it->second.empty()) {
    o.state_dir = it->second;
  }
  if (auto it = env.find("STRATA_CNI_SIMULATE_PF"); it != env.end()) {
    o.simulate_pf = it->second == "1" || it->second == "true";
  }
  if (auto it = env.find("STRATA_CNI_PODRESOURCES_SOCKET");
      it != env.end() && !it->second.empty()) {
    o.pod_resources_socket = it->second;
  }
  return o;
}

Result<SriovPlugin::Config> SriovPlugin::ParseConfig(const NetConf& conf, bool need_device) const {
  const json& j = conf.raw;
  Config c;
  STRATA_ASSIGN_OR_RETURN(auto sysfs, GetString(j, "sysfsRoot"));
  c.sysfs_root = sysfs.value_or(options_.sysfs_root);
  STRATA_ASSIGN_OR_RETURN(auto state, GetString(j, "stateDir"));
  c.state_dir = state.value_or(options_.state_dir);
  STRATA_ASSIGN_OR_RETURN(auto simulate, GetBool(j, "simulatePF"));
  c.simulate_pf = simulate.value_or(options_.simulate_pf);
  STRATA_ASSIGN_OR_RETURN(auto resource, GetString(j, "resourceName"));
  c.resource_name = resource.value_or("");
  if (resource && (resource->empty() || resource->find('/') == std::string::npos)) {
    return InvalidArgumentError("resourceName: '" + *resource +
                                "' is not an extended resource name (domain/name)");
  }
  STRATA_ASSIGN_OR_RETURN(auto podres, GetString(j, "podResourcesSocket"));
  c.pod_resources_socket = podres.value_or(options_.pod_resources_socket);
  if (j.contains("ipam") && !j["ipam"].is_null()) {
    if (!j["ipam"].is_object()) return InvalidArgumentError("ipam: must be an object");
    STRATA_ASSIGN_OR_RETURN(auto type, GetString(j["ipam"], "type", "ipam."));
    if (!type || type->empty()) return InvalidArgumentError("ipam.type: required");
    if (type->find('/') != std::string::npos || *type == "." || *type == "..") {
      return InvalidArgumentError("ipam.type: '" + *type + "' is not a plugin name");
    }
    c.ipam_type = *type;
  }
  STRATA_ASSIGN_OR_RETURN(auto rc_dev,
                          GetString(conf.runtime_config, "deviceID", "runtimeConfig."));
  STRATA_ASSIGN_OR_RETURN(auto dev, GetString(j, "deviceID"));
  c.device_id = rc_dev ? *rc_dev : dev.value_or("");
  if (need_device && c.device_id.empty() && c.resource_name.empty()) {
    return InvalidArgumentError(
        "deviceID: required (the VF's PCI address, from the device "
        "plugin or runtimeConfig.deviceID), or a resourceName to ask the kubelet for it");
  }
  STRATA_ASSIGN_OR_RETURN(auto rc_mac, GetString(conf.runtime_config, "mac", "runtimeConfig."));
  STRATA_ASSIGN_OR_RETURN(auto mac, GetString(j, "mac"));
  if (rc_mac || mac) {
    STRATA_ASSIGN_OR_RETURN(
        std::string m, ParseMac(rc_mac ? *rc_mac : *mac, rc_mac ? "runtimeConfig.mac" : "mac"));
    c.mac = m;
  }
  STRATA_ASSIGN_OR_RETURN(c.vlan, IntIn(j, "vlan", 0, 4094));
  STRATA_ASSIGN_OR_RETURN(c.vlan_qos, IntIn(j, "vlanQoS", 0, 7));
  if (c.vlan_qos.value_or(0) > 0 && c.vlan.value_or(0) == 0) {
    return InvalidArgumentError("vlanQoS: needs a non-zero vlan");
  }
  STRATA_ASSIGN_OR_RETURN(c.spoof_check, OnOff(j, "spoofchk"));
  STRATA_ASSIGN_OR_RETURN(c.trust, OnOff(j, "trust"));
  STRATA_ASSIGN_OR_RETURN(c.link_state, GetString(j, "link_state"));
  if (c.link_state && *c.link_state != "auto" && *c.link_state != "enable" &&
      *c.link_state != "disable") {
    return InvalidArgumentError("link_state: '" + *c.link_state +
                                "' is not one of auto, enable, disable");
  }
  STRATA_ASSIGN_OR_RETURN(c.min_tx_rate, IntIn(j, "min_tx_rate", 0, 1000000));
  STRATA_ASSIGN_OR_RETURN(c.max_tx_rate, IntIn(j, "max_tx_rate", 0, 1000000));
  if (c.min_tx_rate.value_or(0) > 0 && c.max_tx_rate.value_or(0) > 0 &&
      *c.min_tx_rate > *c.max_tx_rate) {
    return InvalidArgumentError("min_tx_rate: " + std::to_string(*c.min_tx_rate) +
                                " Mbps is above max_tx_rate " + std::to_string(*c.max_tx_rate));
  }
  STRATA_ASSIGN_OR_RETURN(auto mtu, IntIn(j, "mtu", 68, 65535));
  c.mtu = mtu.value_or(0);
  return c;
}

Result<net::NetlinkManagerPtr> SriovPlugin::OpenHost(const Config& cfg) {
  STRATA_ASSIGN_OR_RETURN(net::NetlinkManagerPtr host, netlink_->Open(""));
  // The sysfs root alone never decides: a host sysfs mounted at /host/sys is real hardware.
  if (!cfg.simulate_pf) return host;
  return NewSimulatedVfNetlinkManager(std::move(host), cfg.sysfs_root + "/strata-sim-vf");
}

Result<std::string> SriovPlugin::ResolveDevice(const CmdContext& ctx, const Config& cfg,
                                               bool for_add) {
  VfRecordStore store(cfg.state_dir);
  STRATA_ASSIGN_OR_RETURN(auto records, store.List());
  if (!for_add) {
    for (const VfRecord& r : records) {
      if (r.container_id == ctx.args.container_id && r.ifname == ctx.args.ifname) return r.pci;
    }
    return NotFoundError("resourceName: no VF of " + cfg.resource_name +
                         " is attached to this container as " + ctx.args.ifname);
  }
  auto [ns, pod] = PodFromCniArgs(ctx.args.args);
  if (ns.empty() || pod.empty()) {
    return FailedPreconditionError(
        "CNI_ARGS: K8S_POD_NAMESPACE and K8S_POD_NAME are needed to look up the VF of "
        "resourceName " +
        cfg.resource_name + " (or pass deviceID)");
  }
  auto ids = pods_->DeviceIds(ctx.args, cfg.pod_resources_socket, ns, pod, cfg.resource_name);
  if (!ids.ok()) {
    // A pod that holds no such device has a config it cannot use: code 7, not "try again".
    if (ids.status().code() == StatusCode::kNotFound) {
      return InvalidArgumentError(ids.status().message());
    }
    return ids.status();
  }
  // Another interface of this pod may already hold one of its VFs (two networks from one pool).
  for (const std::string& id : *ids) {
    bool taken = false;
    for (const VfRecord& r : records) {
      if (r.pci == id &&
          !(r.container_id == ctx.args.container_id && r.ifname == ctx.args.ifname)) {
        taken = true;
      }
    }
    if (!taken) return id;
  }
  // All held: the ADD of the first reports who holds it.
  return ids->front();
}

Status SriovPlugin::BringHome(net::NetlinkManager& pod, const std::string& name_in_pod,
                              const VfRecord& r) {
  net::LinkChange c;
  c.netns = "";  // the calling thread's: the host's
  c.name = r.host_ifname;
  if (!r.host_mac.empty()) c.mac = r.host_mac;
  if (r.host_mtu > 0) c.mtu = r.host_mtu;
  if (r.host_admin_up) c.up = true;  // the move leaves it down
  return pod.ChangeLink(name_in_pod, c);
}

Status SriovPlugin::Restore(const VfRecord& r, net::NetlinkManager& host, const Config& cfg) {
  Status first;
  auto note = [&first](Status s) {
    if (!s.ok() && first.ok()) first = std::move(s);
  };
  if (!r.userspace) {
    bool home = false;
    if (!r.netns.empty()) {
      auto pod = netlink_->Open(r.netns);
      if (pod.ok()) {
        // Only the pod's name identifies our VF there: a link carrying the host name could be
        // anything the pod made.
        if ((*pod)->GetLink(r.ifname).ok()) {
          Status s = BringHome(**pod, r.ifname, r);
          home = s.ok();
          note(std::move(s));
        }
      } else if (pod.status().code() != StatusCode::kNotFound) {
        note(pod.status());
      }
      // A namespace that is gone has already returned a real VF to the host.
    }
    if (!home) {
      // Back home some other way, possibly under a kernel-chosen name (a real VF whose namespace
      // died while its name was taken, or a BringHome that stopped half-way): sysfs knows its
      // current name.
      auto sysfs = NewSysfs(cfg.sysfs_root);
      auto loc = LocateVf(*sysfs, r.pci, "deviceID");
      if (loc.ok() && !loc->netdev.empty() && loc->netdev != r.host_ifname &&
          host.GetLink(loc->netdev).ok() && !host.GetLink(r.host_ifname).ok()) {
        note(host.SetLinkUp(loc->netdev, false));
        note(host.RenameLink(loc->netdev, r.host_ifname));
      }
      note(RestoreHostLink(host, r));
    }
  }
  note(host.SetVf(r.pf, r.vf_index, FullConfig(r.original)));
  return first;
}

Status SriovPlugin::Release(const VfRecord& listed, const Config& cfg, const CniArgs& args,
                            const NetConf& conf) {
  STRATA_ASSIGN_OR_RETURN(VfLock lock, VfLock::Acquire(cfg.state_dir, listed.pci));
  VfRecordStore store(cfg.state_dir);
  STRATA_ASSIGN_OR_RETURN(auto rec, store.Read(listed.pci));
  if (!rec || rec->container_id != listed.container_id || rec->ifname != listed.ifname) {
    return Status::Ok();  // released (and maybe handed on) while we waited for the lock
  }
  STRATA_ASSIGN_OR_RETURN(net::NetlinkManagerPtr host, OpenHost(cfg));
  STRATA_RETURN_IF_ERROR(Restore(*rec, *host, cfg));
  if (!rec->ipam_type.empty()) {
    // The plugin and config ADD used: a GC config, or a DEL config edited since, may differ.
    json ipam_conf = json::parse(rec->ipam_config, nullptr, false);
    if (ipam_conf.is_discarded() || !ipam_conf.is_object()) ipam_conf = conf.raw;
    auto del = ipam_->Run("DEL", ArgsFor(args, *rec), rec->ipam_type, ipam_conf);
    if (!del.ok()) return del.status();
  }
  return store.Remove(rec->pci);
}

Result<json> SriovPlugin::Add(const CmdContext& ctx) {
  STRATA_ASSIGN_OR_RETURN(Config cfg, ParseConfig(ctx.conf, /*need_device=*/true));
  const bool looked_up = cfg.device_id.empty();
  if (looked_up) {
    STRATA_ASSIGN_OR_RETURN(cfg.device_id, ResolveDevice(ctx, cfg, /*for_add=*/true));
  }
  auto sysfs = NewSysfs(cfg.sysfs_root);
  const std::string field = looked_up ? "resourceName " + cfg.resource_name + ": deviceID"
                            : ctx.conf.runtime_config.contains("deviceID")
                                ? "runtimeConfig.deviceID"
                                : "deviceID";
  STRATA_ASSIGN_OR_RETURN(VfLocation loc, LocateVf(*sysfs, cfg.device_id, field));
  if (loc.userspace && !cfg.ipam_type.empty()) {
    return InvalidArgumentError("ipam: VF " + loc.pci + " is bound to " + loc.driver +
                                " (passed through): it has no interface to put addresses on");
  }
  // Held until ADD returns: a concurrent ADD/DEL of this VF waits, then sees our record.
  STRATA_ASSIGN_OR_RETURN(VfLock lock, VfLock::Acquire(cfg.state_dir, loc.pci));
  VfRecordStore store(cfg.state_dir);
  STRATA_ASSIGN_OR_RETURN(auto existing, store.Read(loc.pci));
  if (existing) {
    if (existing->container_id == ctx.args.container_id && existing->ifname == ctx.args.ifname) {
      return AlreadyExistsError(field + ": VF " + loc.pci +
                                " is already attached to this "
                                "container as " +
                                existing->ifname);
    }
    return UnavailableError(field + ": VF " + loc.pci + " is held by container " +
                            existing->container_id + " as " + existing->ifname +
                            "; try again after its DEL");
  }
  if (!loc.userspace && loc.netdev.empty()) {
    return UnavailableError(field + ": VF " + loc.pci +
                            " has no interface in the host namespace (in use elsewhere?)");
  }
  STRATA_ASSIGN_OR_RETURN(net::NetlinkManagerPtr host, OpenHost(cfg));
  STRATA_ASSIGN_OR_RETURN(net::NetlinkManagerPtr pod, netlink_->Open(ctx.args.netns));
  if (!loc.userspace && pod->GetLink(ctx.args.ifname).ok()) {
    return AlreadyExistsError("CNI_IFNAME: " + ctx.args.ifname + " already exists in " +
                              ctx.args.netns);
  }

  VfRecord rec;
  rec.pci = loc.pci;
  rec.container_id = ctx.args.container_id;
  rec.ifname = ctx.args.ifname;
  rec.netns = ctx.args.netns;
  rec.pf = loc.pf_netdev;
  rec.vf_index = loc.vf_index;
  rec.userspace = loc.userspace;
  auto original = host->GetVf(loc.pf_netdev, loc.vf_index);
  if (!original.ok()) {
    return original.status().WithContext("VF " + loc.pci + " (VF " + std::to_string(loc.vf_index) +
                                         " of PF " + loc.pf_netdev + ")" +
                                         (cfg.simulate_pf ? "" : ": PF settings through netlink"));
  }
  rec.original = *original;
  if (!loc.userspace) {
    STRATA_ASSIGN_OR_RETURN(net::LinkInfo vf_link, host->GetLink(loc.netdev));
    rec.host_ifname = vf_link.name;
    rec.host_mac = vf_link.mac;
    rec.host_mtu = vf_link.mtu;
    rec.host_admin_up = vf_link.admin_up;
    rec.ipam_type = cfg.ipam_type;
    if (!cfg.ipam_type.empty()) {
      json stored = ctx.conf.raw;
      stored.erase("prevResult");  // IPAM DEL needs the network config, not the chain's state
      rec.ipam_config = stored.dump();
    }
  }
  // The record goes to disk before the first change, so even a crash mid-ADD leaves what DEL or
  // GC needs to put the VF back. Each later step registers its own undo.
  // Everything the undo steps refer to is declared before the UndoStack, which runs them when it
  // is destroyed, i.e. before anything declared after it.
  net::VfConfig vc;
  json result = ctx.conf.prev_result ? *ctx.conf.prev_result : json::object();
  ResultInterface iface;
  bool in_pod = false;            // where the VF netdev is...
  std::string name = loc.netdev;  // ...and under which name
  auto warn = [&rec](const char* what, const Status& s) {
    if (!s.ok()) LogWarning("undo of ADD for VF " + rec.pci + ": " + what + ": " + s.ToString());
  };
  STRATA_RETURN_IF_ERROR(store.Write(rec));
  UndoStack undo;
  undo.Push([&] { warn("remove record", store.Remove(rec.pci)); });
  // IPAM first: a pool that is exhausted or misconfigured fails the ADD before the VF is touched.
  // IPAM DEL is idempotent, so it is registered before the ADD and also covers an IPAM ADD that
  // failed after allocating.
  IpamConfig ip;
  if (!cfg.ipam_type.empty()) {
    undo.Push([&] {
      auto del = ipam_->Run("DEL", ctx.args, cfg.ipam_type, ctx.conf.raw);
      warn("IPAM DEL", del.ok() ? Status::Ok() : del.status());
    });
    STRATA_ASSIGN_OR_RETURN(json ipam_result,
                            ipam_->Run("ADD", ctx.args, cfg.ipam_type, ctx.conf.raw));
    STRATA_ASSIGN_OR_RETURN(ip, ParseIpamResult(ipam_result));
  }

  vc.mac = cfg.mac;
  vc.vlan = cfg.vlan;
  vc.vlan_qos = cfg.vlan_qos;
  vc.spoof_check = cfg.spoof_check;
  vc.trust = cfg.trust;
  vc.link_state = cfg.link_state;
  vc.min_tx_rate_mbps = cfg.min_tx_rate;
  vc.max_tx_rate_mbps = cfg.max_tx_rate;
  undo.Push([&] {
    warn("restore PF settings", host->SetVf(rec.pf, rec.vf_index, FullConfig(rec.original)));
  });
  STRATA_RETURN_IF_ERROR(host->SetVf(loc.pf_netdev, loc.vf_index, vc));

  iface.name = ctx.args.ifname;
  iface.sandbox = ctx.args.netns;
  iface.pci_id = loc.pci;
  if (!loc.userspace) {
    undo.Push([&] {
      if (in_pod) {
        warn("bring the VF home", BringHome(*pod, name, rec));
      } else {
        warn("restore the VF netdev", RestoreHostLink(*host, rec));
      }
    });
    // Into the pod, renamed, MAC and MTU set and up: one RTM_NEWLINK, one rtnl_lock (the move
    // closes the link itself, so no separate "down" first).
    net::LinkChange change;
    change.netns = ctx.args.netns;
    change.name = ctx.args.ifname;
    change.mac = cfg.mac;
    if (cfg.mtu > 0) change.mtu = cfg.mtu;
    change.up = true;
    Status moved = host->ChangeLink(loc.netdev, change);
    if (!moved.ok()) {
      // The kernel stops at the first failing step: the link may be in the pod already, under
      // either name (CNI_IFNAME was free there before the call, so finding it means ours).
      for (const std::string& n : {ctx.args.ifname, loc.netdev}) {
        if (pod->GetLink(n).ok()) {
          in_pod = true;
          name = n;
          break;
        }
      }
      return moved;
    }
    in_pod = true;
    name = ctx.args.ifname;
    STRATA_ASSIGN_OR_RETURN(net::LinkInfo link, pod->GetLink(ctx.args.ifname));
    iface.mac = link.mac;
    iface.mtu = link.mtu;
    // IPAM's addresses and routes, on the link now that it is up (a route via a gateway needs
    // it up). The move home drops them again.
    for (const auto& a : ip.ips) {
      STRATA_RETURN_IF_ERROR(pod->AddAddress(ctx.args.ifname, a.address));
    }
    for (const auto& r : ip.routes) {
      std::string gw = r.gw;
      if (gw.empty()) {
        // CNI: a route without gw goes via the gateway of its family, when IPAM gave one.
        for (const auto& a : ip.ips) {
          if (!a.gateway.empty() && IsIpv6(a.gateway) == IsIpv6(r.dst)) {
            gw = a.gateway;
            break;
          }
        }
      }
      STRATA_RETURN_IF_ERROR(pod->AddRoute(ctx.args.ifname, r.dst, gw));
    }
  } else if (cfg.mac) {
    iface.mac = *cfg.mac;
  }
  const int index = AppendInterface(result, iface);
  for (const auto& a : ip.ips) {
    json entry = {{"address", a.address}, {"interface", index}};
    if (!a.gateway.empty()) entry["gateway"] = a.gateway;
    result["ips"].push_back(entry);
  }
  for (const auto& r : ip.routes) {
    json entry = {{"dst", r.dst}};
    if (!r.gw.empty()) entry["gw"] = r.gw;
    result["routes"].push_back(entry);
  }
  if (!ip.dns.is_null() && !ip.dns.empty() && !result.contains("dns")) result["dns"] = ip.dns;
  undo.Dismiss();
  return result;
}

Status SriovPlugin::Del(const CmdContext& ctx) {
  // Lenient: DEL must work even for a config that no longer parses in full.
  auto cfg = ParseConfig(ctx.conf, /*need_device=*/false);
  Config c;
  if (cfg.ok()) {
    c = *cfg;
  } else {
    c.sysfs_root = options_.sysfs_root;
    c.state_dir = options_.state_dir;
    c.simulate_pf = options_.simulate_pf;
  }
  VfRecordStore store(c.state_dir);
  STRATA_ASSIGN_OR_RETURN(auto records, store.List());
  bool released = false;
  for (const VfRecord& r : records) {
    // Only the attachment that holds the record may reset the VF: one handed to another pod since
    // has a record naming that pod.
    if (r.container_id != ctx.args.container_id || r.ifname != ctx.args.ifname) continue;
    STRATA_RETURN_IF_ERROR(Release(r, c, ctx.args, ctx.conf));
    released = true;
  }
  if (!released && !c.ipam_type.empty()) {
    // No record (an ADD that never got far, or a repeated DEL): IPAM DEL anyway, as the spec
    // asks; it is idempotent.
    auto del = ipam_->Run("DEL", ctx.args, c.ipam_type, ctx.conf.raw);
    if (!del.ok()) return del.status();
  }
  return Status::Ok();
}

Status SriovPlugin::Check(const CmdContext& ctx) {
  STRATA_ASSIGN_OR_RETURN(Config cfg, ParseConfig(ctx.conf, /*need_device=*/true));
  if (cfg.device_id.empty()) {
    auto id = ResolveDevice(ctx, cfg, /*for_add=*/false);
    if (!id.ok()) return CheckMismatchError(id.status().message());
    cfg.device_id = *id;
  }
  STRATA_ASSIGN_OR_RETURN(VfLock lock, VfLock::Acquire(cfg.state_dir, cfg.device_id));
  VfRecordStore store(cfg.state_dir);
  STRATA_ASSIGN_OR_RETURN(auto rec, store.Read(cfg.device_id));
  if (!rec || rec->container_id != ctx.args.container_id || rec->ifname != ctx.args.ifname) {
    return CheckMismatchError("VF " + cfg.device_id + " is not attached to this container as " +
                              ctx.args.ifname);
  }
  STRATA_ASSIGN_OR_RETURN(net::NetlinkManagerPtr host, OpenHost(cfg));
  if (!rec->userspace) {
    STRATA_ASSIGN_OR_RETURN(net::NetlinkManagerPtr pod, netlink_->Open(ctx.args.netns));
    auto link = pod->GetLink(ctx.args.ifname);
    if (!link.ok()) return CheckMismatchError(ctx.args.ifname + " is missing from the pod");
    if (cfg.mac && link->mac != *cfg.mac) {
      return CheckMismatchError(ctx.args.ifname + " has MAC " + link->mac + ", configured " +
                                *cfg.mac);
    }
    if (cfg.mtu > 0 && link->mtu != cfg.mtu) {
      return CheckMismatchError(ctx.args.ifname + " has MTU " + std::to_string(link->mtu) +
                                ", configured " + std::to_string(cfg.mtu));
    }
  }
  STRATA_ASSIGN_OR_RETURN(net::VfState vf, host->GetVf(rec->pf, rec->vf_index));
  auto differs = [&](const char* what, auto want, auto got) -> Status {
    if (want && *want != got) {
      return CheckMismatchError("VF " + rec->pci + ": " + what + " differs from the config");
    }
    return Status::Ok();
  };
  STRATA_RETURN_IF_ERROR(differs("vlan", cfg.vlan, vf.vlan));
  STRATA_RETURN_IF_ERROR(differs("vlanQoS", cfg.vlan_qos, vf.vlan_qos));
  STRATA_RETURN_IF_ERROR(differs("spoofchk", cfg.spoof_check, vf.spoof_check));
  STRATA_RETURN_IF_ERROR(differs("trust", cfg.trust, vf.trust));
  STRATA_RETURN_IF_ERROR(differs("link_state", cfg.link_state, vf.link_state));
  STRATA_RETURN_IF_ERROR(differs("min_tx_rate", cfg.min_tx_rate, vf.min_tx_rate_mbps));
  STRATA_RETURN_IF_ERROR(differs("max_tx_rate", cfg.max_tx_rate, vf.max_tx_rate_mbps));
  if (!cfg.ipam_type.empty()) {
    auto check = ipam_->Run("CHECK", ctx.args, cfg.ipam_type, ctx.conf.raw);
    if (!check.ok()) return check.status();
  }
  return Status::Ok();
}

Status SriovPlugin::Gc(const CmdContext& ctx) {
  STRATA_ASSIGN_OR_RETURN(Config cfg, ParseConfig(ctx.conf, /*need_device=*/false));
  STRATA_ASSIGN_OR_RETURN(auto valid_list, ParseValidAttachments(ctx.conf));
  std::set<Attachment> valid(valid_list.begin(), valid_list.end());
  VfRecordStore store(cfg.state_dir);
  STRATA_ASSIGN_OR_RETURN(auto records, store.List());
  Status first_error;
  for (const VfRecord& r : records) {
    if (valid.count({r.container_id, r.ifname})) continue;
    Status s = Release(r, cfg, ctx.args, ctx.conf);
    if (!s.ok() && first_error.ok()) first_error = s.WithContext("GC of VF " + r.pci);
  }
  return first_error;
}

Status SriovPlugin::Ready(const CmdContext& ctx) {
  STRATA_ASSIGN_OR_RETURN(Config cfg, ParseConfig(ctx.conf, /*need_device=*/false));
  VfRecordStore store(cfg.state_dir);
  Status s = store.EnsureDir();
  if (!s.ok()) return s.WithContext("state directory " + cfg.state_dir);
  auto sysfs = NewSysfs(cfg.sysfs_root);
  if (!sysfs->Exists("bus/pci/devices")) {
    return UnavailableError(cfg.sysfs_root + "/bus/pci/devices does not exist");
  }
  return Status::Ok();
}

}  // namespace strata::cni
