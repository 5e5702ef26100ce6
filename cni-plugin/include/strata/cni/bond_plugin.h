#pragma once

#include <optional>
#include <string>
#include <vector>

#include "strata/cni/netlink.h"
#include "strata/cni/skel.h"

namespace strata::cni {

// strata-bond: builds a bond named CNI_IFNAME inside the pod from links already there (typically
// VFs on different PFs moved in by strata-sriov). Config (bond-cni's shape):
//   {"type":"strata-bond", "mode":"active-backup"|"balance-xor"|"802.3ad"|"balance-tlb"|
//    "balance-alb"|"balance-rr"|"broadcast", "miimon":100, "updelay":0, "downdelay":0,
//    "xmitHashPolicy":"layer2"|"layer3+4"|"layer2+3"|"encap2+3"|"encap3+4"|"vlan+srcmac",
//    "failOverMac":"none"|"active"|"follow", "primary":"net1", "mtu":9000,
//    "links":[{"name":"net1"},{"name":"net2"}]}
// CHECK verifies mode, members and (active-backup) that an active port is one of them. DEL
// releases the members (they stay in the pod for the plugin that brought them) and deletes the
// bond.
class BondPlugin final : public Plugin {
 public:
  explicit BondPlugin(NetlinkFactory* netlink) : netlink_(netlink) {}

  Result<nlohmann::json> Add(const CmdContext& ctx) override;
  Status Del(const CmdContext& ctx) override;
  Status Check(const CmdContext& ctx) override;
  Status Gc(const CmdContext&) override { return Status::Ok(); }  // bonds die with the netns
  Status Ready(const CmdContext&) override { return Status::Ok(); }

  struct Config {
    BondSpec spec;  // name left empty: CNI_IFNAME
    std::vector<std::string> links;
    std::optional<std::string> primary;
  };
  static Result<Config> ParseConfig(const NetConf& conf);

 private:
  NetlinkFactory* netlink_;
};

std::string_view BondModeName(BondMode mode);

}  // namespace strata::cni
