#include "strata/cni/skel.h"

#include <sys/stat.h>

#include <exception>

namespace strata::cni {
namespace {

using nlohmann::json;

int Fail(const CniError& e, SpecVersion v, std::string* out) {
  *out = ErrorJson(e, v).dump();
  return 1;
}

// The version to answer errors in: the config's, when it names one we speak.
SpecVersion ErrorVersion(const json& j) {
  if (j.is_object()) {
    auto it = j.find("cniVersion");
    if (it != j.end() && it->is_string()) {
      auto v = ParseVersion(it->get<std::string>());
      if (v.ok()) return *v;
    }
  }
  return kLatestVersion;
}

int VersionInfo(const json& j, std::string* out) {
  json versions = json::array();
  for (SpecVersion v : SupportedVersions()) versions.push_back(VersionString(v));
  *out =
      json{{"cniVersion", VersionString(ErrorVersion(j))}, {"supportedVersions", versions}}.dump();
  return 0;
}

}  // namespace

int RunPlugin(Plugin& plugin, const std::map<std::string, std::string>& env,
              std::string_view stdin_bytes, std::string* out) {
  json j = json::parse(stdin_bytes, nullptr, /*allow_exceptions=*/false);
  auto args = ParseCniArgs(env);
  if (!args.ok()) {
    return Fail({ErrorCode::kInvalidEnvironment, args.status().message(), ""}, ErrorVersion(j),
                out);
  }
  if (args->command == Command::kVersion) return VersionInfo(j, out);
  if (j.is_discarded()) {
    return Fail({ErrorCode::kDecodingFailure, "network configuration: not valid JSON",
                 "stdin held " + std::to_string(stdin_bytes.size()) + " bytes"},
                kLatestVersion, out);
  }
  auto conf = ParseNetConf(j);
  if (!conf.ok()) return Fail(ToCniError(conf.status()), ErrorVersion(j), out);
  const SpecVersion v = conf->version;
  const Command cmd = args->command;
  if (cmd == Command::kCheck && v < SpecVersion::k0_4_0) {
    return Fail({ErrorCode::kIncompatibleVersion,
                 "config version " + std::string(VersionString(v)) + " does not allow CHECK", ""},
                v, out);
  }
  if ((cmd == Command::kGc || cmd == Command::kStatus) && v < SpecVersion::k1_1_0) {
    return Fail({ErrorCode::kIncompatibleVersion,
                 "config version " + std::string(VersionString(v)) + " does not allow " +
                     std::string(CommandName(cmd)),
                 ""},
                v, out);
  }
  if (cmd == Command::kAdd || cmd == Command::kCheck) {
    struct stat st {};
    if (::stat(args->netns.c_str(), &st) != 0) {
      return Fail(
          {ErrorCode::kInvalidEnvironment, "CNI_NETNS: " + args->netns + " does not exist", ""}, v,
          out);
    }
  }
  CmdContext ctx{std::move(*args), std::move(*conf)};
  try {
    switch (cmd) {
      case Command::kAdd: {
        auto result = plugin.Add(ctx);
        if (!result.ok()) return Fail(ToCniError(result.status()), v, out);
        auto converted = ConvertResult(*result, v, "result");
        if (!converted.ok()) return Fail(ToCniError(converted.status()), v, out);
        *out = converted->dump();
        return 0;
      }
      case Command::kDel:
      case Command::kCheck:
      case Command::kGc: {
        Status s = cmd == Command::kDel     ? plugin.Del(ctx)
                   : cmd == Command::kCheck ? plugin.Check(ctx)
                                            : plugin.Gc(ctx);
        if (!s.ok()) return Fail(ToCniError(s), v, out);
        out->clear();
        return 0;
      }
      case Command::kStatus: {
        Status s = plugin.Ready(ctx);
        if (!s.ok()) return Fail({ErrorCode::kPluginNotAvailable, s.message(), ""}, v, out);
        out->clear();
        return 0;
      }
      case Command::kVersion:
        break;
    }
  } catch (const std::exception& e) {
    // Library exceptions (nlohmann on a type we failed to check) end here, not in a crash.
    return Fail({ErrorCode::kInternal, std::string("internal error: ") + e.what(), ""}, v, out);
  }
  return VersionInfo(j, out);
}

}  // namespace strata::cni
