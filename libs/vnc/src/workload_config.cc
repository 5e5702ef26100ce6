#include "strata/vnc/workload_config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>

namespace strata::vnc {
namespace {

using nlohmann::json;

Status Invalid(std::string_view field, std::string_view why) {
  return InvalidArgumentError(std::string(field) + ": " + std::string(why));
}

bool IsDnsLabel(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-'))
      return false;
  }
  return s.front() != '-' && s.back() != '-';
}

bool IsDnsSubdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.'))
      return false;
  }
  auto alnum = [](char c) {
    return std::islower(static_cast<unsigned char>(c)) ||
           std::isdigit(static_cast<unsigned char>(c));
  };
  return alnum(s.front()) && alnum(s.back());
}

bool IsMac(std::string_view s) {
  if (s.size() != 17) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i % 3 == 2) {
      if (s[i] != ':') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Typed readers over a JSON object: absent/null leaves *out alone; a wrong type is an error naming
// `path.key`.
Status ReadString(const json& obj, const char* key, const std::string& path, std::string* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (!it->is_string()) return Invalid(path + "." + key, "must be a string");
  *out = it->get<std::string>();
  return Status::Ok();
}

Status ReadInt(const json& obj, const char* key, const std::string& path, int64_t* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (!it->is_number_integer()) return Invalid(path + "." + key, "must be an integer");
  *out = it->get<int64_t>();
  return Status::Ok();
}

Status ReadBool(const json& obj, const char* key, const std::string& path, bool* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (!it->is_boolean()) return Invalid(path + "." + key, "must be a boolean");
  *out = it->get<bool>();
  return Status::Ok();
}

Status ReadStrings(const json& obj, const char* key, const std::string& path,
                   std::vector<std::string>* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (!it->is_array()) return Invalid(path + "." + key, "must be a list of strings");
  out->clear();
  for (size_t i = 0; i < it->size(); ++i) {
    if (!(*it)[i].is_string()) {
      return Invalid(path + "." + key + "[" + std::to_string(i) + "]", "must be a string");
    }
    out->push_back((*it)[i].get<std::string>());
  }
  return Status::Ok();
}

Status ReadObject(const json& obj, const char* key, const std::string& path, const json** out) {
  *out = nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (!it->is_object()) return Invalid(path + "." + key, "must be an object");
  *out = &*it;
  return Status::Ok();
}

Status ReadRange(const json& obj, const char* key, const std::string& path, int64_t lo, int64_t hi,
                 int* out) {
  int64_t v = *out;
  STRATA_RETURN_IF_ERROR(ReadInt(obj, key, path, &v));
  if (v < lo || v > hi) {
    return Invalid(path + "." + key, std::to_string(v) + " is outside " + std::to_string(lo) +
                                         ".." + std::to_string(hi));
  }
  *out = static_cast<int>(v);
  return Status::Ok();
}

Status ParseInterface(const json& j, const std::string& path, InterfaceConfig* out) {
  if (!j.is_object()) return Invalid(path, "must be an object");
  STRATA_RETURN_IF_ERROR(ReadString(j, "name", path, &out->name));
  if (out->name.empty() || out->name.size() > 15) {
    return Invalid(path + ".name", "required, 1-15 characters (IFNAMSIZ)");
  }
  STRATA_RETURN_IF_ERROR(ReadString(j, "type", path, &out->type));
  if (out->type != "sriov" && out->type != "bond") {
    return Invalid(path + ".type", "\"" + out->type + "\" is not one of sriov, bond");
  }
  STRATA_RETURN_IF_ERROR(ReadString(j, "mac", path, &out->mac));
  if (!out->mac.empty()) {
    if (!IsMac(out->mac)) return Invalid(path + ".mac", "\"" + out->mac + "\" is not a MAC");
    out->mac = Lower(out->mac);
    unsigned first = static_cast<unsigned>(std::stoul(out->mac.substr(0, 2), nullptr, 16));
    if (first & 1) return Invalid(path + ".mac", "\"" + out->mac + "\" is a multicast address");
  }
  STRATA_RETURN_IF_ERROR(ReadRange(j, "mtu", path, 576, 9216, &out->mtu));
  if (j.contains("vlan") && !j["vlan"].is_null()) {
    int vlan = 0;
    STRATA_RETURN_IF_ERROR(ReadRange(j, "vlan", path, 0, 4094, &vlan));
    out->vlan = vlan;
  }
  STRATA_RETURN_IF_ERROR(ReadStrings(j, "addresses", path, &out->addresses));
  std::set<std::string> seen;
  for (size_t i = 0; i < out->addresses.size(); ++i) {
    std::string field = path + ".addresses[" + std::to_string(i) + "]";
    int family = 0;
    STRATA_RETURN_IF_ERROR(CheckCidr(out->addresses[i], field, &family));
    if (!seen.insert(out->addresses[i]).second) return Invalid(field, "duplicate address");
  }
  const json* sriov = nullptr;
  STRATA_RETURN_IF_ERROR(ReadObject(j, "sriov", path, &sriov));
  if (sriov) {
    if (out->type != "sriov") return Invalid(path + ".sriov", "only for type sriov");
    SriovConfig s;
    STRATA_RETURN_IF_ERROR(ReadString(*sriov, "resourceName", path + ".sriov", &s.resource_name));
    STRATA_RETURN_IF_ERROR(ReadBool(*sriov, "trust", path + ".sriov", &s.trust));
    STRATA_RETURN_IF_ERROR(ReadBool(*sriov, "spoofCheck", path + ".sriov", &s.spoof_check));
    out->sriov = s;
  }
  const json* bond = nullptr;
  STRATA_RETURN_IF_ERROR(ReadObject(j, "bond", path, &bond));
  if (bond) {
    if (out->type != "bond") return Invalid(path + ".bond", "only for type bond");
    BondConfig b;
    std::string bp = path + ".bond";
    STRATA_RETURN_IF_ERROR(ReadString(*bond, "mode", bp, &b.mode));
    static const std::set<std::string> kModes = {"active-backup", "balance-xor", "802.3ad",
                                                 "balance-alb"};
    if (!kModes.count(b.mode)) {
      return Invalid(bp + ".mode", "\"" + b.mode +
                                       "\" is not one of active-backup, balance-xor, 802.3ad, "
                                       "balance-alb");
    }
    STRATA_RETURN_IF_ERROR(ReadRange(*bond, "members", bp, 2, 8, &b.members));
    STRATA_RETURN_IF_ERROR(ReadRange(*bond, "miimonMilliseconds", bp, 10, 10000, &b.miimon_ms));
    out->bond = b;
  }
  return Status::Ok();
}

json InterfaceToJson(const InterfaceConfig& i) {
  json j = {{"name", i.name}, {"type", i.type}, {"mtu", i.mtu}};
  if (!i.mac.empty()) j["mac"] = i.mac;
  if (i.vlan) j["vlan"] = *i.vlan;
  if (!i.addresses.empty()) j["addresses"] = i.addresses;
  if (i.sriov) {
    json s = {{"trust", i.sriov->trust}, {"spoofCheck", i.sriov->spoof_check}};
    if (!i.sriov->resource_name.empty()) s["resourceName"] = i.sriov->resource_name;
    j["sriov"] = s;
  }
  if (i.bond) {
    j["bond"] = {{"mode", i.bond->mode},
                 {"members", i.bond->members},
                 {"miimonMilliseconds", i.bond->miimon_ms}};
  }
  return j;
}

std::optional<uint64_t> ParseRevision(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

std::string WorkloadKey::ToString() const { return namespace_ + "/" + kind + "/" + name; }

Status ValidateWorkloadKey(const WorkloadKey& key, std::string_view field) {
  std::string f(field);
  if (!IsDnsLabel(key.namespace_)) {
    return Invalid(f + ".namespace", "\"" + key.namespace_ + "\" is not a DNS-1123 label");
  }
  if (key.kind != kKindPod && key.kind != kKindVirtualMachine) {
    return Invalid(f + ".kind", "\"" + key.kind + "\" is not one of Pod, VirtualMachine");
  }
  if (!IsDnsSubdomain(key.name)) {
    return Invalid(f + ".name", "\"" + key.name + "\" is not a DNS-1123 subdomain");
  }
  return Status::Ok();
}

const InterfaceConfig* WorkloadConfig::FindInterface(std::string_view name) const {
  for (const auto& i : interfaces) {
    if (i.name == name) return &i;
  }
  return nullptr;
}

Status CheckIp(std::string_view text, std::string_view field, int* family) {
  std::string s(text);
  unsigned char buf[16];
  if (s.find(':') == std::string::npos) {
    if (::inet_pton(AF_INET, s.c_str(), buf) != 1) {
      return Invalid(field, "\"" + s + "\" is not an IPv4 address");
    }
    *family = 4;
  } else {
    if (::inet_pton(AF_INET6, s.c_str(), buf) != 1) {
      return Invalid(field, "\"" + s + "\" is not an IPv6 address");
    }
    *family = 6;
  }
  return Status::Ok();
}

Status CheckCidr(std::string_view text, std::string_view field, int* family) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) {
    return Invalid(field, "\"" + std::string(text) + "\" has no prefix length (ADDRESS/PREFIX)");
  }
  STRATA_RETURN_IF_ERROR(CheckIp(text.substr(0, slash), field, family));
  std::string_view p = text.substr(slash + 1);
  int prefix = -1;
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
  int max = *family == 4 ? 32 : 128;
  if (p.empty() || ec != std::errc() || ptr != p.data() + p.size() || prefix < 0 || prefix > max) {
    return Invalid(field, "prefix length of \"" + std::string(text) + "\" is not in 0.." +
                              std::to_string(max));
  }
  return Status::Ok();
}

