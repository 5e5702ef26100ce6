#include "auth/access_policy.h"

#include <gtest/gtest.h>

namespace strata::storage::auth {
namespace {

TEST(AccessPolicyTest, ParsesRolesAndOwners) {
  auto p = AccessPolicy::Parse(R"({"identities": [
      {"identity": "op", "role": "admin"},
      {"identity": "stored-b", "role": "device"},
      {"identity": "spiffe://x/t", "role": "tenant", "owners": ["team-a", "team-b-*"]}]})",
                               "policy");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_NE(p->Find("op"), nullptr);
  EXPECT_EQ(p->Find("op")->role, Role::kAdmin);
  EXPECT_EQ(p->Find("stored-b")->role, Role::kDevice);
  const Grant* t = p->Find("spiffe://x/t");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->role, Role::kTenant);
  EXPECT_TRUE(t->MayUseOwner("team-a"));
  EXPECT_FALSE(t->MayUseOwner("team-a2"));
  EXPECT_TRUE(t->MayUseOwner("team-b-"));
  EXPECT_TRUE(t->MayUseOwner("team-b-db"));
  EXPECT_FALSE(t->MayUseOwner("team-b"));
  EXPECT_FALSE(t->MayUseOwner(""));
  EXPECT_EQ(p->Find("nobody"), nullptr);
  EXPECT_FALSE(p->allow_any_verified());
}

TEST(AccessPolicyTest, EmptyListAllowsNobody) {
  auto p = AccessPolicy::Parse(R"({"identities": []})", "policy");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->Find("op"), nullptr);
}

TEST(AccessPolicyTest, BadInputNamesTheField) {
  struct Case {
    const char* json;
    const char* message;
  } cases[] = {
      {"[", "policy: not valid JSON"},
      {"[]", "policy: must be a JSON object"},
      {R"({"identity": []})", "policy: unknown field 'identity'"},
      {R"({})", "policy: identities: is required"},
      {R"({"identities": [{"role": "admin"}]})", "identities[0].identity: is required"},
      {R"({"identities": [{"identity": "a", "role": "root"}]})",
       "identities[0].role: 'root' is not one of admin, device, tenant"},
      {R"({"identities": [{"identity": "a", "role": "tenant"}]})",
       "identities[0].owners: a tenant needs at least one owner"},
      {R"({"identities": [{"identity": "a", "role": "tenant", "owners": ["*"]}]})",
       "identities[0].owners[0]: must be an owner name"},
      {R"({"identities": [{"identity": "a", "role": "admin", "owners": ["x"]}]})",
       "identities[0].owners: only a tenant has owners"},
      {R"({"identities": [{"identity": "a", "role": "admin", "extra": 1}]})",
       "identities[0]: unknown field 'extra'"},
      {R"({"identities": [{"identity": "a", "role": "admin"}, {"identity": "a", "role": "device"}]})",
       "identities[1].identity: 'a' is listed twice"},
      {R"({"identities": [{"identity": "URI:", "role": "admin"}]})",
       "identities[0].identity: 'URI:' names nothing after URI:"},
  };
  for (const Case& c : cases) {
    auto p = AccessPolicy::Parse(c.json, "policy");
    ASSERT_FALSE(p.ok()) << c.json;
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument) << c.json;
    EXPECT_NE(p.status().message().find(c.message), std::string::npos)
        << c.json << " -> " << p.status().message();
  }
}

// The NBD access lists' spelling works here too, beside the bare one.
TEST(AccessPolicyTest, MatchesPrefixedNamesAndTheBareIdentity) {
  auto p = AccessPolicy::Parse(R"({"identities": [
      {"identity": "CN=op", "role": "admin"},
      {"identity": "URI:spiffe://x/t", "role": "tenant", "owners": ["a"]},
      {"identity": "DNS:stored-b.strata.svc", "role": "device"},
      {"identity": "bare", "role": "admin"}]})",
                               "policy");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  auto m = p->Match("op", {"CN=op"});
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0]->identity, "CN=op");
  m = p->Match("spiffe://x/t", {"CN=t", "URI:spiffe://x/t"});
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0]->role, Role::kTenant);
  m = p->Match("stored-b", {"CN=stored-b", "DNS:stored-b.strata.svc"});
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0]->role, Role::kDevice);
  EXPECT_EQ(p->Match("bare", {"CN=bare"}).size(), 1u);
  EXPECT_TRUE(p->Match("CN=op", {}).size() == 1u);  // written as an entry: an exact match
  EXPECT_TRUE(p->Match("other", {"CN=other", "DNS:op"}).empty());
  // One certificate named by two entries: both returned (the file lookup refuses it).
  EXPECT_EQ(p->Match("bare", {"CN=op"}).size(), 2u);
}

TEST(AccessPolicyTest, AllowAnyVerified) {
  AccessPolicy p = AccessPolicy::AllowAnyVerified();
  EXPECT_TRUE(p.allow_any_verified());
  EXPECT_EQ(p.Find("anyone"), nullptr);
}

}  // namespace
}  // namespace strata::storage::auth
