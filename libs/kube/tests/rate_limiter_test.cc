#include "strata/kube/rate_limiter.h"

#include <gtest/gtest.h>

namespace strata::kube {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(TokenBucketTest, BurstThenSteadyRate) {
  FakeClock clock;
  TokenBucket b(5, 3, &clock);
  EXPECT_EQ(b.Reserve(), Duration::zero());
  EXPECT_EQ(b.Reserve(), Duration::zero());
  EXPECT_EQ(b.Reserve(), Duration::zero());
  EXPECT_EQ(b.Reserve(), milliseconds(200));
  EXPECT_EQ(b.Reserve(), milliseconds(400)) << "debt accumulates: callers queue up";
  clock.Advance(seconds(10));
  EXPECT_EQ(b.Reserve(), Duration::zero()) << "refilled, but never beyond the burst";
  EXPECT_EQ(b.Reserve(), Duration::zero());
  EXPECT_EQ(b.Reserve(), Duration::zero());
  EXPECT_GT(b.Reserve(), Duration::zero());
}

TEST(ExponentialBackoffTest, DoublesAndCaps) {
  ExponentialBackoff e{milliseconds(5), seconds(1)};
  EXPECT_EQ(e.For(0), milliseconds(5));
  EXPECT_EQ(e.For(1), milliseconds(10));
  EXPECT_EQ(e.For(7), milliseconds(640));
  EXPECT_EQ(e.For(8), seconds(1));
  EXPECT_EQ(e.For(1000), seconds(1)) << "no overflow";
}

}  // namespace
}  // namespace strata::kube