Status ParseSpecInto(const json& spec, WorkloadConfig* config) {
  if (!spec.is_object()) return Invalid("spec", "must be an object");
  const json* workload = nullptr;
  STRATA_RETURN_IF_ERROR(ReadObject(spec, "workload", "spec", &workload));
  if (workload) {
    STRATA_RETURN_IF_ERROR(ReadString(*workload, "kind", "spec.workload", &config->workload.kind));
    STRATA_RETURN_IF_ERROR(ReadString(*workload, "name", "spec.workload", &config->workload.name));
  }
  auto ifaces = spec.find("interfaces");
  if (ifaces == spec.end() || !ifaces->is_array() || ifaces->empty()) {
    return Invalid("spec.interfaces", "required: a list of 1-16 interfaces");
  }
  if (ifaces->size() > 16) return Invalid("spec.interfaces", "more than 16 interfaces");
  config->interfaces.clear();
  std::set<std::string> names;
  for (size_t i = 0; i < ifaces->size(); ++i) {
    std::string path = "spec.interfaces[" + std::to_string(i) + "]";
    InterfaceConfig iface;
    STRATA_RETURN_IF_ERROR(ParseInterface((*ifaces)[i], path, &iface));
    if (!names.insert(iface.name).second) {
      return Invalid(path + ".name", "duplicate interface \"" + iface.name + "\"");
    }
    config->interfaces.push_back(std::move(iface));
  }
  config->routes.clear();
  if (auto routes = spec.find("routes"); routes != spec.end() && !routes->is_null()) {
    if (!routes->is_array()) return Invalid("spec.routes", "must be a list");
    for (size_t i = 0; i < routes->size(); ++i) {
      std::string path = "spec.routes[" + std::to_string(i) + "]";
      const json& r = (*routes)[i];
      if (!r.is_object()) return Invalid(path, "must be an object");
      RouteConfig route;
      STRATA_RETURN_IF_ERROR(ReadString(r, "destination", path, &route.destination));
      int dst_family = 0;
      STRATA_RETURN_IF_ERROR(CheckCidr(route.destination, path + ".destination", &dst_family));
      STRATA_RETURN_IF_ERROR(ReadString(r, "gateway", path, &route.gateway));
      if (!route.gateway.empty()) {
        int gw_family = 0;
        STRATA_RETURN_IF_ERROR(CheckIp(route.gateway, path + ".gateway", &gw_family));
        if (gw_family != dst_family) {
          return Invalid(path + ".gateway", "IPv" + std::to_string(gw_family) +
                                                " gateway for an IPv" + std::to_string(dst_family) +
                                                " destination");
        }
      }
      config->routes.push_back(std::move(route));
    }
  }
  config->dns.reset();
  const json* dns = nullptr;
  STRATA_RETURN_IF_ERROR(ReadObject(spec, "dns", "spec", &dns));
  if (dns) {
    DnsConfig d;
    STRATA_RETURN_IF_ERROR(ReadStrings(*dns, "nameservers", "spec.dns", &d.nameservers));
    for (size_t i = 0; i < d.nameservers.size(); ++i) {
      int family = 0;
      STRATA_RETURN_IF_ERROR(
          CheckIp(d.nameservers[i], "spec.dns.nameservers[" + std::to_string(i) + "]", &family));
    }
    STRATA_RETURN_IF_ERROR(ReadStrings(*dns, "searches", "spec.dns", &d.searches));
    config->dns = d;
  }
  return Status::Ok();
}

