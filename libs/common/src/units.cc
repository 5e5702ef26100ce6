#include "strata/common/units.h"

#include <array>
#include <charconv>
#include <cstdio>
#include <limits>
#include <utility>

namespace strata {
namespace {

struct Unit {
  std::string_view name;
  uint64_t multiplier;
};

constexpr uint64_t kKi = 1024;
constexpr uint64_t kK = 1000;

constexpr std::array<Unit, 22> kUnits = {{
    {"", 1},
    {"B", 1},
    {"Ki", kKi},
    {"KiB", kKi},
    {"Mi", kKi* kKi},
    {"MiB", kKi* kKi},
    {"Gi", kKi* kKi* kKi},
    {"GiB", kKi* kKi* kKi},
    {"Ti", kKi* kKi* kKi* kKi},
    {"TiB", kKi* kKi* kKi* kKi},
    {"Pi", kKi* kKi* kKi* kKi* kKi},
    {"PiB", kKi* kKi* kKi* kKi* kKi},
    {"K", kK},
    {"KB", kK},
    {"M", kK* kK},
    {"MB", kK* kK},
    {"G", kK* kK* kK},
    {"GB", kK* kK* kK},
    {"T", kK* kK* kK* kK},
    {"TB", kK* kK* kK* kK},
    {"P", kK* kK* kK* kK* kK},
    {"PB", kK* kK* kK* kK* kK},
}};

}  // namespace

Result<uint64_t> ParseSize(std::string_view text) {
  std::string quoted = "'" + std::string(text) + "'";
  if (text.empty()) return InvalidArgumentError("size is empty");
  uint64_t number = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec == std::errc::result_out_of_range) {
    return InvalidArgumentError(quoted + " is too large");
  }
  if (ec != std::errc() || end == text.data()) {
    return InvalidArgumentError(quoted + " is not a size: it must start with a whole number");
  }
  std::string_view suffix(end, static_cast<size_t>(text.data() + text.size() - end));
  for (const Unit& unit : kUnits) {
    if (unit.name != suffix) continue;
    if (number > std::numeric_limits<uint64_t>::max() / unit.multiplier) {
      return InvalidArgumentError(quoted + " is too large");
    }
    return number * unit.multiplier;
  }
  return InvalidArgumentError(quoted + " has unknown unit '" + std::string(suffix) +
                              "' (use B, KiB, MiB, GiB, TiB, PiB or K, M, G, T, P)");
}

std::string FormatSize(uint64_t bytes) {
  static constexpr std::array<std::string_view, 6> kNames = {"B",   "KiB", "MiB",
                                                             "GiB", "TiB", "PiB"};
  size_t unit = 0;
  uint64_t whole = bytes;
  while (whole >= 1024 && unit + 1 < kNames.size()) {
    whole /= 1024;
    ++unit;
  }
  double scaled = static_cast<double>(bytes);
  for (size_t i = 0; i < unit; ++i) scaled /= 1024.0;
  char buf[64];
  if (unit == 0 || scaled == static_cast<double>(whole)) {
    std::snprintf(buf, sizeof(buf), "%llu %s", static_cast<unsigned long long>(whole),
                  kNames[unit].data());
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f %s", scaled, kNames[unit].data());
  }
  return buf;
}

}  // namespace strata
