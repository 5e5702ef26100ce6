// The typed decoding of every strata.io/v1alpha1 kind (operator/include/strata/operator/api):
// the input is an object as JSON, or as YAML (the docs' and the CRDs' samples), and every
// kind's decoder reads it whatever its `kind` says. Beyond "no crash": an object a decoder
// accepts, written back with ToJson, decodes again and writes back to the same JSON.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "strata/kube/yaml.h"
#include "strata/operator/api/v1alpha1/bandwidth_policy.h"
#include "strata/operator/api/v1alpha1/dedup_policy.h"
#include "strata/operator/api/v1alpha1/maintenance_window.h"
#include "strata/operator/api/v1alpha1/node_network_policy.h"
#include "strata/operator/api/v1alpha1/storage_device.h"
#include "strata/operator/api/v1alpha1/tiering_policy.h"
#include "strata/operator/api/v1alpha1/usage_report.h"
#include "strata/operator/api/v1alpha1/virtual_network_config.h"

namespace {

namespace api = strata::op::api::v1alpha1;
using strata::kube::Json;

template <typename Decode>
void RoundTrip(const Json& json, Decode decode, const char* kind) {
  auto first = decode(json);
  if (!first.ok()) {
    if (first.status().message().empty()) {
      std::fprintf(stderr, "crd_fuzzer: %s: an error without a message\n", kind);
      std::abort();
    }
    return;
  }
  Json written = api::ToJson(first.value());
  auto second = decode(written);
  if (!second.ok()) {
    std::fprintf(stderr, "crd_fuzzer: %s: ToJson wrote what FromJson refuses: %s\n%s\n", kind,
                 second.status().ToString().c_str(), written.dump().c_str());
    std::abort();
  }
  Json rewritten = api::ToJson(second.value());
  if (rewritten != written) {
    std::fprintf(stderr, "crd_fuzzer: %s: not stable through FromJson/ToJson\n%s\n%s\n", kind,
                 written.dump().c_str(), rewritten.dump().c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    auto yaml = strata::kube::YamlToJson(text);
    if (!yaml.ok()) return 0;
    json = std::move(yaml).value();
  }
  RoundTrip(json, api::StorageDeviceFromJson, "StorageDevice");
  RoundTrip(json, api::TieringPolicyFromJson, "TieringPolicy");
  RoundTrip(json, api::DedupPolicyFromJson, "DedupPolicy");
  RoundTrip(json, api::MaintenanceWindowFromJson, "MaintenanceWindow");
  RoundTrip(json, api::BandwidthPolicyFromJson, "BandwidthPolicy");
  RoundTrip(json, api::VirtualNetworkConfigFromJson, "VirtualNetworkConfig");
  RoundTrip(json, api::UsageReportFromJson, "UsageReport");
  RoundTrip(json, api::NodeNetworkPolicyFromJson, "NodeNetworkPolicy");
  return 0;
}
