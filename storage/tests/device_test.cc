#include "strata/storage/device.h"

#include <gtest/gtest.h>

#include "strata/common/mem_env.h"

namespace strata::storage {
namespace {

DeviceConfig TwoTierConfig() {
  DeviceConfig c;
  c.name = "dev-a";
  c.tiers.push_back(*ParseTierFlag("ssd=/srv/ssd:100GiB"));
  c.tiers.push_back(*ParseTierFlag("sata=/srv/sata"));
  c.portals.push_back({"127.0.0.1", 10809});
  c.portals.push_back({"127.0.0.2", 10809});
  return c;
}

TEST(DeviceTest, OpenCreatesTiersAndIdentity) {
  MemEnv env;
  env.SetFileSystemCapacity(500ull << 30);
  auto dev = Device::Open(&env, TwoTierConfig());
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  EXPECT_TRUE(env.Exists("/srv/ssd"));
  EXPECT_TRUE(env.Exists("/srv/sata"));
  EXPECT_TRUE(env.Exists("/srv/ssd/device.json"));
  EXPECT_EQ((*dev)->device_id().size(), 16u);

  DeviceStatus st = (*dev)->Status();
  EXPECT_EQ(st.name, "dev-a");
  EXPECT_EQ(st.state, DeviceState::kOnline);
  ASSERT_EQ(st.tiers.size(), 2u);
  EXPECT_EQ(st.tiers[0].capacity_bytes, 100ull << 30);  // configured
  EXPECT_EQ(st.tiers[1].capacity_bytes, 500ull << 30);  // from the file system
  EXPECT_EQ(st.capacity_bytes, 600ull << 30);
  EXPECT_EQ(st.portals.size(), 2u);
}

TEST(DeviceTest, IdentitySurvivesReopen) {
  MemEnv env;
  std::string first;
  {
    auto dev = Device::Open(&env, TwoTierConfig());
    ASSERT_TRUE(dev.ok());
    first = (*dev)->device_id();
  }
  auto again = Device::Open(&env, TwoTierConfig());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->device_id(), first);
}

TEST(DeviceTest, DamagedIdentityIsRefusedNotReplaced) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirectories("/srv/ssd").ok());
  ASSERT_TRUE(env.WriteFileAtomically("/srv/ssd/device.json", "{garbage").ok());
  auto dev = Device::Open(&env, TwoTierConfig());
  ASSERT_FALSE(dev.ok());
  EXPECT_EQ(dev.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(*env.ReadFile("/srv/ssd/device.json"), "{garbage");
}

TEST(DeviceTest, BlockDeviceTierUsesItsSize) {
  MemEnv env;
  env.AddBlockDevice("/dev/sdb", 7ull << 20);
  DeviceConfig c = TwoTierConfig();
  c.tiers[1] = *ParseTierFlag("sata=/dev/sdb");
  auto dev = Device::Open(&env, c);
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  EXPECT_EQ((*dev)->Status().tiers[1].capacity_bytes, 7ull << 20);
}

TEST(DeviceTest, WriteFailureIsReported) {
  MemEnv env;
  env.FailWritesUnder("/srv/ssd");
  auto dev = Device::Open(&env, TwoTierConfig());
  ASSERT_FALSE(dev.ok());
  EXPECT_NE(dev.status().message().find("/srv/ssd"), std::string::npos);
}

TEST(DeviceTest, FileAsTierIsRefused) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirectories("/srv").ok());
  ASSERT_TRUE(env.WriteFileAtomically("/srv/sata", "x").ok());
  auto dev = Device::Open(&env, TwoTierConfig());
  ASSERT_FALSE(dev.ok());
  EXPECT_EQ(dev.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(dev.status().message().find("tier sata (/srv/sata)"), std::string::npos);
}

TEST(ValidateDeviceConfigTest, RejectsBadConfigsBeforeTouchingAnything) {
  struct Case {
    void (*mutate)(DeviceConfig&);
    const char* expect;
  } cases[] = {
      {[](DeviceConfig& c) { c.name.clear(); }, "--device: name is required"},
      {[](DeviceConfig& c) { c.name = "a/b"; }, "--device: 'a/b' may not contain"},
      {[](DeviceConfig& c) { c.tiers.clear(); }, "--tier: at least one tier"},
      {[](DeviceConfig& c) { c.tiers[1].tier_class = TierClass::kSsd; },
       "class 'ssd' is given twice"},
      {[](DeviceConfig& c) { c.tiers[1].path = c.tiers[0].path; }, "is used by two tiers"},
      {[](DeviceConfig& c) { c.portals[1] = c.portals[0]; }, "is given twice"},
  };
  for (const Case& tc : cases) {
    MemEnv env;
    DeviceConfig c = TwoTierConfig();
    tc.mutate(c);
    auto dev = Device::Open(&env, c);
    ASSERT_FALSE(dev.ok()) << tc.expect;
    EXPECT_EQ(dev.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(dev.status().message().find(tc.expect), std::string::npos) << dev.status().message();
    EXPECT_FALSE(env.Exists("/srv/ssd")) << "half-applied: " << tc.expect;
  }
}

}  // namespace
}  // namespace strata::storage
