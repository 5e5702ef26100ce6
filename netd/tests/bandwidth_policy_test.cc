#include "strata/netd/bandwidth_policy.h"

#include <gtest/gtest.h>

namespace strata::netd {
namespace {

using kube::Json;

Json Policy(const std::string& name, const std::string& created, Json spec) {
  return {
      {"apiVersion", "strata.io/v1alpha1"},
      {"kind", "BandwidthPolicy"},
      {"metadata",
       {{"name", name}, {"namespace", "ns1"}, {"creationTimestamp", created}, {"generation", 1}}},
      {"spec", spec}};
}

Json Elastic(Json elastic) {
  return {{"podSelector", {{"matchLabels", {{"app", "web"}}}}},
          {"egress", {{"rateBitsPerSecond", 2000000}}},
          {"elastic", elastic}};
}

std::string ErrorOf(const Json& spec) {
  auto r = ParsePolicy(Policy("p", "2026-01-01T00:00:00Z", spec));
  return r.ok() ? "" : r.status().message();
}

TEST(BandwidthPolicyTest, ParsesRatesAndElastic) {
  auto p = ParsePolicy(Policy("p", "2026-01-01T00:00:00Z",
                              Elastic({{"minRateBitsPerSecond", 1000000},
                                       {"maxRateBitsPerSecond", 8000000},
                                       {"scaleUpUtilizationPercent", 80},
                                       {"scaleDownUtilizationPercent", 20},
                                       {"sustainedFor", "3s"},
                                       {"cooldown", "2s"},
                                       {"sampleInterval", "500ms"}})));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->egress.rate_bits, 2000000u);
  EXPECT_EQ(p->egress.burst_bits, DefaultBurstBits(2000000));
  ASSERT_TRUE(p->elastic);
  EXPECT_EQ(p->elastic->sustained_samples, 6);
  EXPECT_EQ(p->elastic->cooldown, std::chrono::seconds(2));
  EXPECT_EQ(p->sample_interval, std::chrono::milliseconds(500));
  EXPECT_EQ(p->Key(), "ns1/p");
}

TEST(BandwidthPolicyTest, BadInputNamesTheField) {
  const Json sel = {{"matchLabels", {{"app", "web"}}}};
  EXPECT_NE(ErrorOf({{"podSelector", sel}, {"egress", {{"rateBitsPerSecond", 10}}}})
                .find("spec.egress.rateBitsPerSecond"),
            std::string::npos);
  EXPECT_NE(ErrorOf({{"podSelector", sel}, {"ingress", {{"rateBitsPerSecond", 100000000000}}}})
                .find("spec.ingress.rateBitsPerSecond"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Elastic({{"minRateBitsPerSecond", 9000000}, {"maxRateBitsPerSecond", 1000000}}))
                .find("spec.elastic.minRateBitsPerSecond"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Elastic({{"minRateBitsPerSecond", 1000000},
                             {"maxRateBitsPerSecond", 8000000},
                             {"scaleUpUtilizationPercent", 50},
                             {"scaleDownUtilizationPercent", 50}}))
                .find("spec.elastic.scaleDownUtilizationPercent"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Elastic({{"minRateBitsPerSecond", 3000000}, {"maxRateBitsPerSecond", 8000000}}))
                .find("spec.egress.rateBitsPerSecond"),
            std::string::npos);  // the start rate outside [min, max]
  EXPECT_NE(ErrorOf(Elastic({{"minRateBitsPerSecond", 1000000},
                             {"maxRateBitsPerSecond", 8000000},
                             {"sustainedFor", "1s"},
                             {"sampleInterval", "2s"}}))
                .find("spec.elastic.sustainedFor"),
            std::string::npos);
  EXPECT_NE(ErrorOf({{"podSelector", sel}}).find("nothing to apply"), std::string::npos);
  EXPECT_NE(ErrorOf({{"egress", {{"rateBitsPerSecond", 100000}}}}).find("podSelector"),
            std::string::npos);
}

TEST(BandwidthPolicyTest, OldestPolicyWinsThenName) {
  const Json spec = {{"podSelector", Json::object()}, {"egress", {{"rateBitsPerSecond", 100000}}}};
  auto newer = *ParsePolicy(Policy("a-newer", "2026-03-01T00:00:00Z", spec));
  auto older = *ParsePolicy(Policy("z-older", "2026-01-01T00:00:00Z", spec));
  auto twin = *ParsePolicy(Policy("b-twin", "2026-01-01T00:00:00Z", spec));
  EXPECT_EQ(ChooseWinner({&newer, &older}), 1u);
  EXPECT_EQ(ChooseWinner({&older, &newer}), 0u);
  EXPECT_EQ(ChooseWinner({&newer, &older, &twin}), 2u);  // same age: b-twin < z-older
}

}  // namespace
}  // namespace strata::netd
