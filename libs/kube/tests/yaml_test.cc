#include "strata/kube/yaml.h"

#include <gtest/gtest.h>

namespace strata::kube {
namespace {

TEST(YamlToJsonTest, CoreSchemaScalars) {
  auto j = YamlToJson(R"(
int: 42
neg: -7
float: 0.00012
exp: 1.5e3
bare_exp: 2e3
bool: true
null: ~
quoted: "1.5"
version: 1.2.3
word: 1h30m
dot: .
inf: .inf
list: [1, 2.5, x]
)");
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ((*j)["int"], 42);
  EXPECT_TRUE((*j)["int"].is_number_integer());
  EXPECT_EQ((*j)["neg"], -7);
  EXPECT_TRUE((*j)["float"].is_number_float());
  EXPECT_DOUBLE_EQ((*j)["float"].get<double>(), 0.00012);
  EXPECT_DOUBLE_EQ((*j)["exp"].get<double>(), 1500);
  EXPECT_DOUBLE_EQ((*j)["bare_exp"].get<double>(), 2000);
  EXPECT_EQ((*j)["bool"], true);
  EXPECT_TRUE((*j)["null"].is_null());
  EXPECT_EQ((*j)["quoted"], "1.5") << "a quoted scalar stays a string";
  EXPECT_EQ((*j)["version"], "1.2.3");
  EXPECT_EQ((*j)["word"], "1h30m");
  EXPECT_EQ((*j)["dot"], ".");
  EXPECT_EQ((*j)["inf"], ".inf") << "JSON has no infinity";
  EXPECT_EQ((*j)["list"], nlohmann::json::parse(R"([1, 2.5, "x"])"));
}

TEST(YamlToJsonTest, SyntaxErrorNamesTheLine) {
  auto j = YamlToJson("a: 1\nb: [2\n");
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(j.status().message().find("line"), std::string::npos) << j.status().message();
}

}  // namespace
}  // namespace strata::kube
