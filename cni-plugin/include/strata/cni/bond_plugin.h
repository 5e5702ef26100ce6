#pragma once

#include <optional>
#include <string>
#include <vector>

#include "strata/cni/skel.h"
#include "strata/net/netlink.h"

namespace strata::cni {

// strata-bond: builds a bond named CNI_IFNAME inside the pod from links already there (typically
// VFs on different PFs moved in by strata-sriov). Config (bond-cni's shape):
//   {"type":"strata-bond", "mode":"active-backup"|"balance-xor"|"802.3ad"|"balance-tlb"|
//    "balance-alb"|"balance-rr"|"broadcast", "miimon":100, "updelay":0, "downdelay":0,
//    "xmitHashPolicy":"layer2"|"layer3+4"|"layer2+3"|"encap2+3"|"encap3+4"|"vlan+srcmac",
//    "failOverMac":"none"|"active"|"follow", "primary":"net1", "mtu":9000,
//    "links":[{"name":"net1"},{"name":"net2"}], "vlan":100, "bondName":"bond0"}
// With `vlan` (1..4094) CNI_IFNAME is an 802.1Q VLAN device on the bond, and the bond is named
// `bondName` (default: CNI_IFNAME's first 10 bytes + "-bond"); the result lists the bond, then
// the VLAN. `mtu` applies to the bond; the VLAN inherits it.
// CHECK verifies mode, members and (active-backup) that an active port is one of them, and with
// `vlan` that CNI_IFNAME is a VLAN with that id on the bond. DEL removes the VLAN, releases the
// members (they stay in the pod for the plugin that brought them) and deletes the bond.
class BondPlugin final : public Plugin {
 public:
  explicit BondPlugin(net::NetlinkFactory* netlink) : netlink_(netlink) {}

  Result<nlohmann::json> Add(const CmdContext& ctx) override;
  Status Del(const CmdContext& ctx) override;
  Status Check(const CmdContext& ctx) override;
  Status Gc(const CmdContext&) override { return Status::Ok(); }  // bonds die with the netns
  Status Ready(const CmdContext&) override { return Status::Ok(); }

  struct Config {
    net::BondSpec spec;  // name: CNI_IFNAME, or the bond under the VLAN
    std::vector<std::string> links;
    std::optional<std::string> primary;
    std::optional<int> vlan;  // CNI_IFNAME is a VLAN with this id on the bond
  };
  // `ifname` is CNI_IFNAME: it names the bond, or with `vlan` the default bond name derives
  // from it.
  static Result<Config> ParseConfig(const NetConf& conf, const std::string& ifname);

 private:
  // Releases the members of `bond` and deletes it; absent is fine.
  static Status DeleteBond(net::NetlinkManager& pod, const net::LinkInfo& bond);

  net::NetlinkFactory* netlink_;
};

std::string_view BondModeName(net::BondMode mode);

}  // namespace strata::cni
