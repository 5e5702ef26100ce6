#include "lun_data_wire.h"

#include <algorithm>
#include <string_view>

namespace strata::storage {
namespace {

// Protobuf wire types (https://protobuf.dev/programming-guides/encoding/).
constexpr uint32_t kVarint = 0;
constexpr uint32_t kI64 = 1;
constexpr uint32_t kLen = 2;
constexpr uint32_t kStartGroup = 3;
constexpr uint32_t kEndGroup = 4;
constexpr uint32_t kI32 = 5;

constexpr uint32_t kName = 1;
constexpr uint32_t kOffset = 2;
constexpr uint32_t kData = 3;
constexpr uint32_t kZeroLength = 4;
constexpr uint32_t kFua = 5;
constexpr uint32_t kBackground = 6;

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void PutTag(std::string& out, uint32_t field, uint32_t wire_type) {
  PutVarint(out, (static_cast<uint64_t>(field) << 3) | wire_type);
}

// Reads across chunk boundaries.
class Cursor {
 public:
  explicit Cursor(std::span<const std::span<const char>> chunks) : chunks_(chunks) { Settle(); }

  bool done() const { return chunk_ == chunks_.size(); }

  bool Byte(uint8_t* b) {
    if (done()) return false;
    *b = static_cast<uint8_t>(chunks_[chunk_][pos_]);
    ++pos_;
    Settle();
    return true;
  }

  // Up to max_bytes bytes; false when truncated or longer. protobuf's limits: 10 bytes for a
  // value, 5 for a tag or a length (it refuses a longer one even when its value fits in 32
  // bits).
  bool Varint(uint64_t* v, int max_bytes = 10) {
    *v = 0;
    for (int i = 0; i < max_bytes; ++i) {
      uint8_t b;
      if (!Byte(&b)) return false;
      *v |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }

  // The next n bytes as pieces of the chunks (out may be null: skip them).
  bool Take(uint64_t n, std::vector<std::span<const char>>* out) {
    while (n > 0) {
      if (done()) return false;
      const auto& c = chunks_[chunk_];
      const uint64_t k = std::min<uint64_t>(n, c.size() - pos_);
      if (out) out->push_back(c.subspan(pos_, k));
      pos_ += k;
      n -= k;
      Settle();
    }
    return true;
  }

 private:
  // Moves past the end of the current chunk and any empty ones.
  void Settle() {
    while (chunk_ < chunks_.size() && pos_ == chunks_[chunk_].size()) {
      ++chunk_;
      pos_ = 0;
    }
  }

  std::span<const std::span<const char>> chunks_;
  size_t chunk_ = 0;
  size_t pos_ = 0;
};

// Well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF): what
// protobuf requires of every occurrence of a proto3 `string` field.
bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n;
    uint32_t cp;
    uint32_t min;
    if ((c & 0xe0) == 0xc0) {
      n = 1, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

Status Bad(const std::string& field, const std::string& why) {
  return InvalidArgumentError("LunData." + field + ": " + why);
}

std::string FieldName(uint32_t field) {
  switch (field) {
    case kName:
      return "name";
    case kOffset:
      return "offset";
    case kData:
      return "data";
    case kZeroLength:
      return "zero_length";
    case kFua:
      return "fua";
    case kBackground:
      return "background";
    default:
      return "field " + std::to_string(field);
  }
}

}  // namespace

std::string EncodeLunDataPrefix(const LunDataHeader& h, uint64_t data_size) {
  std::string out;
  out.reserve(h.name.size() + 48);
  if (!h.name.empty()) {
    PutTag(out, kName, kLen);
    PutVarint(out, h.name.size());
    out.append(h.name);
  }
  if (h.offset != 0) {
    PutTag(out, kOffset, kVarint);
    PutVarint(out, h.offset);
  }
  if (h.zero_length != 0) {
    PutTag(out, kZeroLength, kVarint);
    PutVarint(out, h.zero_length);
  }
  if (h.fua) {
    PutTag(out, kFua, kVarint);
    PutVarint(out, 1);
  }
  if (h.background) {
    PutTag(out, kBackground, kVarint);
    PutVarint(out, 1);
  }
  if (data_size > 0) {
    PutTag(out, kData, kLen);
    PutVarint(out, data_size);
  }
  return out;
}

Result<LunDataView> DecodeLunData(std::span<const std::span<const char>> chunks) {
  LunDataView v;
  Cursor in(chunks);
  while (!in.done()) {
    uint64_t tag;
    if (!in.Varint(&tag, 5)) return Bad("tag", "truncated or over 5 bytes");
    if (tag > 0xffffffffull) return Bad("tag", "over 32 bits");
    const uint32_t field = static_cast<uint32_t>(tag >> 3);
    const uint32_t wire = static_cast<uint32_t>(tag & 7);
    if (field == 0) return Bad("tag", "field number 0");
    const std::string name = FieldName(field);
    switch (wire) {
      case kVarint: {
        uint64_t x;
        if (!in.Varint(&x)) return Bad(name, "varint truncated or over 10 bytes");
        if (field == kOffset) v.header.offset = x;
        if (field == kZeroLength) v.header.zero_length = x;
        if (field == kFua) v.header.fua = x != 0;
        if (field == kBackground) v.header.background = x != 0;
        break;
      }
      case kLen: {
        uint64_t n;
        // protobuf reads a length as it reads a tag: at most 5 bytes (and under 2 GiB).
        if (!in.Varint(&n, 5)) return Bad(name, "length truncated or over 5 bytes");
        if (n > 0x7fffffffull) return Bad(name, "length over 2 GiB");
        std::vector<std::span<const char>> pieces;
        if (!in.Take(n, (field == kName || field == kData) ? &pieces : nullptr)) {
          return Bad(name, "truncated: " + std::to_string(n) + " bytes announced");
        }
        if (field == kName) {
          v.header.name.clear();
          for (auto p : pieces) v.header.name.append(p.data(), p.size());
          if (!ValidUtf8(v.header.name)) return Bad(name, "not UTF-8");
        } else if (field == kData) {
          v.data = std::move(pieces);
          v.data_size = n;
        }
        break;
      }
      case kI64:
        if (!in.Take(8, nullptr)) return Bad(name, "truncated fixed64");
        break;
      case kI32:
        if (!in.Take(4, nullptr)) return Bad(name, "truncated fixed32");
        break;
      case kStartGroup:
      case kEndGroup:
        return Bad(name, "groups are not accepted");
      default:
        return Bad(name, "wire type " + std::to_string(wire) + " does not exist");
    }
  }
  return v;
}

}  // namespace strata::storage
