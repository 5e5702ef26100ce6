#include "strata/netd/sriov_pool.h"

#include <cctype>
#include <set>

namespace strata::netd {
namespace {

bool IsPoolName(std::string_view s) {
  if (s.empty() || s.size() > 40) return false;
  for (char c : s) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-')) {
      return false;
    }
  }
  return s.front() != '-' && s.back() != '-';
}

// An interface name (IFNAMSIZ - 1 bytes, no '/', no blanks) or a PCI address.
bool IsPfName(std::string_view s) {
  if (s.empty() || s.size() > 15 || s == "." || s == "..") return false;
  for (char c : s) {
    if (c == '/' || std::isspace(static_cast<unsigned char>(c)) || c == ',' || c == '=') {
      return false;
    }
  }
  return true;
}

}  // namespace

Result<SriovPoolSpec> ParseSriovPool(std::string_view value) {
  const std::string v(value);
  size_t eq = v.find('=');
  if (eq == std::string::npos) {
    return InvalidArgumentError("--sriov-pool: '" + v + "' is not NAME=PF[,PF...]");
  }
  SriovPoolSpec spec;
  spec.name = v.substr(0, eq);
  if (!IsPoolName(spec.name)) {
    return InvalidArgumentError("--sriov-pool: pool name '" + spec.name +
                                "' must be 1-40 of [a-z0-9-], not starting or ending with '-'");
  }
  std::string rest = v.substr(eq + 1);
  std::set<std::string> seen;
  size_t start = 0;
  while (start <= rest.size()) {
    size_t comma = rest.find(',', start);
    if (comma == std::string::npos) comma = rest.size();
    std::string pf = rest.substr(start, comma - start);
    if (!IsPfName(pf)) {
      return InvalidArgumentError("--sriov-pool " + spec.name + ": '" + pf +
                                  "' is not an interface name or a PCI address");
    }
    if (!seen.insert(pf).second) {
      return InvalidArgumentError("--sriov-pool " + spec.name + ": PF '" + pf + "' listed twice");
    }
    spec.pfs.push_back(pf);
    start = comma + 1;
  }
  return spec;
}

Result<std::vector<SriovPoolSpec>> ParseSriovPools(const std::vector<std::string>& values) {
  std::vector<SriovPoolSpec> out;
  std::set<std::string> names, pfs;
  for (const auto& v : values) {
    STRATA_ASSIGN_OR_RETURN(SriovPoolSpec spec, ParseSriovPool(v));
    if (!names.insert(spec.name).second) {
      return InvalidArgumentError("--sriov-pool: pool '" + spec.name + "' defined twice");
    }
    for (const auto& pf : spec.pfs) {
      if (!pfs.insert(pf).second) {
        return InvalidArgumentError("--sriov-pool " + spec.name + ": PF '" + pf +
                                    "' is already in another pool (a VF is in one pool only)");
      }
    }
    out.push_back(std::move(spec));
  }
  return out;
}

std::string SriovResourceName(std::string_view prefix, const SriovPoolSpec& pool) {
  return std::string(prefix) + "/sriov-" + pool.name;
}

std::string PciDeviceEnvName(std::string_view resource_name) {
  std::string out = "PCIDEVICE_";
  for (char c : resource_name) {
    if (c == '.' || c == '/') {
      out.push_back('_');
    } else {
      out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    }
  }
  return out;
}

}  // namespace strata::netd
