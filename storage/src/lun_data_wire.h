#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "strata/common/result.h"
#include "strata/common/status.h"

namespace strata::storage {

// strata.storage.v1.LunData (storage.proto) on the wire, without protobuf's message
// object: what a device move's copy sends and the target applies, so the data bytes are
// neither copied into a message nor parsed out of one. The bytes are the protobuf wire
// format of the same message: the generated parser reads what EncodeLunDataPrefix makes,
// and DecodeLunData reads what the generated serialiser makes (any field order, unknown
// fields skipped, the last occurrence of a field wins).
struct LunDataHeader {
  std::string name;          // field 1
  uint64_t offset = 0;       // field 2
  uint64_t zero_length = 0;  // field 4
  bool fua = false;          // field 5
  bool background = false;   // field 6
};

// Every field of the message except the data bytes: the scalar fields (those not at
// their default), then field 3's tag and length when data_size > 0. Followed by
// data_size bytes of data it is one whole LunData.
std::string EncodeLunDataPrefix(const LunDataHeader& header, uint64_t data_size);

struct LunDataView {
  LunDataHeader header;
  // Field 3 (data): pieces of the input chunks, in order; data_size bytes in all.
  std::vector<std::span<const char>> data;
  uint64_t data_size = 0;
};

// Decodes one LunData given as consecutive chunks (a gRPC message's slices, which split
// it anywhere). `data` points into `chunks`. INVALID_ARGUMENT naming the field and the
// reason for a message the generated parser would refuse as well (a truncated field,
// a bad tag or wire type, a tag over 5 bytes or another varint over 10, field number 0,
// a name that is not UTF-8) and for groups.
Result<LunDataView> DecodeLunData(std::span<const std::span<const char>> chunks);

}  // namespace strata::storage
