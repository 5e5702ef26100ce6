#include "strata/device/tier.h"

#include <string>

namespace strata::device {

std::string_view TierName(storage::v1::TierClass tier) {
  switch (tier) {
    case storage::v1::TIER_CLASS_SSD:
      return "ssd";
    case storage::v1::TIER_CLASS_SAS:
      return "sas";
    case storage::v1::TIER_CLASS_SATA:
      return "sata";
    default:
      return "";
  }
}

Result<storage::v1::TierClass> ParseTier(std::string_view text) {
  if (text.empty()) return storage::v1::TIER_CLASS_UNSPECIFIED;
  if (text == "ssd") return storage::v1::TIER_CLASS_SSD;
  if (text == "sas") return storage::v1::TIER_CLASS_SAS;
  if (text == "sata") return storage::v1::TIER_CLASS_SATA;
  return InvalidArgumentError("tier '" + std::string(text) + "' is not one of ssd, sas, sata");
}

}  // namespace strata::device
