#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include "strata/cni/skel.h"
#include "strata/net/netlink.h"
#include "strata/vnc/node_store.h"
#include "strata/vnc/resolve.h"

namespace strata::cni {

// strata-vnc (issue #12, VirtualNetworkConfig): a chained plugin that gives a pod's interface the
// configuration its workload has in the node-local store (libs/vnc; written by strata-netd from
// the cluster's VirtualNetworkConfigs), so a VM or pod gets the identical interface on any node,
// without asking the apiserver. Runs after the plugin that made CNI_IFNAME (strata-sriov,
// bridge, macvlan, ...):
//   {"type":"strata-vnc",
//    "storeDir":"/var/lib/strata-netd/vnc",   (env STRATA_CNI_VNC_STORE_DIR when absent)
//    "interface":"sriov",        which of the configuration's interfaces this attachment is;
//                                default: the one named CNI_IFNAME, else the only one
//    "workload":"VirtualMachine/db-vm",      explicit workload key (also args.cni.workload)
//    "vlanMode":"device"|"external",
//                                device (default): a VLAN id > 0 makes CNI_IFNAME an 802.1Q
//                                device on the attachment's link, renamed CNI_IFNAME's first 10
//                                bytes + "-raw"; external: the tag is applied outside the pod (the
//                                PF for an SR-IOV VF, the bridge port): only reported
//    "podIndexWaitMilliseconds":2000,        see vnc::ResolveRequest
//    "required":false}           true: a pod without configuration fails ADD with code 11
// The pod is found from CNI_ARGS K8S_POD_NAMESPACE/K8S_POD_NAME/K8S_POD_UID through
// vnc::ResolveForPod (the agent's pod index, then the virt-launcher name, then the pod name).
//
// ADD: MAC (link set down, then MAC + MTU + up in one RTM_NEWLINK), MTU, the VLAN device,
// addresses, routes (via CNI_IFNAME) and DNS, reported per CNI 1.1 (interfaces[].mac/mtu, ips,
// routes, dns, on top of prevResult) plus a "strata.io/vnc" object with the workload, the source
// object and version, how it was resolved, the VLAN (and mode) and bond settings. It then writes
// an applied record (vnc::AppliedRecord) that the agent reports in the object's status. A pod
// with no configuration passes prevResult through unchanged. A failed ADD restores the link's
// MAC, MTU, name and removes the VLAN device (addresses and routes it added go with the link
// when the runtime runs DEL of the chain).
// DEL: removes the VLAN device and gives the link its name back (so the plugin before us finds
// CNI_IFNAME), removes the applied record; idempotent. CHECK: the link's MAC and MTU (and VLAN
// id in device mode) are the configuration's. GC: applied records of attachments not in
// cni.dev/valid-attachments are removed. STATUS: the store directory is readable.
class VncPlugin final : public Plugin {
 public:
  struct Options {
    std::string store_dir = vnc::kDefaultStoreDir;
    // Env: STRATA_CNI_VNC_STORE_DIR.
    static Options FromEnv(const std::map<std::string, std::string>& env);
  };

  VncPlugin(net::NetlinkFactory* netlink, Options options) : netlink_(netlink), options_(options) {}

  Result<nlohmann::json> Add(const CmdContext& ctx) override;
  Status Del(const CmdContext& ctx) override;
  Status Check(const CmdContext& ctx) override;
  Status Gc(const CmdContext& ctx) override;
  Status Ready(const CmdContext& ctx) override;

  struct Config {
    std::string store_dir;
    std::optional<std::string> interface;
    std::optional<vnc::WorkloadKey> workload;  // namespace from K8S_POD_NAMESPACE
    bool vlan_device = true;
    std::chrono::milliseconds pod_index_wait{2000};
    bool required = false;
    // From CNI_ARGS.
    std::string pod_namespace, pod_name, pod_uid;
  };
  Result<Config> ParseConfig(const CmdContext& ctx) const;

 private:
  // The configuration's interface this attachment is (see "interface" above).
  static Result<const vnc::InterfaceConfig*> PickInterface(const vnc::WorkloadConfig& config,
                                                           const Config& cfg,
                                                           const std::string& ifname);

  net::NetlinkFactory* netlink_;
  Options options_;
};

// "K8S_POD_NAME=a;K8S_POD_NAMESPACE=b" -> map. FAILED_PRECONDITION (code 4, invalid environment)
// naming CNI_ARGS when a pair has no '='.
Result<std::map<std::string, std::string>> ParseCniArgsString(std::string_view args);

}  // namespace strata::cni
