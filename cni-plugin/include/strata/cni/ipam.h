#pragma once

// Delegation to an IPAM plugin (CNI SPEC.md "Delegated plugin protocol"): the plugin named by
// `ipam.type` is looked up in CNI_PATH and run with the caller's environment, CNI_COMMAND set to
// the delegated command, and the caller's network configuration unchanged on stdin.

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "strata/cni/netconf.h"
#include "strata/common/result.h"

namespace strata::cni {

class IpamRunner {
 public:
  virtual ~IpamRunner() = default;
  // Runs `type` for `command` ("ADD", "DEL", "CHECK"); returns its stdout parsed (null when it
  // printed nothing, as DEL and CHECK do). A plugin error comes back with its code mapped
  // (7 -> INVALID_ARGUMENT, 11 -> UNAVAILABLE, else UNKNOWN) and its message, prefixed "ipam".
  // NOT_FOUND when `type` is in no CNI_PATH directory.
  virtual Result<nlohmann::json> Run(const std::string& command, const CniArgs& args,
                                     const std::string& type, const nlohmann::json& conf) = 0;
};

// fork + exec; the child's stderr is ours.
std::unique_ptr<IpamRunner> NewExecIpamRunner();

// An IPAM result in 1.1.0's shape, reduced to what the plugin applies.
struct IpamConfig {
  struct Ip {
    std::string address;  // CIDR
    std::string gateway;  // may be empty
  };
  struct Route {
    std::string dst;  // CIDR
    std::string gw;   // may be empty: the gateway of the same family in `ips`, else on-link
  };
  std::vector<Ip> ips;
  std::vector<Route> routes;
  nlohmann::json dns;  // passed through
};
// INVALID_ARGUMENT naming the bad field ("ipam result: ips[0].address: ...").
Result<IpamConfig> ParseIpamResult(const nlohmann::json& result);

}  // namespace strata::cni
