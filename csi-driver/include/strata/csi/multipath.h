#pragma once

// dm-multipath and publish_context helpers of the node plugin: pure text rules, no host
// access (NodeHost does that).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "strata/common/result.h"

namespace strata::csi {

// One path of a dm-multipath device as `dmsetup status` reports it.
struct DmPath {
  std::string dev;      // "MAJ:MIN"
  bool active = false;  // 'A' (active) or 'F' (failed)
};

// "a,b,c" -> {"a","b","c"} (empty items dropped).
std::vector<std::string> SplitPortals(std::string_view portals);
// The dm device name for a LUN: `prefix` ("strata-") and the WWN's letters and digits,
// lower case (stable: the same LUN always maps to the same name). INVALID_ARGUMENT when
// the WWN has none.
Result<std::string> DmNameForWwn(std::string_view wwn, std::string_view prefix = "strata-");
// Parses `dmsetup status` of a multipath target: the paths and whether each is active.
Result<std::vector<DmPath>> ParseMultipathStatus(std::string_view status);
// The dm-multipath table over `devs` ("MAJ:MIN"): round-robin, one path group,
// queue_if_no_path.
std::string MultipathTable(uint64_t size_bytes, const std::vector<std::string>& devs);

}  // namespace strata::csi
