#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "strata/common/result.h"

namespace strata::nbd {

// One --export flag of strata-nbd-testserver:
//   NAME=SIZE[:ro][:bs=BLOCK][:allow=IP,IP...]
// SIZE as ParseSize takes it ("64MiB"); "allow=" comes last since IPv6 addresses
// hold colons. An empty NAME is the default export.
struct ExportFlag {
  std::string name;
  uint64_t size_bytes = 0;
  uint32_t block_size = 4096;
  bool read_only = false;
  std::vector<std::string> allowed;
};

Result<ExportFlag> ParseExportFlag(std::string_view text);

}  // namespace strata::nbd
