#include "strata/cni/vnc_plugin.h"

#include <unistd.h>

#include <ctime>
#include <set>

#include "strata/cni/log.h"
#include "strata/cni/scope_guard.h"

namespace strata::cni {

using net::LinkChange;
using net::LinkInfo;
using net::NetlinkManagerPtr;

namespace {

using nlohmann::json;

std::string NowRfc3339() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// "VirtualMachine/db-vm" -> key in `ns`. INVALID_ARGUMENT naming `field`.
Result<vnc::WorkloadKey> ParseWorkloadKey(std::string_view text, const std::string& ns,
                                          const std::string& field) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) {
    return InvalidArgumentError(field + ": \"" + std::string(text) +
                                "\" is not KIND/NAME (VirtualMachine/NAME or Pod/NAME)");
  }
  vnc::WorkloadKey key{ns, std::string(text.substr(0, slash)), std::string(text.substr(slash + 1))};
  Status s = vnc::ValidateWorkloadKey(key, field);
  if (!s.ok()) return s;
  return key;
}

// The CNI_IFNAME's parent name in VLAN device mode.
std::string ParentName(const std::string& ifname) { return ifname.substr(0, 10) + "-raw"; }

// The result's interfaces[] index of `name` in `sandbox`, or -1.
int FindInterface(const json& result, const std::string& name, const std::string& sandbox) {
  auto it = result.find("interfaces");
  if (it == result.end() || !it->is_array()) return -1;
  for (size_t i = 0; i < it->size(); ++i) {
    const json& e = (*it)[i];
    if (e.value("name", "") == name && e.value("sandbox", "") == sandbox) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

}  // namespace

Result<std::map<std::string, std::string>> ParseCniArgsString(std::string_view args) {
  std::map<std::string, std::string> out;
  while (!args.empty()) {
    size_t semi = args.find(';');
    std::string_view pair = args.substr(0, semi);
    args = semi == std::string_view::npos ? std::string_view() : args.substr(semi + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos) {
      return FailedPreconditionError("CNI_ARGS: \"" + std::string(pair) + "\" is not KEY=VALUE");
    }
    out[std::string(pair.substr(0, eq))] = std::string(pair.substr(eq + 1));
  }
  return out;
}

VncPlugin::Options VncPlugin::Options::FromEnv(const std::map<std::string, std::string>& env) {
  Options o;
  if (auto it = env.find("STRATA_CNI_VNC_STORE_DIR"); it != env.end() && !it->second.empty()) {
    o.store_dir = it->second;
  }
  return o;
}

Result<VncPlugin::Config> VncPlugin::ParseConfig(const CmdContext& ctx) const {
  const json& raw = ctx.conf.raw;
  Config cfg;
  STRATA_ASSIGN_OR_RETURN(auto dir, GetString(raw, "storeDir"));
  cfg.store_dir = dir && !dir->empty() ? *dir : options_.store_dir;
  STRATA_ASSIGN_OR_RETURN(cfg.interface, GetString(raw, "interface"));
  if (cfg.interface) STRATA_RETURN_IF_ERROR(ValidateIfName(*cfg.interface, "interface"));
  STRATA_ASSIGN_OR_RETURN(auto mode, GetString(raw, "vlanMode"));
  if (mode && *mode != "device" && *mode != "external") {
    return InvalidArgumentError("vlanMode: \"" + *mode + "\" is not one of device, external");
  }
  cfg.vlan_device = !mode || *mode == "device";
  STRATA_ASSIGN_OR_RETURN(auto wait, GetUint(raw, "podIndexWaitMilliseconds"));
  if (wait) {
    if (*wait > 60000) {
      return InvalidArgumentError("podIndexWaitMilliseconds: " + std::to_string(*wait) +
                                  " is above 60000");
    }
    cfg.pod_index_wait = std::chrono::milliseconds(*wait);
  }
  STRATA_ASSIGN_OR_RETURN(auto required, GetBool(raw, "required"));
  cfg.required = required.value_or(false);

  STRATA_ASSIGN_OR_RETURN(auto args, ParseCniArgsString(ctx.args.args));
  cfg.pod_namespace = args["K8S_POD_NAMESPACE"];
  cfg.pod_name = args["K8S_POD_NAME"];
  cfg.pod_uid = args["K8S_POD_UID"];

  // The explicit key: the config's "workload", or args.cni.workload (CNI conventions' "args",
  // which Multus fills from a network selection's "cni-args").
  std::optional<std::string> workload;
  STRATA_ASSIGN_OR_RETURN(workload, GetString(raw, "workload"));
  std::string field = "workload";
  if (!workload) {
    if (auto a = raw.find("args"); a != raw.end() && a->is_object()) {
      if (auto c = a->find("cni"); c != a->end() && c->is_object()) {
        STRATA_ASSIGN_OR_RETURN(workload, GetString(*c, "workload", "args.cni."));
        field = "args.cni.workload";
      }
    }
  }
  if (workload) {
    if (cfg.pod_namespace.empty()) {
      return FailedPreconditionError("CNI_ARGS: K8S_POD_NAMESPACE is required with " + field);
    }
    STRATA_ASSIGN_OR_RETURN(auto key, ParseWorkloadKey(*workload, cfg.pod_namespace, field));
    cfg.workload = key;
  }
  return cfg;
}

Result<const vnc::InterfaceConfig*> VncPlugin::PickInterface(const vnc::WorkloadConfig& config,
                                                             const Config& cfg,
                                                             const std::string& ifname) {
  if (cfg.interface) {
    if (const auto* i = config.FindInterface(*cfg.interface)) return i;
    return InvalidArgumentError("interface: \"" + *cfg.interface + "\" is not an interface of " +
                                "VirtualNetworkConfig " + config.source.namespace_ + "/" +
                                config.source.name);
  }
  if (const auto* i = config.FindInterface(ifname)) return i;
  if (config.interfaces.size() == 1) return &config.interfaces[0];
  return InvalidArgumentError("interface: required: VirtualNetworkConfig " +
                              config.source.namespace_ + "/" + config.source.name + " has " +
                              std::to_string(config.interfaces.size()) +
                              " interfaces and none is named " + ifname);
}

Result<json> VncPlugin::Add(const CmdContext& ctx) {
  STRATA_ASSIGN_OR_RETURN(Config cfg, ParseConfig(ctx));
  json result = ctx.conf.prev_result ? *ctx.conf.prev_result : json::object();
  if (cfg.pod_namespace.empty() || cfg.pod_name.empty()) {
    if (cfg.required) {
      return FailedPreconditionError(
          "CNI_ARGS: K8S_POD_NAMESPACE and K8S_POD_NAME are required to find the workload");
    }
    return result;
  }
  vnc::NodeStore store(cfg.store_dir);
  vnc::ResolveRequest request{cfg.pod_namespace, cfg.pod_name, cfg.pod_uid, cfg.workload,
                              cfg.pod_index_wait};
  auto resolved = vnc::ResolveForPod(store, request);
  if (!resolved.ok()) {
    // A corrupt record is plugin state that cannot be read (code 5).
    if (resolved.status().code() == StatusCode::kDataLoss) {
      return IoFailureError(resolved.status().message());
    }
    return resolved.status();
  }
  if (!resolved->config) {
    if (cfg.required) {
      return UnavailableError("no VirtualNetworkConfig for pod " + cfg.pod_namespace + "/" +
                              cfg.pod_name + " in " + cfg.store_dir +
                              " (not replicated to this node yet?)");
    }
    return result;
  }
  const vnc::WorkloadConfig& config = *resolved->config;
  STRATA_ASSIGN_OR_RETURN(const vnc::InterfaceConfig* iface,
                          PickInterface(config, cfg, ctx.args.ifname));

  STRATA_ASSIGN_OR_RETURN(NetlinkManagerPtr pod, netlink_->Open(ctx.args.netns));
  auto link = pod->GetLink(ctx.args.ifname);
  if (!link.ok()) {
    if (link.status().code() != StatusCode::kNotFound) return link.status();
    return FailedPreconditionError("CNI_IFNAME: " + ctx.args.ifname + " not found in " +
                                   ctx.args.netns +
                                   " (strata-vnc is chained after the plugin that makes it)");
  }
  const LinkInfo original = *link;
  const bool vlan_device = cfg.vlan_device && iface->vlan && *iface->vlan > 0;
  const std::string parent = vlan_device ? ParentName(ctx.args.ifname) : ctx.args.ifname;

  UndoStack undo;
  // The attachment's link: MAC and MTU (down first: not every driver takes a MAC while up).
  STRATA_RETURN_IF_ERROR(pod->SetLinkUp(ctx.args.ifname, false));
  undo.Push([&pod, &original, &parent] {
    LinkChange back;
    back.mac = original.mac;
    back.mtu = original.mtu;
    if (parent != original.name) back.name = original.name;
    back.up = original.admin_up;
    (void)pod->SetLinkUp(parent, false);
    (void)pod->ChangeLink(parent, back);
  });
  LinkChange change;
  if (!iface->mac.empty()) change.mac = iface->mac;
  change.mtu = iface->mtu;
  if (vlan_device) change.name = parent;
  change.up = true;
  STRATA_RETURN_IF_ERROR(pod->ChangeLink(ctx.args.ifname, change));
  if (vlan_device) {
    STRATA_RETURN_IF_ERROR(pod->CreateVlan(ctx.args.ifname, parent, *iface->vlan, iface->mtu));
    undo.Push([&pod, &ctx] { (void)pod->DeleteLink(ctx.args.ifname); });
    LinkChange vlan_change;
    if (!iface->mac.empty()) vlan_change.mac = iface->mac;
    vlan_change.up = true;
    STRATA_RETURN_IF_ERROR(pod->ChangeLink(ctx.args.ifname, vlan_change));
  }
  for (const std::string& cidr : iface->addresses) {
    Status s = pod->AddAddress(ctx.args.ifname, cidr);
    if (!s.ok() && s.code() != StatusCode::kAlreadyExists) return s;  // a repeated ADD: there
  }
  for (const auto& route : config.routes) {
    Status s = pod->AddRoute(ctx.args.ifname, route.destination, route.gateway);
    if (!s.ok() && s.code() != StatusCode::kAlreadyExists) return s;
  }

  // The result, per CNI 1.1, on top of prevResult.
  if (vlan_device) {
    STRATA_ASSIGN_OR_RETURN(LinkInfo p, pod->GetLink(parent));
    int idx = FindInterface(result, original.name, ctx.args.netns);
    if (idx >= 0) {
      result["interfaces"][idx]["name"] = p.name;
      result["interfaces"][idx]["mac"] = p.mac;
      result["interfaces"][idx]["mtu"] = p.mtu;
    } else {
      AppendInterface(result, {p.name, p.mac, ctx.args.netns, p.mtu, "", ""});
    }
  }
  STRATA_ASSIGN_OR_RETURN(LinkInfo target, pod->GetLink(ctx.args.ifname));
  int idx = vlan_device ? -1 : FindInterface(result, ctx.args.ifname, ctx.args.netns);
  if (idx >= 0) {
    result["interfaces"][idx]["mac"] = target.mac;
    result["interfaces"][idx]["mtu"] = target.mtu;
  } else {
    idx = AppendInterface(result, {target.name, target.mac, ctx.args.netns, target.mtu, "", ""});
  }
  if (!iface->addresses.empty() && !result.contains("ips")) result["ips"] = json::array();
  for (const std::string& cidr : iface->addresses) {
    result["ips"].push_back({{"address", cidr}, {"interface", idx}});
  }
  if (!config.routes.empty() && !result.contains("routes")) result["routes"] = json::array();
  for (const auto& route : config.routes) {
    json r = {{"dst", route.destination}};
    if (!route.gateway.empty()) r["gw"] = route.gateway;
    result["routes"].push_back(r);
  }
  if (config.dns) {
    json dns = json::object();
    if (!config.dns->nameservers.empty()) dns["nameservers"] = config.dns->nameservers;
    if (!config.dns->searches.empty()) dns["search"] = config.dns->searches;
    result["dns"] = dns;
  }
  json ext = {{"workload", config.workload.ToString()},
              {"source", config.source.namespace_ + "/" + config.source.name},
              {"resourceVersion", config.source.resource_version},
              {"generation", config.source.generation},
              {"resolvedBy", std::string(vnc::ResolutionName(resolved->how))},
              {"interface", iface->name}};
  if (iface->vlan) {
    ext["vlan"] = *iface->vlan;
    ext["vlanMode"] = vlan_device ? "device" : (cfg.vlan_device ? "untagged" : "external");
  }
  if (iface->bond) {
    ext["bond"] = {{"mode", iface->bond->mode},
                   {"members", iface->bond->members},
                   {"miimonMilliseconds", iface->bond->miimon_ms}};
  }
  result["strata.io/vnc"] = ext;

  vnc::AppliedRecord record;
  record.container_id = ctx.args.container_id;
  record.ifname = ctx.args.ifname;
  record.pod_namespace = cfg.pod_namespace;
  record.pod_name = cfg.pod_name;
  record.pod_uid = cfg.pod_uid;
  record.workload = config.workload;
  record.source = config.source;
  record.interface = iface->name;
  record.mac = target.mac;
  record.applied_at = NowRfc3339();
  Status s = store.PutApplied(record);
  if (!s.ok()) {
    return s.code() == StatusCode::kInvalidArgument ? s : IoFailureError(s.message());
  }
  undo.Dismiss();
  return result;
}

Status VncPlugin::Del(const CmdContext& ctx) {
  auto cfg = ParseConfig(ctx);
  // Lenient: DEL must work for a config that no longer parses (the default store then).
  vnc::NodeStore store(cfg.ok() ? cfg->store_dir : options_.store_dir);
  if (!ctx.args.netns.empty()) {
    auto pod = netlink_->Open(ctx.args.netns);
    if (!pod.ok() && pod.status().code() != StatusCode::kNotFound) return pod.status();
    if (pod.ok()) {
      // Ours when CNI_IFNAME is a VLAN whose lower device is <ifname>-raw: delete it and give
      // the lower device its name back for the plugin before us.
      auto link = (*pod)->GetLink(ctx.args.ifname);
      if (!link.ok() && link.status().code() != StatusCode::kNotFound) return link.status();
      const std::string parent = ParentName(ctx.args.ifname);
      if (link.ok() && link->kind == "vlan") {
        auto lower = (*pod)->GetLinkByIndex(link->peer_index);
        if (lower.ok() && lower->name == parent) {
          Status s = (*pod)->DeleteLink(ctx.args.ifname);
          if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
          link = Status(StatusCode::kNotFound, "deleted");
        }
      }
      if (!link.ok()) {
        auto p = (*pod)->GetLink(parent);
        if (p.ok()) {
          LinkChange back;
          back.name = ctx.args.ifname;
          STRATA_RETURN_IF_ERROR((*pod)->SetLinkUp(parent, false));
          STRATA_RETURN_IF_ERROR((*pod)->ChangeLink(parent, back));
        }
      }
    }
  }
  Status s = store.RemoveApplied(ctx.args.container_id, ctx.args.ifname);
  return s.ok() ? s : IoFailureError(s.message());
}

Status VncPlugin::Check(const CmdContext& ctx) {
  STRATA_ASSIGN_OR_RETURN(Config cfg, ParseConfig(ctx));
  vnc::NodeStore store(cfg.store_dir);
  auto record = store.GetApplied(ctx.args.container_id, ctx.args.ifname);
  if (!record.ok()) {
    if (record.status().code() != StatusCode::kNotFound)
      return IoFailureError(record.status().message());
    return Status::Ok();  // ADD found no configuration for this pod: nothing of ours to check
  }
  auto config = store.Get(record->workload);
  if (!config.ok()) {
    return CheckMismatchError("workload " + record->workload.ToString() +
                              ": no longer in the node-local store: " + config.status().message());
  }
  const vnc::InterfaceConfig* iface = config->FindInterface(record->interface);
  if (!iface) {
    return CheckMismatchError("interface " + record->interface + ": no longer in " +
                              config->workload.ToString());
  }
  STRATA_ASSIGN_OR_RETURN(NetlinkManagerPtr pod, netlink_->Open(ctx.args.netns));
  auto link = pod->GetLink(ctx.args.ifname);
  if (!link.ok()) return CheckMismatchError(ctx.args.ifname + ": " + link.status().message());
  if (!iface->mac.empty() && link->mac != iface->mac) {
    return CheckMismatchError(ctx.args.ifname + ": MAC " + link->mac + ", configured " +
                              iface->mac);
  }
  if (link->mtu != iface->mtu) {
    return CheckMismatchError(ctx.args.ifname + ": MTU " + std::to_string(link->mtu) +
                              ", configured " + std::to_string(iface->mtu));
  }
  if (cfg.vlan_device && iface->vlan && *iface->vlan > 0 &&
      (link->kind != "vlan" || link->vlan_id != *iface->vlan)) {
    return CheckMismatchError(ctx.args.ifname + ": not VLAN " + std::to_string(*iface->vlan));
  }
  return Status::Ok();
}

Status VncPlugin::Gc(const CmdContext& ctx) {
  STRATA_ASSIGN_OR_RETURN(auto valid, ParseValidAttachments(ctx.conf));
  std::set<Attachment> keep(valid.begin(), valid.end());
  auto cfg = ParseConfig(ctx);
  vnc::NodeStore store(cfg.ok() ? cfg->store_dir : options_.store_dir);
  for (const auto& r : store.ListApplied()) {
    if (keep.count({r.container_id, r.ifname})) continue;
    Status s = store.RemoveApplied(r.container_id, r.ifname);
    if (!s.ok()) return IoFailureError(s.message());
  }
  return Status::Ok();
}

Status VncPlugin::Ready(const CmdContext& ctx) {
  auto cfg = ParseConfig(ctx);
  std::string dir = cfg.ok() ? cfg->store_dir : options_.store_dir;
  if (::access((dir + "/configs").c_str(), R_OK | X_OK) != 0) {
    return UnavailableError("node-local store " + dir +
                            " not readable (strata-netd not running on this node?)");
  }
  return Status::Ok();
}

}  // namespace strata::cni
