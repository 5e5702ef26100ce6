#pragma once

#include <string_view>

#include "strata/common/result.h"
#include "strata/storage/v1/storage.pb.h"

namespace strata::device {

// The one spelling of tier classes across Strata (StorageClass `tier`, StorageDevice
// spec.tiers[].class, strata-admin --tier): "ssd", "sas", "sata".

// "ssd" | "sas" | "sata"; "" for TIER_CLASS_UNSPECIFIED (or a value this build does not know).
std::string_view TierName(storage::v1::TierClass tier);

// The inverse of TierName; "" is TIER_CLASS_UNSPECIFIED. Anything else: INVALID_ARGUMENT naming
// the text and the valid names.
Result<storage::v1::TierClass> ParseTier(std::string_view text);

}  // namespace strata::device
