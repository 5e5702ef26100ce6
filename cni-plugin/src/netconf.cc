#include "strata/cni/netconf.h"

#include <cctype>
#include <cstdlib>
#include <tuple>

extern char** environ;

namespace strata::cni {
namespace {

using nlohmann::json;

std::string Field(std::string_view prefix, std::string_view key) {
  return std::string(prefix) + std::string(key);
}

const json* Lookup(const json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(std::string(key));
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

}  // namespace

std::string_view CommandName(Command c) {
  switch (c) {
    case Command::kAdd:
      return "ADD";
    case Command::kDel:
      return "DEL";
    case Command::kCheck:
      return "CHECK";
    case Command::kVersion:
      return "VERSION";
    case Command::kGc:
      return "GC";
    case Command::kStatus:
      return "STATUS";
  }
  return "?";
}

std::map<std::string, std::string> ProcessCniEnv() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    if (kv.substr(0, 4) != "CNI_" && kv.substr(0, 11) != "STRATA_CNI_") continue;
    size_t eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return env;
}

Result<CniArgs> ParseCniArgs(const std::map<std::string, std::string>& env) {
  auto get = [&](const char* k) -> std::string {
    auto it = env.find(k);
    return it == env.end() ? std::string() : it->second;
  };
  CniArgs a;
  std::string cmd = get("CNI_COMMAND");
  if (cmd == "ADD") {
    a.command = Command::kAdd;
  } else if (cmd == "DEL") {
    a.command = Command::kDel;
  } else if (cmd == "CHECK") {
    a.command = Command::kCheck;
  } else if (cmd == "VERSION") {
    a.command = Command::kVersion;
  } else if (cmd == "GC") {
    a.command = Command::kGc;
  } else if (cmd == "STATUS") {
    a.command = Command::kStatus;
  } else if (cmd.empty()) {
    return FailedPreconditionError("CNI_COMMAND: not set");
  } else {
    return FailedPreconditionError("CNI_COMMAND: '" + cmd +
                                   "' is not one of ADD, DEL, CHECK, VERSION, GC, STATUS");
  }
  a.container_id = get("CNI_CONTAINERID");
  a.netns = get("CNI_NETNS");
  a.ifname = get("CNI_IFNAME");
  a.args = get("CNI_ARGS");
  a.path = get("CNI_PATH");
  const bool attach =
      a.command == Command::kAdd || a.command == Command::kDel || a.command == Command::kCheck;
  if (attach) {
    if (a.container_id.empty()) return FailedPreconditionError("CNI_CONTAINERID: not set");
    if (a.ifname.empty()) return FailedPreconditionError("CNI_IFNAME: not set");
    Status s = ValidateIfName(a.ifname, "CNI_IFNAME");
    if (!s.ok()) return FailedPreconditionError(s.message());
  }
  if ((a.command == Command::kAdd || a.command == Command::kCheck) && a.netns.empty()) {
    return FailedPreconditionError("CNI_NETNS: not set");
  }
  return a;
}

Result<NetConf> ParseNetConf(const json& j) {
  if (!j.is_object()) return InvalidArgumentError("network configuration: must be a JSON object");
  NetConf c;
  STRATA_ASSIGN_OR_RETURN(auto version, GetString(j, "cniVersion"));
  if (!version) return InvalidArgumentError("cniVersion: required");
  STRATA_ASSIGN_OR_RETURN(c.version, ParseVersion(*version));
  STRATA_ASSIGN_OR_RETURN(auto name, GetString(j, "name"));
  if (!name || name->empty()) return InvalidArgumentError("name: required");
  c.name = *name;
  STRATA_ASSIGN_OR_RETURN(auto type, GetString(j, "type"));
  if (!type || type->empty()) return InvalidArgumentError("type: required");
  c.type = *type;
  if (const json* rc = Lookup(j, "runtimeConfig")) {
    if (!rc->is_object()) return InvalidArgumentError("runtimeConfig: must be an object");
    c.runtime_config = *rc;
  }
  if (const json* prev = Lookup(j, "prevResult")) {
    STRATA_ASSIGN_OR_RETURN(auto converted, ConvertResult(*prev, c.version, "prevResult"));
    c.prev_result = std::move(converted);
  }
  c.raw = j;
  return c;
}

Result<std::optional<std::string>> GetString(const json& obj, std::string_view key,
                                             std::string_view prefix) {
  const json* v = Lookup(obj, key);
  if (v == nullptr) return std::optional<std::string>();
  if (!v->is_string()) return InvalidArgumentError(Field(prefix, key) + ": must be a string");
  return std::optional<std::string>(v->get<std::string>());
}

Result<std::optional<uint64_t>> GetUint(const json& obj, std::string_view key,
                                        std::string_view prefix) {
  const json* v = Lookup(obj, key);
  if (v == nullptr) return std::optional<uint64_t>();
  if (v->is_number_unsigned()) return std::optional<uint64_t>(v->get<uint64_t>());
  if (v->is_number_integer()) {
    return InvalidArgumentError(Field(prefix, key) + ": must not be negative (got " + v->dump() +
                                ")");
  }
  return InvalidArgumentError(Field(prefix, key) + ": must be a non-negative integer (got " +
                              v->dump() + ")");
}

Result<std::optional<int64_t>> GetInt(const json& obj, std::string_view key,
                                      std::string_view prefix) {
  const json* v = Lookup(obj, key);
  if (v == nullptr) return std::optional<int64_t>();
  if (!v->is_number_integer()) {
    return InvalidArgumentError(Field(prefix, key) + ": must be an integer (got " + v->dump() +
                                ")");
  }
  return std::optional<int64_t>(v->get<int64_t>());
}

Result<std::optional<bool>> GetBool(const json& obj, std::string_view key,
                                    std::string_view prefix) {
  const json* v = Lookup(obj, key);
  if (v == nullptr) return std::optional<bool>();
  if (!v->is_boolean()) return InvalidArgumentError(Field(prefix, key) + ": must be true or false");
  return std::optional<bool>(v->get<bool>());
}

Result<std::string> ParseMac(std::string_view text, std::string_view field) {
  auto bad = [&] {
    return InvalidArgumentError(std::string(field) + ": '" + std::string(text) +
                                "' is not a MAC address (aa:bb:cc:dd:ee:ff)");
  };
  if (text.size() != 17) return bad();
  std::string out(text);
  for (size_t i = 0; i < out.size(); ++i) {
    if (i % 3 == 2) {
      if (out[i] != ':') return bad();
    } else {
      if (!std::isxdigit(static_cast<unsigned char>(out[i]))) return bad();
      out[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(out[i])));
    }
  }
  return out;
}

