// The hand-encoded LunData (lun_data_wire.h) against protobuf's generated code: what
// EncodeLunDataPrefix + data makes parses with v1::LunData, and what v1::LunData
// serialises decodes with DecodeLunData, split into chunks anywhere.

#include "lun_data_wire.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "grpc_service.h"
#include "strata/storage/v1/storage.pb.h"

namespace strata::storage {
namespace {

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + 7) & 0xff);
  return s;
}

// Splits `wire` into chunks of `piece` bytes (the last shorter), with an empty chunk
// in front, as gRPC may hand them over.
std::vector<std::span<const char>> Chunks(const std::string& wire, size_t piece) {
  std::vector<std::span<const char>> out;
  out.emplace_back(wire.data(), 0);
  for (size_t at = 0; at < wire.size(); at += piece) {
    out.emplace_back(wire.data() + at, std::min(piece, wire.size() - at));
  }
  return out;
}

std::string Joined(const LunDataView& v) {
  std::string s;
  for (auto p : v.data) s.append(p.data(), p.size());
  return s;
}

TEST(LunDataWireTest, EncodedPrefixAndDataParseWithTheGeneratedParser) {
  struct Case {
    LunDataHeader h;
    size_t data;
  };
  const std::vector<Case> cases = {
      {{.name = "vol-1", .offset = 1ull << 40, .background = true}, 1 << 20},
      {{.name = "v", .offset = 0}, 4096},
      {{.name = "zeros", .offset = 8192, .zero_length = 3 << 20, .fua = true}, 0},
      {{.name = std::string(200, 'n'), .offset = ~0ull, .fua = true, .background = true}, 1},
      {{}, 0},
  };
  for (const auto& c : cases) {
    const std::string data = Pattern(c.data);
    const std::string wire = EncodeLunDataPrefix(c.h, data.size()) + data;
    v1::LunData m;
    ASSERT_TRUE(m.ParseFromString(wire)) << c.h.name;
    EXPECT_EQ(m.name(), c.h.name);
    EXPECT_EQ(m.offset(), c.h.offset);
    EXPECT_EQ(m.zero_length(), c.h.zero_length);
    EXPECT_EQ(m.fua(), c.h.fua);
    EXPECT_EQ(m.background(), c.h.background);
    EXPECT_EQ(m.data(), data);
    // Byte for byte what the generated serialiser makes, but for the field order
    // (data is last here, so it can follow as its own buffer).
    EXPECT_EQ(wire.size(), m.ByteSizeLong());
  }
}

TEST(LunDataWireTest, GeneratedSerialisationDecodesInAnyChunking) {
  v1::LunData m;
  m.set_name("lun-a");
  m.set_offset(12345678);
  m.set_data(Pattern(300000));
  m.set_fua(true);
  m.set_background(true);
  const std::string wire = m.SerializeAsString();
  for (size_t piece : {size_t{1}, size_t{3}, size_t{16384}, wire.size()}) {
    auto chunks = Chunks(wire, piece);
    auto v = DecodeLunData(chunks);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(v->header.name, "lun-a");
    EXPECT_EQ(v->header.offset, 12345678u);
    EXPECT_EQ(v->header.zero_length, 0u);
    EXPECT_TRUE(v->header.fua);
    EXPECT_TRUE(v->header.background);
    EXPECT_EQ(v->data_size, 300000u);
    EXPECT_EQ(Joined(*v), m.data());
  }
  v1::LunData z;
  z.set_name("z");
  z.set_zero_length(1 << 20);
  const std::string zw = z.SerializeAsString();
  auto zc = Chunks(zw, 2);
  auto zv = DecodeLunData(zc);
  ASSERT_TRUE(zv.ok());
  EXPECT_EQ(zv->header.zero_length, 1u << 20);
  EXPECT_EQ(zv->data_size, 0u);
  EXPECT_TRUE(zv->data.empty());
}

