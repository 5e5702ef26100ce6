// strata-cni: one binary installed under several plugin names (strata-bandwidth, strata-sriov,
// strata-bond, strata-vnc); it picks the plugin from the name it was run as. `strata-cni PLUGIN`
// works too.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>

#include "strata/cni/bandwidth_plugin.h"
#include "strata/cni/bond_plugin.h"
#include "strata/cni/ipam.h"
#include "strata/cni/sriov_plugin.h"
#include "strata/cni/vnc_plugin.h"
#include "strata/net/attachment.h"
#include "strata/net/linux_netlink.h"

namespace {

std::string BaseName(const char* path) {
  std::string s(path);
  size_t slash = s.rfind('/');
  return slash == std::string::npos ? s : s.substr(slash + 1);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace strata::cni;
  std::string name = argc > 0 ? BaseName(argv[0]) : "strata-cni";
  if (name == "strata-cni" && argc > 1) name = argv[1];
  auto env = ProcessCniEnv();

  auto netlink = strata::net::NewLinuxNetlinkFactory();
  auto ipam = NewExecIpamRunner();
  std::unique_ptr<Plugin> plugin;
  if (name == "strata-bandwidth") {
    const char* dir = std::getenv(strata::net::kAttachmentsDirEnv);
    plugin = std::make_unique<BandwidthPlugin>(
        netlink.get(), dir != nullptr ? dir : strata::net::kDefaultAttachmentsDir);
  } else if (name == "strata-sriov") {
    plugin = std::make_unique<SriovPlugin>(netlink.get(), ipam.get(),
                                           SriovPlugin::Options::FromEnv(env));
  } else if (name == "strata-bond") {
    plugin = std::make_unique<BondPlugin>(netlink.get());
  } else if (name == "strata-vnc") {
    plugin = std::make_unique<VncPlugin>(netlink.get(), VncPlugin::Options::FromEnv(env));
  } else {
    std::cerr
        << "strata-cni: run as strata-bandwidth, strata-sriov, strata-bond or strata-vnc (got '"
        << name << "'), or as: strata-cni PLUGIN\n";
    return 2;
  }
  std::string in((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  std::string out;
  int rc = RunPlugin(*plugin, env, in, &out);
  if (!out.empty()) {
    out.push_back('\n');
    ssize_t ignored = ::write(STDOUT_FILENO, out.data(), out.size());
    (void)ignored;
  }
  return rc;
}
