#include "strata/storage/io_stats.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace strata::storage {
namespace {

using std::chrono::nanoseconds;

TEST(LunIoStatsTest, BucketsAreMonotoneAndBounded) {
  int prev = -1;
  for (uint64_t ns : {0ull, 1ull, 7ull, 8ull, 9ull, 100ull, 1000ull, 123456ull, 1ull << 40}) {
    int b = LunIoStats::BucketFor(ns);
    EXPECT_GE(b, prev);
    EXPECT_GE(LunIoStats::BucketUpperBound(b), ns) << ns;
    // Within 12.5 % above the value.
    EXPECT_LE(LunIoStats::BucketUpperBound(b), ns + ns / 8 + 1) << ns;
    prev = b;
  }
}

TEST(LunIoStatsTest, CountsAndPercentiles) {
  LunIoStats stats;
  for (int i = 1; i <= 1000; ++i) {
    stats.Record(IoKind::kRead, 4096, nanoseconds(i * 1000), true);
  }
  stats.Record(IoKind::kWrite, 4096, nanoseconds(5000), false);
  auto snap = stats.Take();
  const auto& r = snap.of(IoKind::kRead);
  EXPECT_EQ(r.ops, 1000u);
  EXPECT_EQ(r.bytes, 4096u * 1000);
  EXPECT_EQ(r.errors, 0u);
  EXPECT_NEAR(static_cast<double>(r.p50_ns), 500e3, 500e3 * 0.13);
  EXPECT_NEAR(static_cast<double>(r.p99_ns), 990e3, 990e3 * 0.13);
  EXPECT_EQ(r.max_ns, 1'000'000u);
  EXPECT_LE(r.p999_ns, r.max_ns);
  const auto& w = snap.of(IoKind::kWrite);
  EXPECT_EQ(w.ops, 1u);
  EXPECT_EQ(w.errors, 1u);
  EXPECT_EQ(w.bytes, 0u);
  EXPECT_EQ(snap.of(IoKind::kFlush).ops, 0u);
  EXPECT_EQ(snap.of(IoKind::kFlush).p99_ns, 0u);
}

TEST(LunIoStatsTest, ConcurrentRecordsAreAllCounted) {
  LunIoStats stats;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) stats.Record(IoKind::kWrite, 512, nanoseconds(i), true);
    });
  }
  for (auto& t : threads) t.join();
  auto w = stats.Take().of(IoKind::kWrite);
  EXPECT_EQ(w.ops, 40000u);
  EXPECT_EQ(w.bytes, 512u * 40000);
}

TEST(IoRateWindowTest, OpsAndBytesPerSecondOverTheWindow) {
  using std::chrono::seconds;
  const IoRateWindow::Clock::time_point t0{};
  IoRateWindow w(3);
  LunIoStats stats;
  EXPECT_EQ(w.Rates(t0, stats.Take()).bytes_per_second[0], 0.0);  // no sample yet
  w.Add(t0, stats.Take());
  for (int i = 0; i < 100; ++i) stats.Record(IoKind::kWrite, 8192, nanoseconds(10), true);
  stats.Record(IoKind::kRead, 4096, nanoseconds(10), true);
  stats.Record(IoKind::kRead, 4096, nanoseconds(10), false);  // failed: no bytes
  IoRates r = w.Rates(t0 + seconds(2), stats.Take());
  EXPECT_DOUBLE_EQ(r.ops_per_second[static_cast<int>(IoKind::kWrite)], 50.0);
  EXPECT_DOUBLE_EQ(r.bytes_per_second[static_cast<int>(IoKind::kWrite)], 50.0 * 8192);
  EXPECT_DOUBLE_EQ(r.ops_per_second[static_cast<int>(IoKind::kRead)], 1.0);
  EXPECT_DOUBLE_EQ(r.bytes_per_second[static_cast<int>(IoKind::kRead)], 2048.0);
  EXPECT_EQ(r.bytes_per_second[static_cast<int>(IoKind::kFlush)], 0.0);
  // The window slides: after three more samples the first one (and its burst) is gone.
  w.Add(t0 + seconds(1), stats.Take());
  w.Add(t0 + seconds(2), stats.Take());
  w.Add(t0 + seconds(3), stats.Take());
  r = w.Rates(t0 + seconds(4), stats.Take());
  EXPECT_EQ(r.ops_per_second[static_cast<int>(IoKind::kWrite)], 0.0);
  EXPECT_EQ(r.bytes_per_second[static_cast<int>(IoKind::kWrite)], 0.0);
}

}  // namespace
}  // namespace strata::storage