json ToJson(const WorkloadConfig& c) {
  json ifaces = json::array();
  for (const auto& i : c.interfaces) ifaces.push_back(InterfaceToJson(i));
  json spec = {{"workload", {{"kind", c.workload.kind}, {"name", c.workload.name}}},
               {"interfaces", ifaces}};
  if (!c.routes.empty()) {
    json routes = json::array();
    for (const auto& r : c.routes) {
      json rj = {{"destination", r.destination}};
      if (!r.gateway.empty()) rj["gateway"] = r.gateway;
      routes.push_back(rj);
    }
    spec["routes"] = routes;
  }
  if (c.dns) {
    json d = json::object();
    if (!c.dns->nameservers.empty()) d["nameservers"] = c.dns->nameservers;
    if (!c.dns->searches.empty()) d["searches"] = c.dns->searches;
    spec["dns"] = d;
  }
  return {{"workload",
           {{"namespace", c.workload.namespace_},
            {"kind", c.workload.kind},
            {"name", c.workload.name}}},
          {"source",
           {{"namespace", c.source.namespace_},
            {"name", c.source.name},
            {"uid", c.source.uid},
            {"resourceVersion", c.source.resource_version},
            {"generation", c.source.generation}}},
          {"spec", spec}};
}

Result<WorkloadConfig> WorkloadConfigFromJson(const json& j) {
  if (!j.is_object()) return InvalidArgumentError("record: must be an object");
  WorkloadConfig c;
  const json* w = nullptr;
  STRATA_RETURN_IF_ERROR(ReadObject(j, "workload", "record", &w));
  if (!w) return InvalidArgumentError("record.workload: required");
  STRATA_RETURN_IF_ERROR(ReadString(*w, "namespace", "record.workload", &c.workload.namespace_));
  STRATA_RETURN_IF_ERROR(ReadString(*w, "kind", "record.workload", &c.workload.kind));
  STRATA_RETURN_IF_ERROR(ReadString(*w, "name", "record.workload", &c.workload.name));
  STRATA_RETURN_IF_ERROR(ValidateWorkloadKey(c.workload, "record.workload"));
  const json* s = nullptr;
  STRATA_RETURN_IF_ERROR(ReadObject(j, "source", "record", &s));
  if (!s) return InvalidArgumentError("record.source: required");
  STRATA_RETURN_IF_ERROR(ReadString(*s, "namespace", "record.source", &c.source.namespace_));
  STRATA_RETURN_IF_ERROR(ReadString(*s, "name", "record.source", &c.source.name));
  STRATA_RETURN_IF_ERROR(ReadString(*s, "uid", "record.source", &c.source.uid));
  STRATA_RETURN_IF_ERROR(
      ReadString(*s, "resourceVersion", "record.source", &c.source.resource_version));
  STRATA_RETURN_IF_ERROR(ReadInt(*s, "generation", "record.source", &c.source.generation));
  auto spec = j.find("spec");
  if (spec == j.end()) return InvalidArgumentError("record.spec: required");
  WorkloadKey key = c.workload;
  STRATA_RETURN_IF_ERROR(ParseSpecInto(*spec, &c));
  if (c.workload != key) {
    return InvalidArgumentError("record.spec.workload: does not match record.workload");
  }
  return c;
}

bool IsNewer(const SourceObject& candidate, const SourceObject& stored) {
  auto a = ParseRevision(candidate.resource_version);
  auto b = ParseRevision(stored.resource_version);
  if (a && b) return *a > *b;
  if (candidate.uid == stored.uid) {
    if (candidate.generation != stored.generation) {
      return candidate.generation > stored.generation;
    }
    return candidate.resource_version != stored.resource_version;
  }
  return true;
}

}  // namespace strata::vnc
