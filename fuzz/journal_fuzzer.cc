// The storage engine's journal decoder (Replay) on what a damaged or hostile journal file could
// hold. Input byte 0 picks the shape:
//   even  the rest is the journal as is (framing, torn tails, checksums)
//   odd   the rest is payloads, each "u16 length | bytes", framed here with their true XXH32, so
//         the fuzzer reaches the record parsers behind the checksum
// Beyond "no crash": whatever Replay accepts, re-encoded with RecordEncoder and replayed again,
// re-encodes to the same bytes (the decoder and the encoder agree on every field).
#include <xxhash.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "journal.h"

namespace {

using strata::storage::engine::LunRecord;
using strata::storage::engine::MapRecord;
using strata::storage::engine::RecordEncoder;
using strata::storage::engine::Replay;
using strata::storage::engine::ReplayHandlers;
using strata::storage::engine::ReplayResult;
using strata::storage::engine::SnapRecord;

void PutU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::string FrameAll(std::string_view rest) {
  std::string out;
  size_t pos = 0;
  while (rest.size() - pos >= 2) {
    size_t len = static_cast<uint8_t>(rest[pos]) | (static_cast<uint8_t>(rest[pos + 1]) << 8);
    pos += 2;
    if (len > rest.size() - pos) len = rest.size() - pos;
    std::string_view payload = rest.substr(pos, len);
    pos += len;
    PutU32(out, static_cast<uint32_t>(payload.size()));
    PutU32(out, XXH32(payload.data(), payload.size(), 0));
    out.append(payload);
  }
  return out;
}

// Replays `data` into `enc` (every record re-encoded). The status and the result are returned
// through the pointers.
strata::Status ReEncode(std::string_view data, RecordEncoder* enc, ReplayResult* result) {
  ReplayHandlers h;
  h.on_lun = [enc](const LunRecord& r) { enc->Lun(r); };
  h.on_delete = [enc](uint64_t id) { enc->DeleteLun(id); };
  h.on_map = [enc](const MapRecord& r) { enc->Map(r); };
  h.on_snapshot = [enc](const SnapRecord& r) { enc->Snapshot(r); };
  h.on_share_map = [enc](uint64_t dst, uint64_t src) { enc->ShareMap(dst, src); };
  return Replay(data, h, result);
}

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "journal_fuzzer: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string framed = (data[0] & 1) ? FrameAll(rest) : std::string(rest);

  RecordEncoder first;
  ReplayResult r1;
  strata::Status st = ReEncode(framed, &first, &r1);
  if (st.ok()) {
    Check(r1.valid_bytes <= framed.size(), "valid_bytes past the end of the journal");
    Check(r1.records == first.records(), "records counted differ from records delivered");
  } else {
    Check(!st.message().empty(), "an error without a message");
  }

  // What was delivered must come back the same through the encoder.
  RecordEncoder second;
  ReplayResult r2;
  strata::Status st2 = ReEncode(first.buffer(), &second, &r2);
  Check(st2.ok(), "Replay refuses what RecordEncoder wrote");
  Check(r2.valid_bytes == first.buffer().size(), "a torn tail in what RecordEncoder wrote");
  Check(second.buffer() == first.buffer(), "decode(encode(records)) differs");
  return 0;
}
