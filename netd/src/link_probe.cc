#include "strata/netd/link_probe.h"

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace strata::netd {
namespace {

class IoctlLinkProbe final : public LinkProbe {
 public:
  Result<bool> IsUp(const std::string& ifname) override {
    if (ifname.empty() || ifname.size() >= IFNAMSIZ) {
      return InvalidArgumentError("interface name '" + ifname + "' is not valid");
    }
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return ErrnoError("socket for SIOCGIFFLAGS", errno);
    ifreq req{};
    std::memcpy(req.ifr_name, ifname.data(), ifname.size());
    int rc = ::ioctl(fd, SIOCGIFFLAGS, &req);
    int err = errno;
    ::close(fd);
    if (rc != 0) {
      if (err == ENODEV) return NotFoundError("interface " + ifname + " does not exist");
      return ErrnoError("SIOCGIFFLAGS " + ifname, err);
    }
    return (req.ifr_flags & IFF_UP) != 0 && (req.ifr_flags & IFF_RUNNING) != 0;
  }
};

}  // namespace

std::unique_ptr<LinkProbe> NewIoctlLinkProbe() { return std::make_unique<IoctlLinkProbe>(); }

}  // namespace strata::netd
