#include "strata/kube/labels.h"

#include <gtest/gtest.h>

namespace strata::kube {
namespace {

TEST(LabelSelectorTest, StringFormMatchesAsTheApiServerDoes) {
  auto s =
      ParseLabelSelector("app=web, tier!=db,env in (prod, staging),zone notin (b),gpu,!legacy");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->requirements().size(), 6u);
  std::map<std::string, std::string> l = {{"app", "web"}, {"env", "prod"}, {"gpu", ""}};
  EXPECT_TRUE(s->Matches(l));
  l["legacy"] = "1";
  EXPECT_FALSE(s->Matches(l));
  l.erase("legacy");
  l["tier"] = "db";
  EXPECT_FALSE(s->Matches(l));
  l["tier"] = "web";  // != matches another value, and a missing label
  EXPECT_TRUE(s->Matches(l));
  l["zone"] = "b";
  EXPECT_FALSE(s->Matches(l));
  l.erase("zone");
  l["env"] = "dev";
  EXPECT_FALSE(s->Matches(l));
  l["env"] = "staging";
  l.erase("gpu");
  EXPECT_FALSE(s->Matches(l));
}

TEST(LabelSelectorTest, DoubleEqualsAndEmpty) {
  auto s = ParseLabelSelector("strata.io/shard==a");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->Matches({{"strata.io/shard", "a"}}));
  EXPECT_FALSE(s->Matches({}));
  auto all = ParseLabelSelector("  ");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());
  EXPECT_TRUE(all->Matches({}));
}

TEST(LabelSelectorTest, BadStringsNameTheTerm) {
  for (const char* bad : {"a=b,", "env in prod", "env in ()", "env maybe (a)", "bad key!"}) {
    auto s = ParseLabelSelector(bad);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.status().message().find("label selector"), std::string::npos) << bad;
  }
}

TEST(LabelSelectorTest, FromJsonMatchLabelsAndExpressions) {
  Json sel = {{"matchLabels", {{"app", "postgres"}}},
              {"matchExpressions",
               {{{"key", "strata.io/content"}, {"operator", "In"}, {"values", {"vm", "backup"}}},
                {{"key", "scratch"}, {"operator", "DoesNotExist"}}}}};
  auto s = LabelSelectorFromJson(sel, "spec.selector");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Json pvc = {{"metadata", {{"labels", {{"app", "postgres"}, {"strata.io/content", "vm"}}}}}};
  EXPECT_TRUE(s->MatchesObject(pvc));
  pvc["metadata"]["labels"]["scratch"] = "y";
  EXPECT_FALSE(s->MatchesObject(pvc));
  EXPECT_FALSE(s->MatchesObject(Json::object()));
  auto all = LabelSelectorFromJson(Json::object(), "spec.selector");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->MatchesObject(Json::object()));
}

TEST(LabelSelectorTest, FromJsonErrorsNameTheField) {
  auto s = LabelSelectorFromJson({{"matchExpressions", {{{"key", "a"}, {"operator", "In"}}}}},
                                 "spec.selector");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(),
            "spec.selector.matchExpressions[0].values: required for operator In");
  s = LabelSelectorFromJson({{"matchExpressions", {{{"key", "a"}, {"operator", "Near"}}}}},
                            "spec.selector");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("\"Near\" is not one of"), std::string::npos);
}

}  // namespace
}  // namespace strata::kube
