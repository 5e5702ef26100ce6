#include "strata/nbd/testing/export_flag.h"

#include <bit>
#include <charconv>

#include "strata/common/units.h"

namespace strata::nbd {

Result<ExportFlag> ParseExportFlag(std::string_view text) {
  std::string prefix = "--export '" + std::string(text) + "': ";
  ExportFlag out;
  size_t eq = text.find('=');
  if (eq == std::string_view::npos) {
    return InvalidArgumentError(prefix + "expected NAME=SIZE[:ro][:bs=N][:allow=IP,...]");
  }
  out.name = std::string(text.substr(0, eq));
  std::string_view rest = text.substr(eq + 1);
  size_t colon = rest.find(':');
  std::string_view size_text = rest.substr(0, colon);
  auto size = ParseSize(size_text);
  if (!size.ok()) return size.status().WithContext(prefix.substr(0, prefix.size() - 2) + ": size");
  if (*size == 0) return InvalidArgumentError(prefix + "size must be more than 0");
  out.size_bytes = *size;
  rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
  while (!rest.empty()) {
    if (rest.substr(0, 6) == "allow=") {
      std::string_view list = rest.substr(6);
      while (!list.empty()) {
        size_t comma = list.find(',');
        std::string_view ip = list.substr(0, comma);
        if (ip.empty()) return InvalidArgumentError(prefix + "allow: empty address");
        out.allowed.emplace_back(ip);
        list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
      }
      if (out.allowed.empty()) return InvalidArgumentError(prefix + "allow: no address");
      break;
    }
    colon = rest.find(':');
    std::string_view item = rest.substr(0, colon);
    rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    if (item == "ro") {
      out.read_only = true;
    } else if (item.substr(0, 3) == "bs=") {
      std::string_view v = item.substr(3);
      uint32_t bs = 0;
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), bs);
      if (ec != std::errc() || end != v.data() + v.size() || bs < 512 || bs > (1u << 20) ||
          !std::has_single_bit(bs)) {
        return InvalidArgumentError(prefix + "bs: '" + std::string(v) +
                                    "' is not a power of two in [512, 1048576]");
      }
      out.block_size = bs;
    } else {
      return InvalidArgumentError(prefix + "unknown attribute '" + std::string(item) +
                                  "' (expected ro, bs=N or allow=IP,...)");
    }
  }
  return out;
}

}  // namespace strata::nbd
