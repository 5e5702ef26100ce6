#pragma once

// The CNI specification's wire-level vocabulary: spec versions, the well-known error codes, the
// error JSON, and conversion of a result between spec versions (CNI SPEC.md 1.1.0, with 0.3.x,
// 0.4.0 and 1.0.0 still in use).

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "strata/common/result.h"
#include "strata/common/status.h"

namespace strata::cni {

// A spec version this code speaks. Ordered: a < b means a is older.
enum class SpecVersion { k0_3_0, k0_3_1, k0_4_0, k1_0_0, k1_1_0 };

inline constexpr SpecVersion kLatestVersion = SpecVersion::k1_1_0;

std::string_view VersionString(SpecVersion v);
// Every version VERSION reports, oldest first.
const std::vector<SpecVersion>& SupportedVersions();
// "1.0.0" -> k1_0_0. UNIMPLEMENTED (maps to CNI code 1) when the text names no supported version.
Result<SpecVersion> ParseVersion(std::string_view text);

// Well-known error codes (SPEC.md "Well-known Error Codes"); 100+ are plugin-specific.
enum class ErrorCode : int {
  kIncompatibleVersion = 1,
  kUnsupportedField = 2,
  kContainerUnknown = 3,
  kInvalidEnvironment = 4,
  kIoFailure = 5,
  kDecodingFailure = 6,
  kInvalidNetworkConfig = 7,
  kTryAgainLater = 11,
  kPluginNotAvailable = 50,
  kPluginNotAvailableLimitedConnectivity = 51,
  // Not in the spec's table: the value libcni's Go plugins use for "anything else".
  kInternal = 999,
};

struct CniError {
  ErrorCode code = ErrorCode::kInternal;
  std::string msg;
  std::string details;
};

// The one mapping from an internal Status to the spec's codes (STYLE: map once, at the edge):
//   UNIMPLEMENTED -> 1, INVALID_ARGUMENT / OUT_OF_RANGE -> 7, FAILED_PRECONDITION -> 4,
//   CANCELLED (UnsupportedFieldError) -> 2, DATA_LOSS -> 5, UNAVAILABLE / ABORTED /
//   RESOURCE_EXHAUSTED -> 11, anything else -> 999.
// Decoding failures (code 6) and the env checks are raised by the skeleton directly.
CniError ToCniError(const Status& status);

// A config field this plugin does not implement (code 2). Status has no such code; kCancelled is
// otherwise unused in strata-cni and stands for it (ToCniError maps it).
inline Status UnsupportedFieldError(std::string m) {
  return {StatusCode::kCancelled, std::move(m)};
}

// Plugin state on disk could not be read or written (code 5).
inline Status IoFailureError(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }

// CHECK found the attachment differs from its config: a plain failure (code 999).
inline Status CheckMismatchError(std::string m) { return {StatusCode::kUnknown, std::move(m)}; }

// {"cniVersion", "code", "msg", "details"?}.
nlohmann::json ErrorJson(const CniError& error, SpecVersion version);

// Rewrites a result (any supported version's shape) into `to`'s shape:
//   0.3.x/0.4.0: every ips[] entry carries "version" ("4"/"6", derived from the address);
//   1.0.0+: no "version" in ips[];
//   before 1.1.0: no interfaces[].mtu/socketPath/pciID, no
//   routes[].mtu/advmss/priority/table/scope.
// Unknown fields (dns, plugin extensions) pass through. INVALID_ARGUMENT when the JSON is not a
// result (e.g. "interfaces" not an array); `field` names it in the message ("prevResult").
Result<nlohmann::json> ConvertResult(const nlohmann::json& result, SpecVersion to,
                                     std::string_view field);

// An interface entry for a result. Optional members are left out when empty/zero.
struct ResultInterface {
  std::string name;
  std::string mac;
  std::string sandbox;      // netns path; empty for host-side interfaces
  int mtu = 0;              // 1.1.0+
  std::string pci_id;       // 1.1.0+: PCI address of a passed-through device
  std::string socket_path;  // 1.1.0+
};

// Appends to result["interfaces"] (created if absent); returns the new entry's index.
int AppendInterface(nlohmann::json& result, const ResultInterface& iface);

}  // namespace strata::cni