TEST(LunDataWireTest, UnknownFieldsAreSkippedAndTheLastOccurrenceWins) {
  // A newer peer's message: unknown fields of every wire type around ours, and fields
  // repeated (protobuf keeps the last).
  v1::LunData first;
  first.set_name("old");
  first.set_offset(1);
  first.set_data("abc");
  std::string wire = first.SerializeAsString();
  wire += std::string("\x38\x96\x01", 3);                // field 7 varint 150
  wire += std::string("\x41") + std::string(8, '\x01');  // field 8 fixed64
  wire += std::string("\x4a\x02zz", 4);                  // field 9 bytes "zz"
  wire += std::string("\x55") + std::string(4, '\x02');  // field 10 fixed32
  wire += std::string("\x10\x05", 2);                    // offset = 5
  wire += std::string("\x0a\x03new", 5);                 // name = "new"
  wire += std::string("\x1a\x02xy", 4);                  // data = "xy"
  v1::LunData parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  auto chunks = Chunks(wire, 5);
  auto v = DecodeLunData(chunks);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->header.name, parsed.name());
  EXPECT_EQ(v->header.offset, parsed.offset());
  EXPECT_EQ(Joined(*v), parsed.data());
  EXPECT_EQ(v->header.name, "new");
  EXPECT_EQ(Joined(*v), "xy");
}

TEST(LunDataWireTest, MalformedMessagesAreRefusedNamingTheField) {
  struct Case {
    std::string wire;
    std::string field;
  };
  const std::vector<Case> cases = {
      {std::string("\x1a\x05"
                   "abc",
                   5),
       "LunData.data: truncated"},
      {std::string("\x0a", 1), "LunData.name: length truncated"},
      {std::string("\x10", 1), "LunData.offset: varint truncated"},
      {std::string("\x10") + std::string(10, '\xff') + "\x01", "LunData.offset: varint"},
      {std::string("\x00\x01", 2), "LunData.tag: field number 0"},
      // A tag over 5 bytes, though its value fits in 32 bits (found by the lun_data fuzzer).
      {std::string("\xf2\xfe\x85\xef\x80\x00\x00", 7), "LunData.tag: truncated or over 5"},
      // A length over 5 bytes whose value wraps to 0 in 64 bits (found by the lun_data
      // fuzzer): protobuf reads lengths as it reads tags.
      {std::string("\x7a") + std::string(9, '\x80') + "\x64",
       "field 15: length truncated or over 5"},
      {std::string("\x0a\x80\x80\x80\x80\x08", 6), "LunData.name: length over 2 GiB"},
      {std::string("\x0b", 1), "LunData.name: groups"},
      {std::string("\x0e", 1), "LunData.name: wire type 6"},
      {std::string("\x41\x01", 2), "LunData.field 8: truncated fixed64"},
      // Every occurrence of the name must be UTF-8, as protobuf checks (not only the last).
      {std::string("\x0a\x01\xe1\x0a\x01"
                   "b",
                   6),
       "LunData.name: not UTF-8"},
      {std::string("\x0a\x02\xc0\x80", 4), "LunData.name: not UTF-8"},      // overlong
      {std::string("\x0a\x03\xed\xa0\x80", 5), "LunData.name: not UTF-8"},  // surrogate
  };
  for (const auto& c : cases) {
    auto chunks = Chunks(c.wire, 1);
    auto v = DecodeLunData(chunks);
    ASSERT_FALSE(v.ok()) << c.field;
    EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(v.status().message().find(c.field), std::string::npos) << v.status().ToString();
    v1::LunData m;
    EXPECT_FALSE(m.ParseFromString(c.wire)) << c.field;  // protobuf refuses them too
  }
}

TEST(LunDataWireTest, MethodPathAndIndexMatchTheGeneratedService) {
  EXPECT_EQ(WriteLunDataMethodPath(), "/strata.storage.v1.StorageDevice/WriteLunData");
  const auto* service = v1::LunData::descriptor()->file()->FindServiceByName("StorageDevice");
  ASSERT_NE(service, nullptr);
  EXPECT_EQ(service->method(WriteLunDataMethodIndex())->name(), "WriteLunData");
}

}  // namespace
}  // namespace strata::storage
