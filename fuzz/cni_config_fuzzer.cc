// The CNI network configuration a runtime hands a plugin on stdin (cni-plugin netconf.cc,
// spec.cc, ipam.cc): ParseNetConf (cniVersion, name, type, runtimeConfig, prevResult converted
// to the config's version), GC's valid attachments, the IPAM result a chained plugin reads from
// prevResult, and result conversion to every supported version. Beyond "no crash": every error
// maps to a CNI error code with a message, and converting a result to a version is idempotent.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "strata/cni/ipam.h"
#include "strata/cni/netconf.h"
#include "strata/cni/spec.h"

namespace {

namespace cni = strata::cni;

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "cni_config_fuzzer: %s\n", what);
    std::abort();
  }
}

void CheckError(const strata::Status& st) {
  if (st.ok()) return;
  cni::CniError e = cni::ToCniError(st);
  Check(!e.msg.empty(), "an error without a message");
  (void)cni::ErrorJson(e, cni::kLatestVersion).dump();
}

void FuzzResult(const nlohmann::json& result) {
  auto ipam = cni::ParseIpamResult(result);
  CheckError(ipam.status());
  for (cni::SpecVersion v : cni::SupportedVersions()) {
    auto once = cni::ConvertResult(result, v, "prevResult");
    CheckError(once.status());
    if (!once.ok()) continue;
    auto twice = cni::ConvertResult(once.value(), v, "prevResult");
    Check(twice.ok(), "a converted result does not convert again");
    Check(twice.value() == once.value(), "converting a result twice changes it");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return 0;  // code 6, the skeleton's
  auto conf = cni::ParseNetConf(json);
  CheckError(conf.status());
  if (conf.ok()) {
    CheckError(cni::ParseValidAttachments(conf.value()).status());
    if (conf.value().prev_result) FuzzResult(*conf.value().prev_result);
  }
  // A bare result too (what a plugin prints, what the next one gets as prevResult).
  if (json.is_object() && json.contains("prevResult")) FuzzResult(json["prevResult"]);
  FuzzResult(json);
  return 0;
}
