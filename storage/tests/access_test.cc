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

TEST(AccessTest, IdentitiesAndIpsMustBothAdmit) {
  ClientInfo alice{"10.0.0.5", "10.0.0.1:10809", {"CN=alice", "URI:spiffe://x/alice"}};
  ClientInfo plain{"10.0.0.5", "10.0.0.1:10809", {}};
  // No identities listed: the IP rule alone, certificate or not.
  EXPECT_TRUE(AccessAllowed({"10.0.0.0/24"}, {}, alice));
  EXPECT_TRUE(AccessAllowed({"10.0.0.0/24"}, {}, plain));
  EXPECT_FALSE(AccessAllowed({}, {}, alice));  // both empty: nobody
  // Identities only: any IP with a listed identity (any of the certificate's).
  EXPECT_TRUE(AccessAllowed({}, {"URI:spiffe://x/alice"}, alice));
  EXPECT_TRUE(AccessAllowed({}, {"CN=bob", "CN=alice"}, alice));
  EXPECT_FALSE(AccessAllowed({}, {"CN=bob"}, alice));
  EXPECT_FALSE(AccessAllowed({}, {"CN=alice"}, plain));  // no certificate
  EXPECT_FALSE(AccessAllowed({"*"}, {"CN=alice"}, plain));
  EXPECT_FALSE(AccessAllowed({}, {"cn=alice"}, alice));  // exact match
  // Both: both must admit.
  EXPECT_TRUE(AccessAllowed({"10.0.0.0/24"}, {"CN=alice"}, alice));
  EXPECT_FALSE(AccessAllowed({"10.9.0.0/24"}, {"CN=alice"}, alice));
}

TEST(AccessTest, IdentityValidationNamesTheEntry) {
  EXPECT_TRUE(
      ValidateAllowedIdentities({"CN=alice", "DNS:node-1.example", "URI:spiffe://a/b"}).ok());
  EXPECT_TRUE(ValidateAllowedIdentities({}).ok());
  Status s = ValidateAllowedIdentities({"CN=alice", "O=acme"});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("allowed_identities[1]: 'O=acme' is not CN=NAME, DNS:NAME or URI:URI"),
            std::string::npos);
  EXPECT_FALSE(ValidateAllowedIdentities({"CN="}).ok());
  EXPECT_FALSE(ValidateAllowedIdentities({"DNS:a\nb"}).ok());
  EXPECT_FALSE(ValidateAllowedIdentities({"URI:" + std::string(1100, 'x')}).ok());
}

}  // namespace
}  // namespace strata::storage
