#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "strata/common/result.h"

namespace strata {

// A TCP endpoint as written on command lines: "host:port", "[v6]:port".
struct HostPort {
  std::string host;  // without brackets
  uint16_t port = 0;

  // "host:port", bracketing IPv6 literals.
  std::string ToString() const;
  friend bool operator==(const HostPort&, const HostPort&) = default;
};

// Parses "host:port". `field` names the flag or field in error messages, e.g.
// "--portal: '1.2.3.4' has no port (expected HOST:PORT)". Port 0 is accepted only
// when allow_port_zero (listen on any free port).
Result<HostPort> ParseHostPort(std::string_view text, std::string_view field,
                               bool allow_port_zero = false);

}  // namespace strata
