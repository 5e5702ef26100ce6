#pragma once

#include <memory>

#include "strata/net/netlink.h"

namespace strata::net {

// The production NetlinkFactory: each manager owns a libnl-route-3 socket created inside its
// namespace (the calling thread enters the namespace with setns(2) only for socket(2) and returns
// at once), so every later request acts in that namespace whatever thread sends it.
std::unique_ptr<NetlinkFactory> NewLinuxNetlinkFactory();

}  // namespace strata::net
