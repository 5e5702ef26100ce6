#include "strata/netd/elastic_scaler.h"

#include <gtest/gtest.h>

namespace strata::netd {
namespace {

using std::chrono::seconds;

ElasticConfig Config() {
  ElasticConfig c;
  c.min_rate_bits = 1'000'000;
  c.max_rate_bits = 4'000'000;
  c.high_water_percent = 80;
  c.low_water_percent = 30;
  c.step_percent = 50;
  c.sustained_samples = 3;
  c.cooldown = seconds(5);
  return c;
}

// Feeds one 1 s sample at `percent` of the current rate.
std::optional<ElasticStep> Tick(ElasticScaler& s, kube::FakeClock& clock, double percent) {
  clock.Advance(seconds(1));
  const auto bits = static_cast<uint64_t>(static_cast<double>(s.rate()) * percent / 100);
  return s.Observe(bits, seconds(1), clock.Now());
}

TEST(ElasticScalerTest, SustainedHighUseStepsUpToMax) {
  kube::FakeClock clock;
  ElasticScaler s(Config(), 2'000'000);
  EXPECT_FALSE(Tick(s, clock, 95));
  EXPECT_FALSE(Tick(s, clock, 95));
  auto step = Tick(s, clock, 95);  // third sample in a row
  ASSERT_TRUE(step);
  EXPECT_EQ(step->direction, ElasticStep::Direction::kUp);
  EXPECT_EQ(step->from_rate_bits, 2'000'000u);
  EXPECT_EQ(step->to_rate_bits, 3'000'000u);
  EXPECT_EQ(s.rate(), 3'000'000u);
  // Cooldown: no step for 5 s even though the load stays.
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(Tick(s, clock, 95)) << i;
  step = Tick(s, clock, 95);
  ASSERT_TRUE(step);
  EXPECT_EQ(step->to_rate_bits, 4'000'000u);  // capped at max (3M + 1.5M > 4M)
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(Tick(s, clock, 100)) << "at max";
  EXPECT_EQ(s.rate(), 4'000'000u);
}

TEST(ElasticScalerTest, SustainedLowUseStepsDownToMin) {
  kube::FakeClock clock;
  ElasticScaler s(Config(), 4'000'000);
  int steps = 0;
  for (int i = 0; i < 60; ++i) steps += Tick(s, clock, 0) ? 1 : 0;
  EXPECT_EQ(s.rate(), 1'000'000u);
  EXPECT_EQ(steps, 2);  // 4M -> 2M -> 1M (min)
}

TEST(ElasticScalerTest, HysteresisBandResetsTheStreak) {
  kube::FakeClock clock;
  ElasticScaler s(Config(), 2'000'000);
  for (int i = 0; i < 30; ++i) {
    EXPECT_FALSE(Tick(s, clock, 95));
    EXPECT_FALSE(Tick(s, clock, 95));
    EXPECT_FALSE(Tick(s, clock, 50));  // between the marks: streak broken
  }
  EXPECT_EQ(s.rate(), 2'000'000u);
  // Alternating high and low never sustains either.
  for (int i = 0; i < 30; ++i) EXPECT_FALSE(Tick(s, clock, i % 2 ? 95 : 5));
}

TEST(ElasticScalerTest, InitialRateIsKeptWhenInRangeAndClampedOtherwise) {
  EXPECT_EQ(ElasticScaler(Config(), 2'500'000).rate(), 2'500'000u);  // restart: no flap
  EXPECT_EQ(ElasticScaler(Config(), 100).rate(), 1'000'000u);
  EXPECT_EQ(ElasticScaler(Config(), 9'000'000).rate(), 4'000'000u);
}

TEST(ElasticScalerTest, ZeroElapsedIsIgnored) {
  kube::FakeClock clock;
  ElasticScaler s(Config(), 2'000'000);
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(s.Observe(1'000'000'000, seconds(0), clock.Now()));
}

}  // namespace
}  // namespace strata::netd
