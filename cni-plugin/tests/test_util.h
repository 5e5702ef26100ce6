#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "strata/cni/skel.h"

namespace strata::cni::testing {

// Runs `plugin` as the runtime would; returns {exit code, parsed stdout (null when empty)}.
struct Invocation {
  int rc = 0;
  nlohmann::json out;
};
inline Invocation Invoke(Plugin& plugin, const std::string& command, const nlohmann::json& conf,
                         const std::string& netns, const std::string& ifname = "eth0",
                         const std::string& container = "c1") {
  std::map<std::string, std::string> env = {{"CNI_COMMAND", command},
                                            {"CNI_CONTAINERID", container},
                                            {"CNI_NETNS", netns},
                                            {"CNI_IFNAME", ifname},
                                            {"CNI_PATH", "/usr/lib/cni"}};
  std::string out;
  Invocation inv;
  inv.rc = RunPlugin(plugin, env, conf.dump(), &out);
  inv.out = out.empty() ? nlohmann::json() : nlohmann::json::parse(out);
  return inv;
}

// A scratch directory removed at the end of the test; also a stand-in netns path (skel only
// checks that CNI_NETNS exists; the fake kernel keys namespaces by path).
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/strata-cni-test.XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { (void)std::system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace strata::cni::testing
