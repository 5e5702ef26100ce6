#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "strata/common/result.h"

namespace strata {

// Parses a byte size: a whole number with an optional unit. Binary units
// (Ki, KiB, Mi, MiB, Gi, GiB, Ti, TiB, Pi, PiB) are powers of 1024; decimal ones
// (K, KB, M, MB, G, GB, T, TB, P, PB) powers of 1000, as in Kubernetes quantities.
// "B" or no unit means bytes. Errors name the text and why it is not a size.
Result<uint64_t> ParseSize(std::string_view text);

// Formats bytes for people: "10 GiB", "1.5 MiB", "512 B".
std::string FormatSize(uint64_t bytes);

}  // namespace strata
