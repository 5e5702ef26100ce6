#include "strata/net/netlink.h"

namespace strata::net {

// The node-uplink calls are optional for implementations (see netlink.h): the default refuses.
Status NetlinkManager::SetBondOptions(const std::string& bond, const BondSpec&) {
  return UnimplementedError("set options of bond " + bond + ": not supported by this manager");
}
Status NetlinkManager::CreateBridge(const BridgeSpec& spec) {
  return UnimplementedError("create bridge " + spec.name + ": not supported by this manager");
}
Result<BridgeState> NetlinkManager::GetBridge(const std::string& bridge) {
  return UnimplementedError("bridge " + bridge + ": not supported by this manager");
}
Status NetlinkManager::SetBridgeOptions(const BridgeSpec& spec) {
  return UnimplementedError("set options of bridge " + spec.name +
                            ": not supported by this manager");
}
Status NetlinkManager::SetMaster(const std::string& link, const std::string&) {
  return UnimplementedError("set master of " + link + ": not supported by this manager");
}
Result<std::vector<std::string>> NetlinkManager::ListAddresses(const std::string& link) {
  return UnimplementedError("addresses of " + link + ": not supported by this manager");
}

}  // namespace strata::net
