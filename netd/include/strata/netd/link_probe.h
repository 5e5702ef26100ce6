#pragma once

#include <memory>
#include <string>

#include "strata/common/result.h"

namespace strata::netd {

// The OS seam for a PF's link state, as the device plugin's health check sees it. Thread-safe.
class LinkProbe {
 public:
  virtual ~LinkProbe() = default;
  // True when the interface (in the agent's network namespace, the host's) is administratively up
  // and has carrier (IFF_UP and IFF_RUNNING). NOT_FOUND when no such interface exists.
  virtual Result<bool> IsUp(const std::string& ifname) = 0;
};

// SIOCGIFFLAGS on a datagram socket: one ioctl per call, no netlink dump.
std::unique_ptr<LinkProbe> NewIoctlLinkProbe();

}  // namespace strata::netd
