#include "strata/common/net_address.h"

#include <charconv>

namespace strata {

std::string HostPort::ToString() const {
  std::string out;
  if (host.find(':') != std::string::npos) {
    out = "[" + host + "]";
  } else {
    out = host;
  }
  return out + ":" + std::to_string(port);
}

Result<HostPort> ParseHostPort(std::string_view text, std::string_view field,
                               bool allow_port_zero) {
  std::string prefix = std::string(field) + ": '" + std::string(text) + "' ";
  HostPort out;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) {
      return InvalidArgumentError(prefix + "has an unclosed '[' (expected [IPV6]:PORT)");
    }
    out.host = std::string(text.substr(1, close - 1));
    // Brackets hold an IPv6 literal only: anything else would not survive ToString ("[h]:80"
    // would print as "h:80", "[[h]:80" as "[h:80"), so a flag could not be written back.
    if (out.host.find(':') == std::string::npos || out.host.find('[') != std::string::npos) {
      return InvalidArgumentError(prefix + "has brackets around something other than an IPv6 " +
                                  "address (expected [IPV6]:PORT)");
    }
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      return InvalidArgumentError(prefix + "has no port (expected [IPV6]:PORT)");
    }
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return InvalidArgumentError(prefix + "has no port (expected HOST:PORT)");
    }
    if (text.find(':') != colon) {
      return InvalidArgumentError(prefix + "has several ':' (bracket IPv6 hosts: [IPV6]:PORT)");
    }
    out.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  if (out.host.empty()) return InvalidArgumentError(prefix + "has an empty host");
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return InvalidArgumentError(prefix + "has an invalid port (expected 0-65535)");
  }
  if (port == 0 && !allow_port_zero) {
    return InvalidArgumentError(prefix + "has port 0, which is not allowed here");
  }
  out.port = static_cast<uint16_t>(port);
  return out;
}

}  // namespace strata
