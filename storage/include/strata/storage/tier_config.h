#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "strata/common/result.h"

namespace strata::storage {

enum class TierClass { kSsd, kSas, kSata };

std::string_view TierClassName(TierClass c);  // "ssd", "sas", "sata"
Result<TierClass> ParseTierClass(std::string_view text);

// One disk group as configured with --tier CLASS=PATH[:CAPACITY[:PRICE]].
struct TierConfig {
  TierClass tier_class = TierClass::kSsd;
  std::string path;
  // Unset: the capacity of the file system or block device under `path`.
  std::optional<uint64_t> capacity_bytes;
  // Price per GiB-hour used for metering; unset: the class default.
  std::optional<double> price_per_gib_hour;

  double EffectivePrice() const;
};

// Default prices per GiB-hour, in the spirit of public clouds' SSD/HDD ratio.
double DefaultPricePerGibHour(TierClass c);

// Parses the --tier flag value, e.g. "ssd=/var/lib/strata/ssd:100GiB:0.0002".
// Errors name the flag value and the part that is wrong.
Result<TierConfig> ParseTierFlag(std::string_view text);

}  // namespace strata::storage
