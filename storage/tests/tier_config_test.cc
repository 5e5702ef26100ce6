#include "strata/storage/tier_config.h"

#include <gtest/gtest.h>

namespace strata::storage {
namespace {

TEST(ParseTierFlagTest, PathOnly) {
  auto t = ParseTierFlag("ssd=/var/lib/strata/ssd");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->tier_class, TierClass::kSsd);
  EXPECT_EQ(t->path, "/var/lib/strata/ssd");
  EXPECT_FALSE(t->capacity_bytes.has_value());
  EXPECT_DOUBLE_EQ(t->EffectivePrice(), DefaultPricePerGibHour(TierClass::kSsd));
}

TEST(ParseTierFlagTest, CapacityAndPrice) {
  auto t = ParseTierFlag("sata=/data/sata:2TiB:0.00003");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->tier_class, TierClass::kSata);
  EXPECT_EQ(*t->capacity_bytes, 2ull << 40);
  EXPECT_DOUBLE_EQ(t->EffectivePrice(), 0.00003);
  auto no_cap = ParseTierFlag("sas=/d::0.1");
  ASSERT_TRUE(no_cap.ok()) << no_cap.status().ToString();
  EXPECT_FALSE(no_cap->capacity_bytes.has_value());
}

TEST(ParseTierFlagTest, ErrorsNameThePart) {
  struct Case {
    const char* flag;
    const char* expect;
  } cases[] = {
      {"ssd", "expected CLASS=PATH"},
      {"nvme=/x", "class: tier class 'nvme' is not one of ssd, sas, sata"},
      {"ssd=", "path is empty"},
      {"ssd=rel/path", "must be absolute"},
      {"ssd=/x:10XB", "capacity: '10XB' has unknown unit"},
      {"ssd=/x:0", "capacity must be greater than 0"},
      {"ssd=/x:1GiB:cheap", "price 'cheap' is not a non-negative number"},
      {"ssd=/x:1GiB:-1", "price '-1'"},
  };
  for (const Case& c : cases) {
    auto t = ParseTierFlag(c.flag);
    ASSERT_FALSE(t.ok()) << c.flag;
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument) << c.flag;
    EXPECT_NE(t.status().message().find(c.expect), std::string::npos)
        << c.flag << " -> " << t.status().message();
    EXPECT_EQ(t.status().message().rfind(std::string("--tier '") + c.flag + "'", 0), 0u)
        << t.status().message();
  }
}

}  // namespace
}  // namespace strata::storage