Status ValidateIfName(std::string_view name, std::string_view field) {
  if (name.empty() || name.size() > 15) {
    return InvalidArgumentError(std::string(field) + ": '" + std::string(name) +
                                "' must be 1 to 15 characters");
  }
  if (name == "." || name == "..") {
    return InvalidArgumentError(std::string(field) + ": '" + std::string(name) +
                                "' is not an interface name");
  }
  for (char ch : name) {
    if (ch == '/' || ch == ':' || std::isspace(static_cast<unsigned char>(ch))) {
      return InvalidArgumentError(std::string(field) + ": '" + std::string(name) +
                                  "' must not contain '/', ':' or whitespace");
    }
  }
  return Status::Ok();
}

Result<std::vector<Attachment>> ParseValidAttachments(const NetConf& conf) {
  std::vector<Attachment> out;
  const json* list = Lookup(conf.raw, "cni.dev/valid-attachments");
  if (list == nullptr) return out;
  if (!list->is_array()) {
    return InvalidArgumentError("cni.dev/valid-attachments: must be an array");
  }
  for (const json& a : *list) {
    STRATA_ASSIGN_OR_RETURN(auto id, GetString(a, "containerID", "cni.dev/valid-attachments[]."));
    STRATA_ASSIGN_OR_RETURN(auto ifname, GetString(a, "ifname", "cni.dev/valid-attachments[]."));
    if (!id || !ifname) {
      return InvalidArgumentError(
          "cni.dev/valid-attachments: every entry needs 'containerID' and 'ifname'");
    }
    out.push_back({*id, *ifname});
  }
  return out;
}

}  // namespace strata::cni
