// The hand decoder of a device move's LunData messages (storage/src/lun_data_wire.h) on what
// a hostile or broken peer could send, against protobuf's generated parser. Input byte 0
// picks how the rest is cut into chunks (as gRPC's slices cut a message): every (byte0 % 17
// + 1) bytes. Beyond "no crash":
//   - whatever DecodeLunData accepts, v1::LunData parses too, with the same field values;
//   - the data pieces point inside the input and add up to data_size;
//   - what it decoded, encoded again (EncodeLunDataPrefix + data), decodes to the same.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "lun_data_wire.h"
#include "strata/storage/v1/storage.pb.h"

namespace {

using strata::storage::DecodeLunData;
using strata::storage::EncodeLunDataPrefix;
using strata::storage::LunDataView;

void Check(bool ok) {
  if (!ok) std::abort();
}

std::string Joined(const LunDataView& v) {
  std::string s;
  for (auto p : v.data) s.append(p.data(), p.size());
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t piece = data[0] % 17 + 1;
  const std::string wire(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<std::span<const char>> chunks;
  for (size_t at = 0; at < wire.size(); at += piece) {
    chunks.emplace_back(wire.data() + at, std::min(piece, wire.size() - at));
  }
  auto v = DecodeLunData(chunks);
  if (!v.ok()) return 0;

  uint64_t total = 0;
  for (auto p : v->data) {
    Check(p.data() >= wire.data() && p.data() + p.size() <= wire.data() + wire.size());
    total += p.size();
  }
  Check(total == v->data_size);
  const std::string bytes = Joined(*v);

  strata::storage::v1::LunData m;
  Check(m.ParseFromString(wire));
  Check(m.name() == v->header.name);
  Check(m.offset() == v->header.offset);
  Check(m.zero_length() == v->header.zero_length);
  Check(m.fua() == v->header.fua);
  Check(m.background() == v->header.background);
  Check(m.data() == bytes);

  const std::string again = EncodeLunDataPrefix(v->header, bytes.size()) + bytes;
  std::span<const char> one(again.data(), again.size());
  auto w = DecodeLunData(std::span<const std::span<const char>>(&one, 1));
  Check(w.ok());
  Check(w->header.name == v->header.name && w->header.offset == v->header.offset &&
        w->header.zero_length == v->header.zero_length && w->header.fua == v->header.fua &&
        w->header.background == v->header.background && Joined(*w) == bytes);
  return 0;
}
