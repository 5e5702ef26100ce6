#include <gtest/gtest.h>

#include "strata/storage/engine.h"

namespace strata::storage {
namespace {

TEST(AccessTest, WildcardIpAndCidr) {
  EXPECT_TRUE(ClientAllowed({"*"}, "192.0.2.1"));
  EXPECT_FALSE(ClientAllowed({}, "192.0.2.1"));
  EXPECT_TRUE(ClientAllowed({"192.0.2.1"}, "192.0.2.1"));
  EXPECT_FALSE(ClientAllowed({"192.0.2.1"}, "192.0.2.2"));
  EXPECT_TRUE(ClientAllowed({"10.1.0.0/16"}, "10.1.200.3"));
  EXPECT_FALSE(ClientAllowed({"10.1.0.0/16"}, "10.2.0.1"));
  EXPECT_TRUE(ClientAllowed({"127.0.0.1"}, "::ffff:127.0.0.1"));  // v4-mapped peer
  EXPECT_TRUE(ClientAllowed({"fd00::/8"}, "fd12::1"));
  EXPECT_FALSE(ClientAllowed({"fd00::/8"}, "fe80::1"));
  EXPECT_TRUE(ClientAllowed({"0.0.0.0/0"}, "203.0.113.9"));
  EXPECT_FALSE(ClientAllowed({"10.0.0.0/8"}, "not-an-ip"));
}

TEST(AccessTest, ValidationNamesTheEntry) {
  EXPECT_TRUE(ValidateAllowedClients({"*", "10.0.0.1", "10.0.0.0/24", "::1", "fd00::/8"}).ok());
  Status s = ValidateAllowedClients({"10.0.0.1", "10.0.0.0/33"});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("allowed_clients[1]: '10.0.0.0/33'"), std::string::npos);
  EXPECT_FALSE(ValidateAllowedClients({"host.example"}).ok());
  EXPECT_FALSE(ValidateAllowedClients({"10.0.0.0/"}).ok());
}

}  // namespace
}  // namespace strata::storage
