#include "strata/common/net_address.h"

#include <gtest/gtest.h>

namespace strata {
namespace {

TEST(ParseHostPortTest, Forms) {
  auto v4 = ParseHostPort("127.0.0.1:10809", "--portal");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 10809);
  auto v6 = ParseHostPort("[::1]:7000", "--grpc");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->ToString(), "[::1]:7000");
  EXPECT_EQ(ParseHostPort("localhost:1", "x")->ToString(), "localhost:1");
}

TEST(ParseHostPortTest, ErrorsNameTheField) {
  auto r = ParseHostPort("1.2.3.4", "--portal");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "--portal: '1.2.3.4' has no port (expected HOST:PORT)");
  EXPECT_FALSE(ParseHostPort("h:70000", "x").ok());
  EXPECT_FALSE(ParseHostPort(":80", "x").ok());
  EXPECT_FALSE(ParseHostPort("::1:80", "x").ok());
  EXPECT_FALSE(ParseHostPort("h:0", "x").ok());
  EXPECT_TRUE(ParseHostPort("h:0", "x", /*allow_port_zero=*/true).ok());
}

// Found by fuzz/admin_args (fuzz/regressions/admin_args/bracketed-non-ipv6-host): what is
// accepted must print back as the same flag.
TEST(ParseHostPortTest, BracketsHoldOnlyIpv6) {
  auto r = ParseHostPort("[[fem.0]:80", "--server");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "--server: '[[fem.0]:80' has brackets around something other than an IPv6 address "
            "(expected [IPV6]:PORT)");
  EXPECT_FALSE(ParseHostPort("[host]:80", "x").ok());
  EXPECT_FALSE(ParseHostPort("[1.2.3.4]:80", "x").ok());
  auto v6 = ParseHostPort("[fe80::1%eth0]:80", "x");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->ToString(), "[fe80::1%eth0]:80");
}

}  // namespace
}  // namespace strata
