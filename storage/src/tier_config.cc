#include "strata/storage/tier_config.h"

#include <charconv>
#include <string>
#include <system_error>

#include "strata/common/units.h"

namespace strata::storage {

std::string_view TierClassName(TierClass c) {
  switch (c) {
    case TierClass::kSsd:
      return "ssd";
    case TierClass::kSas:
      return "sas";
    case TierClass::kSata:
      return "sata";
  }
  return "unknown";
}

Result<TierClass> ParseTierClass(std::string_view text) {
  if (text == "ssd") return TierClass::kSsd;
  if (text == "sas") return TierClass::kSas;
  if (text == "sata") return TierClass::kSata;
  return InvalidArgumentError("tier class '" + std::string(text) +
                              "' is not one of ssd, sas, sata");
}

double DefaultPricePerGibHour(TierClass c) {
  switch (c) {
    case TierClass::kSsd:
      return 0.00017;
    case TierClass::kSas:
      return 0.00008;
    case TierClass::kSata:
      return 0.00004;
  }
  return 0;
}

double TierConfig::EffectivePrice() const {
  return price_per_gib_hour.value_or(DefaultPricePerGibHour(tier_class));
}

Result<TierConfig> ParseTierFlag(std::string_view text) {
  const std::string prefix = "--tier '" + std::string(text) + "': ";
  size_t eq = text.find('=');
  if (eq == std::string_view::npos) {
    return InvalidArgumentError(prefix + "expected CLASS=PATH[:CAPACITY[:PRICE]]");
  }
  TierConfig out;
  auto cls = ParseTierClass(text.substr(0, eq));
  if (!cls.ok()) return cls.status().WithContext(prefix + "class");
  out.tier_class = *cls;

  std::string_view rest = text.substr(eq + 1);
  size_t colon = rest.find(':');
  out.path = std::string(rest.substr(0, colon));
  if (out.path.empty()) return InvalidArgumentError(prefix + "path is empty");
  if (out.path.front() != '/') {
    return InvalidArgumentError(prefix + "path '" + out.path + "' must be absolute");
  }
  if (colon == std::string_view::npos) return out;

  rest = rest.substr(colon + 1);
  colon = rest.find(':');
  std::string_view cap = rest.substr(0, colon);
  if (!cap.empty()) {
    auto bytes = ParseSize(cap);
    if (!bytes.ok()) return bytes.status().WithContext(prefix + "capacity");
    if (*bytes == 0) return InvalidArgumentError(prefix + "capacity must be greater than 0");
    out.capacity_bytes = *bytes;
  }
  if (colon == std::string_view::npos) return out;

  std::string_view price = rest.substr(colon + 1);
  double value = 0;
  auto [end, ec] = std::from_chars(price.data(), price.data() + price.size(), value);
  if (price.empty() || ec != std::errc() || end != price.data() + price.size() || value < 0) {
    return InvalidArgumentError(prefix + "price '" + std::string(price) +
                                "' is not a non-negative number (per GiB-hour)");
  }
  out.price_per_gib_hour = value;
  return out;
}

}  // namespace strata::storage
