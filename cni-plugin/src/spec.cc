#include "strata/cni/spec.h"

#include <array>
#include <string>

namespace strata::cni {
namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 5> kVersionNames = {"0.3.0", "0.3.1", "0.4.0", "1.0.0",
                                                           "1.1.0"};

std::string SupportedList() {
  std::string out;
  for (auto name : kVersionNames) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

Status NotAResult(std::string_view field, std::string_view why) {
  return InvalidArgumentError(std::string(field) + ": " + std::string(why));
}

}  // namespace

std::string_view VersionString(SpecVersion v) { return kVersionNames[static_cast<size_t>(v)]; }

const std::vector<SpecVersion>& SupportedVersions() {
  static const std::vector<SpecVersion> kAll = {SpecVersion::k0_3_0, SpecVersion::k0_3_1,
                                                SpecVersion::k0_4_0, SpecVersion::k1_0_0,
                                                SpecVersion::k1_1_0};
  return kAll;
}

Result<SpecVersion> ParseVersion(std::string_view text) {
  for (size_t i = 0; i < kVersionNames.size(); ++i) {
    if (kVersionNames[i] == text) return static_cast<SpecVersion>(i);
  }
  return UnimplementedError("cniVersion: '" + std::string(text) +
                            "' is not supported (supported: " + SupportedList() + ")");
}

CniError ToCniError(const Status& status) {
  CniError e;
  e.msg = status.message();
  switch (status.code()) {
    case StatusCode::kUnimplemented:
      e.code = ErrorCode::kIncompatibleVersion;
      break;
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
      e.code = ErrorCode::kInvalidNetworkConfig;
      break;
    case StatusCode::kFailedPrecondition:
      e.code = ErrorCode::kInvalidEnvironment;
      break;
    case StatusCode::kCancelled:
      e.code = ErrorCode::kUnsupportedField;
      break;
    case StatusCode::kDataLoss:
      e.code = ErrorCode::kIoFailure;
      break;
    case StatusCode::kUnavailable:
    case StatusCode::kAborted:
    case StatusCode::kResourceExhausted:
      e.code = ErrorCode::kTryAgainLater;
      break;
    default:
      e.code = ErrorCode::kInternal;
      if (status.code() != StatusCode::kUnknown) {
        e.details = std::string(StatusCodeName(status.code()));
      }
      break;
  }
  return e;
}

json ErrorJson(const CniError& error, SpecVersion version) {
  json j = {{"cniVersion", VersionString(version)},
            {"code", static_cast<int>(error.code)},
            {"msg", error.msg}};
  if (!error.details.empty()) j["details"] = error.details;
  return j;
}

Result<json> ConvertResult(const json& result, SpecVersion to, std::string_view field) {
  if (!result.is_object()) return NotAResult(field, "must be an object");
  json out = result;
  out["cniVersion"] = VersionString(to);
  const bool legacy_ips = to < SpecVersion::k1_0_0;
  const bool v11 = to >= SpecVersion::k1_1_0;
  if (out.contains("interfaces")) {
    if (!out["interfaces"].is_array()) return NotAResult(field, "interfaces: must be an array");
    for (auto& iface : out["interfaces"]) {
      if (!iface.is_object() || !iface.contains("name") || !iface["name"].is_string()) {
        return NotAResult(field, "interfaces: every entry needs a string 'name'");
      }
      if (!v11) {
        iface.erase("mtu");
        iface.erase("socketPath");
        iface.erase("pciID");
      }
    }
  }
  if (out.contains("ips")) {
    if (!out["ips"].is_array()) return NotAResult(field, "ips: must be an array");
    for (auto& ip : out["ips"]) {
      if (!ip.is_object() || !ip.contains("address") || !ip["address"].is_string()) {
        return NotAResult(field, "ips: every entry needs a string 'address'");
      }
      if (legacy_ips) {
        const std::string& addr = ip["address"].get_ref<const std::string&>();
        ip["version"] = addr.find(':') == std::string::npos ? "4" : "6";
      } else {
        ip.erase("version");
      }
    }
  }
  if (out.contains("routes")) {
    if (!out["routes"].is_array()) return NotAResult(field, "routes: must be an array");
    if (!v11) {
      for (auto& r : out["routes"]) {
        if (!r.is_object()) return NotAResult(field, "routes: entries must be objects");
        for (const char* k : {"mtu", "advmss", "priority", "table", "scope"}) r.erase(k);
      }
    }
  }
  return out;
}

int AppendInterface(json& result, const ResultInterface& iface) {
  if (!result.contains("interfaces") || !result["interfaces"].is_array()) {
    result["interfaces"] = json::array();
  }
  json e = {{"name", iface.name}};
  if (!iface.mac.empty()) e["mac"] = iface.mac;
  if (!iface.sandbox.empty()) e["sandbox"] = iface.sandbox;
  if (iface.mtu > 0) e["mtu"] = iface.mtu;
  if (!iface.pci_id.empty()) e["pciID"] = iface.pci_id;
  if (!iface.socket_path.empty()) e["socketPath"] = iface.socket_path;
  result["interfaces"].push_back(std::move(e));
  return static_cast<int>(result["interfaces"].size()) - 1;
}

}  // namespace strata::cni
