#include "strata/common/units.h"

#include <gtest/gtest.h>

namespace strata {
namespace {

TEST(ParseSizeTest, BinaryAndDecimalUnits) {
  EXPECT_EQ(*ParseSize("0"), 0u);
  EXPECT_EQ(*ParseSize("512"), 512u);
  EXPECT_EQ(*ParseSize("512B"), 512u);
  EXPECT_EQ(*ParseSize("4KiB"), 4096u);
  EXPECT_EQ(*ParseSize("4Ki"), 4096u);
  EXPECT_EQ(*ParseSize("10GiB"), 10ull << 30);
  EXPECT_EQ(*ParseSize("10Gi"), 10ull << 30);
  EXPECT_EQ(*ParseSize("10G"), 10'000'000'000ull);
  EXPECT_EQ(*ParseSize("2TiB"), 2ull << 40);
}

TEST(ParseSizeTest, ErrorsSayWhy) {
  auto r = ParseSize("10XB");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("unknown unit 'XB'"), std::string::npos);
  EXPECT_FALSE(ParseSize("").ok());
  EXPECT_FALSE(ParseSize("GiB").ok());
  EXPECT_FALSE(ParseSize("-1").ok());
  auto big = ParseSize("99999999PiB");
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("too large"), std::string::npos);
}

TEST(FormatSizeTest, PeopleReadable) {
  EXPECT_EQ(FormatSize(512), "512 B");
  EXPECT_EQ(FormatSize(10ull << 30), "10 GiB");
  EXPECT_EQ(FormatSize(1536ull << 10), "1.5 MiB");
}

}  // namespace
}  // namespace strata
