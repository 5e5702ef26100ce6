#include "strata/kube/workqueue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

namespace strata::kube {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(WorkQueueTest, DeduplicatesQueuedKeys) {
  FakeClock clock;
  WorkQueue q(&clock);
  q.Add("a");
  q.Add("b");
  q.Add("a");
  EXPECT_EQ(q.Len(), 2u);
  EXPECT_EQ(q.Get(), "a");
  EXPECT_EQ(q.Get(), "b");
  EXPECT_EQ(q.Len(), 0u);
}

TEST(WorkQueueTest, KeyBeingProcessedIsNotHandedOutAgainUntilDone) {
  FakeClock clock;
  WorkQueue q(&clock);
  q.Add("a");
  ASSERT_EQ(q.Get(), "a");
  q.Add("a");  // changed again while a worker holds it
  q.Add("a");
  EXPECT_EQ(q.Len(), 0u) << "a second worker must not get 'a' while the first holds it";
  EXPECT_EQ(q.GetUntil(clock.Now()), std::nullopt);
  q.Done("a");
  EXPECT_EQ(q.Len(), 1u) << "Done re-queues a key that was re-added meanwhile, once";
  EXPECT_EQ(q.Get(), "a");
  q.Done("a");
  EXPECT_EQ(q.Len(), 0u);
}

TEST(WorkQueueTest, ConcurrentWorkersNeverShareAKey) {
  WorkQueue q(Clock::Real());
  std::mutex mu;
  std::set<std::string> active;
  std::atomic<bool> overlap{false};
  std::atomic<int> processed{0};
  std::vector<std::jthread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      while (auto key = q.Get()) {
        {
          std::lock_guard g(mu);
          if (!active.insert(*key).second) overlap = true;
        }
        std::this_thread::yield();
        {
          std::lock_guard g(mu);
          active.erase(*key);
        }
        processed++;
        q.Done(*key);
      }
    });
  }
  for (int i = 0; i < 20000; ++i) q.Add("k" + std::to_string(i % 7));
  while (q.Len() > 0) std::this_thread::yield();
  q.ShutDown();
  workers.clear();
  EXPECT_FALSE(overlap.load());
  EXPECT_GE(processed.load(), 7);
}

TEST(WorkQueueTest, AddAfterWaitsForTheClock) {
  FakeClock clock;
  WorkQueue q(&clock);
  q.AddAfter("a", seconds(5));
  EXPECT_EQ(q.Len(), 0u);
  EXPECT_EQ(q.DelayedLen(), 1u);
  EXPECT_EQ(q.GetUntil(clock.Now()), std::nullopt);
  clock.Advance(seconds(4));
  EXPECT_EQ(q.GetUntil(clock.Now()), std::nullopt);
  clock.Advance(seconds(1));
  EXPECT_EQ(q.GetUntil(clock.Now()), "a");
}

TEST(WorkQueueTest, EarliestDelayWins) {
  FakeClock clock;
  WorkQueue q(&clock);
  q.AddAfter("a", seconds(10));
  q.AddAfter("a", seconds(2));
  q.AddAfter("a", seconds(30));
  clock.Advance(seconds(2));
  EXPECT_EQ(q.GetUntil(clock.Now()), "a");
  q.Done("a");
  clock.Advance(seconds(60));
  EXPECT_EQ(q.GetUntil(clock.Now()), std::nullopt) << "the later delays were folded into one";
}

TEST(WorkQueueTest, BlockedGetWakesWhenTheFakeClockPassesTheDelay) {
  FakeClock clock;
  WorkQueue q(&clock);
  q.AddAfter("a", seconds(1));
  std::optional<std::string> got;
  std::jthread t([&] { got = q.Get(); });
  clock.Advance(seconds(1));
  t.join();
  EXPECT_EQ(got, "a");
}

TEST(WorkQueueTest, RateLimitedBackoffDoublesPerItemAndForgetResets) {
  FakeClock clock;
  WorkQueue::Options o;
  o.backoff.base = milliseconds(5);
  o.backoff.max = seconds(1);
  o.qps = 1000;  // keep the bucket out of the way
  o.burst = 1000;
  WorkQueue q(o, &clock);
  const milliseconds expected[] = {milliseconds(5), milliseconds(10), milliseconds(20),
                                   milliseconds(40)};
  for (auto want : expected) {
    q.AddRateLimited("a");
    clock.Advance(want - milliseconds(1));
    EXPECT_EQ(q.GetUntil(clock.Now()), std::nullopt) << want.count();
    clock.Advance(milliseconds(1));
    ASSERT_EQ(q.GetUntil(clock.Now()), "a") << want.count();
    q.Done("a");
  }
  EXPECT_EQ(q.NumRequeues("a"), 4);
  EXPECT_EQ(q.NumRequeues("b"), 0) << "backoff is per item";
  q.Forget("a");
  EXPECT_EQ(q.NumRequeues("a"), 0);
  q.AddRateLimited("a");
  clock.Advance(milliseconds(5));
  EXPECT_EQ(q.GetUntil(clock.Now()), "a");
}

TEST(WorkQueueTest, OverallBucketLimitsManyItems) {
  FakeClock clock;
  WorkQueue::Options o;
  o.backoff.base = milliseconds(1);
  o.qps = 10;
  o.burst = 2;
  WorkQueue q(o, &clock);
  for (int i = 0; i < 4; ++i) q.AddRateLimited("k" + std::to_string(i));
  clock.Advance(milliseconds(1));
  // Two from the burst, then one every 100 ms.
  EXPECT_TRUE(q.GetUntil(clock.Now()).has_value());
  EXPECT_TRUE(q.GetUntil(clock.Now()).has_value());
  EXPECT_EQ(q.GetUntil(clock.Now()), std::nullopt);
  clock.Advance(milliseconds(100));
  EXPECT_TRUE(q.GetUntil(clock.Now()).has_value());
  EXPECT_EQ(q.GetUntil(clock.Now()), std::nullopt);
  clock.Advance(milliseconds(100));
  EXPECT_TRUE(q.GetUntil(clock.Now()).has_value());
}

TEST(WorkQueueTest, ShutDownWakesGetters) {
  WorkQueue q(Clock::Real());
  std::optional<std::string> got = "unset";
  std::jthread t([&] { got = q.Get(); });
  q.ShutDown();
  t.join();
  EXPECT_EQ(got, std::nullopt);
  q.Add("a");
  EXPECT_EQ(q.Len(), 0u);
}

}  // namespace
}  // namespace strata::kube
