#include "strata/storage/copy_pacing.h"

#include <cmath>
#include <cstdlib>
#include <string_view>

#include "strata/common/units.h"

namespace strata::storage {
namespace {

// "2ms", "500us", "1.5s", "800ns": a positive latency.
Result<std::chrono::nanoseconds> ParseLatency(const std::string& text, const std::string& flag) {
  static constexpr std::pair<std::string_view, double> kUnits[] = {
      {"ns", 1.0}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}};
  for (const auto& [suffix, ns_per_unit] : kUnits) {
    if (text.size() <= suffix.size() ||
        std::string_view(text).substr(text.size() - suffix.size()) != suffix) {
      continue;
    }
    const std::string number = text.substr(0, text.size() - suffix.size());
    char* end = nullptr;
    const double v = std::strtod(number.c_str(), &end);
    if (end == number.c_str() || *end != '\0' || !std::isfinite(v) || v <= 0) break;
    const double ns = v * ns_per_unit;
    if (ns < 1 || ns > 60e9) {
      return InvalidArgumentError(flag + ": '" + text + "' is not between 1ns and 60s");
    }
    return std::chrono::nanoseconds(static_cast<int64_t>(ns));
  }
  return InvalidArgumentError(flag + ": '" + text +
                              "' is neither a factor of the idle p99 like 3x nor a latency "
                              "like 2ms or 500us");
}

}  // namespace

Result<CopyPacing> ParseCopyPacing(const std::string& rate, const std::string& floor,
                                   const std::string& ceiling, const std::string& target) {
  CopyPacing p;
  if (rate == "auto") {
    p.mode = CopyPacing::Mode::kAdaptive;
  } else {
    auto r = ParseSize(rate);
    if (!r.ok()) return r.status().WithContext("--copy-rate-with-clients");
    p.mode = *r == 0 ? CopyPacing::Mode::kNone : CopyPacing::Mode::kFixed;
    p.fixed_bytes_per_second = *r;
  }
  auto f = ParseSize(floor);
  if (!f.ok()) return f.status().WithContext("--copy-rate-floor");
  if (*f == 0) {
    return InvalidArgumentError(
        "--copy-rate-floor: must be more than 0, so a move always "
        "progresses");
  }
  p.floor_bytes_per_second = *f;
  auto c = ParseSize(ceiling);
  if (!c.ok()) return c.status().WithContext("--copy-rate-ceiling");
  if (*c != 0 && *c < *f) {
    return InvalidArgumentError("--copy-rate-ceiling: '" + ceiling +
                                "' is below --copy-rate-floor '" + floor + "'");
  }
  p.ceiling_bytes_per_second = *c;
  if (!target.empty() && (target.back() == 'x' || target.back() == 'X')) {
    const std::string number = target.substr(0, target.size() - 1);
    char* end = nullptr;
    const double v = std::strtod(number.c_str(), &end);
    if (end == number.c_str() || *end != '\0' || !std::isfinite(v) || v <= 1 || v > 1000) {
      return InvalidArgumentError("--copy-client-latency-target: '" + target +
                                  "' is not a factor above 1 and up to 1000 (like 3x)");
    }
    p.target_factor = v;
  } else {
    STRATA_ASSIGN_OR_RETURN(p.target_latency, ParseLatency(target, "--copy-client-latency-target"));
  }
  return p;
}

}  // namespace strata::storage
