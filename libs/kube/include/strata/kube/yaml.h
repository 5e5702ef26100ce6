#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "strata/common/result.h"

namespace strata::kube {

// Parses the first YAML document into JSON (core schema: plain true/false/null, integers and
// floats become JSON values; everything else, and every quoted scalar, is a string). Anchors and
// aliases are not supported (kubeconfigs and manifests here do not use them). INVALID_ARGUMENT
// with the line on a syntax error. Used for kubeconfigs and for manifests in tests.
Result<nlohmann::json> YamlToJson(std::string_view text);

}  // namespace strata::kube
