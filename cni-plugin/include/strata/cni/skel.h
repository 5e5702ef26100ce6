#pragma once

// The plugin skeleton: reads the CNI_* environment and stdin, checks what the spec requires of
// every command, calls the plugin, and maps the outcome to stdout and an exit code once.

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "strata/cni/netconf.h"
#include "strata/common/result.h"

namespace strata::cni {

struct CmdContext {
  CniArgs args;
  NetConf conf;
};

// One plugin type (strata-bandwidth, strata-sriov, strata-bond). The skeleton has already
// checked the environment, decoded the config and gated the command on the config's version.
class Plugin {
 public:
  virtual ~Plugin() = default;
  // ADD returns the result to print, in any version's shape: the skeleton converts it to the
  // config's version. REQUIRES for ADD/CHECK: CNI_NETNS names an existing path.
  virtual Result<nlohmann::json> Add(const CmdContext& ctx) = 0;
  // Idempotent: a missing namespace or link is success.
  virtual Status Del(const CmdContext& ctx) = 0;
  virtual Status Check(const CmdContext& ctx) = 0;
  // 1.1.0: release what belongs to attachments not in "cni.dev/valid-attachments".
  virtual Status Gc(const CmdContext& ctx) = 0;
  // 1.1.0: OK when ready for ADD; an error maps to code 50.
  virtual Status Ready(const CmdContext& ctx) = 0;
};

// Runs one invocation. Writes the result, version info or error JSON to *out; returns the
// process exit code (0 or 1). Never throws.
int RunPlugin(Plugin& plugin, const std::map<std::string, std::string>& env,
              std::string_view stdin_bytes, std::string* out);

}  // namespace strata::cni
