#pragma once

#include <map>
#include <optional>
#include <string>

#include "strata/cni/ipam.h"
#include "strata/cni/pod_devices.h"
#include "strata/cni/skel.h"
#include "strata/cni/sriov_state.h"
#include "strata/net/netlink.h"

namespace strata::cni {

// strata-sriov: moves an SR-IOV VF (by PCI address) into the pod, named CNI_IFNAME, and sets it up
// through its PF; DEL puts everything back as it was. Config (sriov-cni's field names):
//   {"type":"strata-sriov", "deviceID":"0000:03:02.0", "mac":"..", "vlan":100, "vlanQoS":0,
//    "spoofchk":"on"|"off", "trust":"on"|"off", "link_state":"auto"|"enable"|"disable",
//    "min_tx_rate":Mbps, "max_tx_rate":Mbps, "mtu":9000, "sysfsRoot":"/sys", "stateDir":"..",
//    "resourceName":"strata.io/sriov-fast", "podResourcesSocket":"..", "simulatePF":false}
// runtimeConfig.deviceID / runtimeConfig.mac (CNI conventions) win over the top-level fields.
// Without a deviceID, `resourceName` makes ADD ask the kubelet's PodResources API which VFs of
// that resource the pod (CNI_ARGS K8S_POD_NAMESPACE/K8S_POD_NAME) was allocated, and take the
// first one not already attached to another of its interfaces (pod_devices.h); CHECK and DEL find
// the VF in the attachment's record.
// A VF bound to vfio-pci/igb_uio/uio_pci_generic is passed through: PF settings are applied, no
// interface moves, the result carries its pciID.
// An `ipam` section is delegated (ipam.h): ADD runs the IPAM plugin's ADD and puts its addresses
// and routes on the VF inside the pod; DEL (and GC of a vanished attachment) its DEL; CHECK its
// CHECK. A failed ADD undoes the IPAM ADD too. Not for userspace VFs (no netdev to configure).
// Every command on a VF holds its VfLock (sriov_state.h).
// `sysfsRoot` only says where sysfs is (a DaemonSet may mount the host's at /host/sys): the
// PF-level settings always go to the real PF through netlink, unless the TEST-ONLY switch
// "simulatePF" (env STRATA_CNI_SIMULATE_PF=1) is on: see sriov_sim.h.
class SriovPlugin final : public Plugin {
 public:
  struct Options {
    std::string sysfs_root = "/sys";
    std::string state_dir = "/var/lib/cni/strata-sriov";
    // TEST ONLY: keep the PF-level VF settings in files instead of netlink (sriov_sim.h).
    bool simulate_pf = false;
    std::string pod_resources_socket = kDefaultPodResourcesSocket;
    // STRATA_CNI_SYSFS_ROOT, STRATA_CNI_STATE_DIR, STRATA_CNI_SIMULATE_PF ("1"/"true"),
    // STRATA_CNI_PODRESOURCES_SOCKET.
    static Options FromEnv(const std::map<std::string, std::string>& env);
  };

  // `netlink`, `ipam` and `pods` must outlive the plugin; `pods` null: strata-podresources.
  SriovPlugin(net::NetlinkFactory* netlink, IpamRunner* ipam, Options options,
              PodDeviceLookup* pods = nullptr)
      : netlink_(netlink),
        ipam_(ipam),
        options_(std::move(options)),
        pods_(pods),
        own_pods_(pods == nullptr ? NewExecPodDeviceLookup() : nullptr) {
    if (pods_ == nullptr) pods_ = own_pods_.get();
  }

  Result<nlohmann::json> Add(const CmdContext& ctx) override;
  Status Del(const CmdContext& ctx) override;
  Status Check(const CmdContext& ctx) override;
  Status Gc(const CmdContext& ctx) override;
  Status Ready(const CmdContext& ctx) override;

  struct Config {
    std::string device_id;
    std::optional<std::string> mac;
    std::optional<int> vlan, vlan_qos;
    std::optional<bool> spoof_check, trust;
    std::optional<std::string> link_state;
    std::optional<int> min_tx_rate, max_tx_rate;
    int mtu = 0;
    std::string sysfs_root;
    std::string state_dir;
    std::string ipam_type;  // empty: no ipam section
    bool simulate_pf = false;
    std::string resource_name;  // with no deviceID: looked up through the kubelet
    std::string pod_resources_socket;
  };
  // Every field checked; errors name it. `need_device` false for DEL/GC/STATUS; when true, a
  // `resourceName` stands in for the deviceID (resolved by ResolveDevice).
  Result<Config> ParseConfig(const NetConf& conf, bool need_device) const;

 private:
  Result<net::NetlinkManagerPtr> OpenHost(const Config& cfg);
  // The deviceID for `resourceName`: ADD asks the kubelet (PodResources) and takes the pod's first
  // VF of that resource that no other attachment holds (this one's own, on a repeated ADD, counts
  // as free); CHECK takes the VF of this attachment's record.
  Result<std::string> ResolveDevice(const CmdContext& ctx, const Config& cfg, bool for_add);
  // Puts the VF back as the record says: netdev home (found in the pod by the record's pod name)
  // under its host name with its MAC, MTU and admin state, then the PF settings. Every step is
  // tried; the first error is returned.
  Status Restore(const VfRecord& record, net::NetlinkManager& host, const Config& cfg);
  // Takes the VF netdev called `name_in_pod` out of the pod with ONE RTM_NEWLINK: moved home (the
  // kernel closes it and drops its addresses), renamed to its host name, MAC and MTU restored, up
  // again if it was up before ADD.
  static Status BringHome(net::NetlinkManager& pod, const std::string& name_in_pod,
                          const VfRecord& r);
  // DEL/GC of one record, under the VF's lock: re-reads the record (another process may have
  // released it meanwhile) and acts only when it is still `r`'s attachment.
  Status Release(const VfRecord& r, const Config& cfg, const CniArgs& args, const NetConf& conf);

  net::NetlinkFactory* netlink_;
  IpamRunner* ipam_;
  Options options_;
  PodDeviceLookup* pods_;
  std::unique_ptr<PodDeviceLookup> own_pods_;
};

}  // namespace strata::cni
