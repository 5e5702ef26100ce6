// The command table on its own: every row is consistent with the spec, and
// ValidateRequest() gives the error value the spec names for each bad field.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "commands.h"
#include "strata/nbd/protocol.h"

namespace strata::nbd {
namespace {

RequestContext Ctx(bool structured = false, bool read_only = false) {
  RequestContext c;
  c.structured_replies = structured;
  c.read_only = read_only;
  c.size_bytes = 1 << 20;
  c.max_payload_bytes = 64 << 10;
  return c;
}

uint32_t Check(uint16_t type, uint16_t flags, uint64_t offset, uint32_t length,
               const RequestContext& ctx, std::string* msg = nullptr) {
  std::string m;
  uint32_t e = ValidateRequest(FindCommand(type), type, flags, offset, length, ctx, &m);
  if (msg != nullptr) *msg = m;
  return e;
}

TEST(NbdCommandTableTest, RowsAreUniqueAndConsistent) {
  std::set<uint16_t> types;
  for (const CommandSpec& c : AllCommands()) {
    EXPECT_TRUE(types.insert(c.type).second) << c.name;
    EXPECT_EQ(FindCommand(c.type), &c);
    EXPECT_EQ(CommandName(c.type), c.name);
    // FUA is valid on every command (spec), even where it means nothing.
    EXPECT_NE(c.flags & kCmdFlagFua, 0) << c.name;
    // Only commands with a handler are recorded, and only DISC has none.
    EXPECT_EQ(c.run == nullptr, c.type == kCmdDisc) << c.name;
    EXPECT_EQ(c.io_kind.has_value(), c.run != nullptr) << c.name;
    // A payload either way is bounded by max_payload_bytes.
    if (c.payload_in || c.payload_out) {
      EXPECT_EQ(c.length, LengthRule::kPayload) << c.name;
    }
    if (c.writes) {
      EXPECT_EQ(c.past_end_error == kEnospc, c.type != kCmdTrim) << c.name;
    }
  }
  EXPECT_EQ(FindCommand(kCmdCache), nullptr);
  EXPECT_EQ(FindCommand(kCmdBlockStatus), nullptr);
  EXPECT_EQ(CommandName(99), "command 99");
}

TEST(NbdCommandTableTest, UnknownCommandsAndFlagsAreEinval) {
  std::string msg;
  EXPECT_EQ(Check(99, 0, 0, 0, Ctx(), &msg), kEinval);
  EXPECT_EQ(msg, "unknown command 99");
  EXPECT_EQ(Check(kCmdBlockStatus, 0, 0, 4096, Ctx()), kEinval);
  EXPECT_EQ(Check(kCmdWrite, kCmdFlagNoHole, 0, 512, Ctx(), &msg), kEinval);
  EXPECT_EQ(msg, "command flags 0x0002 are not valid for NBD_CMD_WRITE");
  EXPECT_EQ(Check(kCmdWriteZeroes, kCmdFlagNoHole | kCmdFlagFua, 0, 512, Ctx()), 0u);
  EXPECT_EQ(Check(kCmdWriteZeroes, kCmdFlagFastZero, 0, 512, Ctx()), kEinval);
  // DF only once structured replies are on.
  EXPECT_EQ(Check(kCmdRead, kCmdFlagDf, 0, 512, Ctx(false)), kEinval);
  EXPECT_EQ(Check(kCmdRead, kCmdFlagDf, 0, 512, Ctx(true)), 0u);
  EXPECT_EQ(Check(kCmdRead, 0x8000, 0, 512, Ctx(true)), kEinval);
}

TEST(NbdCommandTableTest, LengthRules) {
  std::string msg;
  EXPECT_EQ(Check(kCmdRead, 0, 0, (64 << 10) + 1, Ctx(), &msg), kEinval);
  EXPECT_EQ(msg, "NBD_CMD_READ: length 65537 exceeds the maximum block size 65536");
  EXPECT_EQ(Check(kCmdWrite, 0, 0, 64 << 10, Ctx()), 0u);
  // TRIM and WRITE_ZEROES move no data: any length inside the export.
  EXPECT_EQ(Check(kCmdTrim, 0, 0, 1 << 20, Ctx()), 0u);
  EXPECT_EQ(Check(kCmdWriteZeroes, 0, 0, 1 << 20, Ctx()), 0u);
  EXPECT_EQ(Check(kCmdFlush, 0, 0, 0, Ctx()), 0u);
  EXPECT_EQ(Check(kCmdFlush, 0, 1, 0, Ctx(), &msg), kEinval);
  EXPECT_EQ(msg, "NBD_CMD_FLUSH: offset and length must be zero");
  EXPECT_EQ(Check(kCmdFlush, 0, 0, 1, Ctx()), kEinval);
}

TEST(NbdCommandTableTest, PastTheEndIsEnospcForWritesEinvalOtherwise) {
  const uint64_t end = 1 << 20;
  EXPECT_EQ(Check(kCmdWrite, 0, end - 511, 512, Ctx()), kEnospc);
  EXPECT_EQ(Check(kCmdWriteZeroes, 0, end, 1, Ctx()), kEnospc);
  EXPECT_EQ(Check(kCmdRead, 0, end, 1, Ctx()), kEinval);
  EXPECT_EQ(Check(kCmdTrim, 0, end - 1, 2, Ctx()), kEinval);
  // offset + length overflowing 64 bits is past the end, not a wrap-around.
  EXPECT_EQ(Check(kCmdRead, 0, ~uint64_t{0} - 10, 512, Ctx()), kEinval);
  EXPECT_EQ(Check(kCmdRead, 0, end - 512, 512, Ctx()), 0u);
  EXPECT_EQ(Check(kCmdRead, 0, end, 0, Ctx()), 0u);
}

TEST(NbdCommandTableTest, ReadOnlyExportsRefuseWritesWithEperm) {
  auto ro = Ctx(false, true);
  for (uint16_t t : {kCmdWrite, kCmdTrim, kCmdWriteZeroes}) {
    EXPECT_EQ(Check(t, 0, 0, 512, ro), kEperm) << CommandName(t);
  }
  EXPECT_EQ(Check(kCmdRead, 0, 0, 512, ro), 0u);
  EXPECT_EQ(Check(kCmdFlush, 0, 0, 0, ro), 0u);
}

}  // namespace
}  // namespace strata::nbd
