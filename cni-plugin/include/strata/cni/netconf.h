#pragma once

// What a plugin is given: the CNI_* environment and the network configuration on stdin, parsed
// and checked once (types, required fields), with errors that name the field.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "strata/cni/spec.h"
#include "strata/common/result.h"

namespace strata::cni {

enum class Command { kAdd, kDel, kCheck, kVersion, kGc, kStatus };

std::string_view CommandName(Command c);

// The CNI_* environment variables (SPEC.md "Parameters").
struct CniArgs {
  Command command = Command::kVersion;
  std::string container_id;
  std::string netns;  // path; may be empty for DEL, GC, STATUS, VERSION
  std::string ifname;
  std::string args;  // CNI_ARGS, "K=V;K=V"
  std::string path;  // CNI_PATH
};

// Reads CNI_* from a map (ProcessCniEnv() in production; tests pass their own). Checks what every
// command needs: CNI_COMMAND known; ADD/CHECK need CNI_CONTAINERID, CNI_NETNS and CNI_IFNAME; DEL
// needs CNI_CONTAINERID and CNI_IFNAME (CNI_NETNS may be empty: the sandbox may be gone).
// FAILED_PRECONDITION (code 4) naming the variable otherwise.
Result<CniArgs> ParseCniArgs(const std::map<std::string, std::string>& env);
std::map<std::string, std::string> ProcessCniEnv();

// The parsed network configuration. The plugin-specific fields stay in `raw`; plugins read them
// with the typed getters below so every type error reads the same way.
struct NetConf {
  SpecVersion version = kLatestVersion;
  std::string name;
  std::string type;
  nlohmann::json raw;                         // the whole object as given
  std::optional<nlohmann::json> prev_result;  // converted to `version`'s shape
  nlohmann::json runtime_config = nlohmann::json::object();
};

// Requires cniVersion (supported: else UNIMPLEMENTED -> code 1), name and type (strings);
// runtimeConfig, if present, an object; prevResult, if present, a result.
// INVALID_ARGUMENT (code 7) otherwise. `json` must already be decoded (code 6 is the caller's).
Result<NetConf> ParseNetConf(const nlohmann::json& json);

// Typed, optional field access with uniform errors ("<prefix><key>: must be <type>").
// Absent or null -> nullopt.
Result<std::optional<std::string>> GetString(const nlohmann::json& obj, std::string_view key,
                                             std::string_view prefix = "");
Result<std::optional<uint64_t>> GetUint(const nlohmann::json& obj, std::string_view key,
                                        std::string_view prefix = "");
Result<std::optional<int64_t>> GetInt(const nlohmann::json& obj, std::string_view key,
                                      std::string_view prefix = "");
Result<std::optional<bool>> GetBool(const nlohmann::json& obj, std::string_view key,
                                    std::string_view prefix = "");

// A MAC address "aa:bb:cc:dd:ee:ff" (case-insensitive) normalized to lower case.
Result<std::string> ParseMac(std::string_view text, std::string_view field);

// Linux interface names: 1-15 bytes, no '/', ':' or whitespace, not "." or "..".
Status ValidateIfName(std::string_view name, std::string_view field);

// GC's "cni.dev/valid-attachments".
struct Attachment {
  std::string container_id;
  std::string ifname;
  friend bool operator<(const Attachment& a, const Attachment& b) {
    return std::tie(a.container_id, a.ifname) < std::tie(b.container_id, b.ifname);
  }
};
Result<std::vector<Attachment>> ParseValidAttachments(const NetConf& conf);

}  // namespace strata::cni
