#include "strata/storage/copy_priority.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "copy_starvation_policy.h"

namespace strata::storage {
namespace {

TEST(CopyPriorityTest, ParsesTheThreeNamesAndRefusesOthersNamingTheFlag) {
  for (auto p : {CopyPriority::kNormal, CopyPriority::kBatch, CopyPriority::kIdle}) {
    auto parsed = ParseCopyPriority(CopyPriorityName(p), "--copy-priority");
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, p);
  }
  auto bad = ParseCopyPriority("low", "--copy-priority");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("--copy-priority: 'low'"), std::string::npos)
      << bad.status().message();
}

// A scope puts its thread at the copy priority and back to SCHED_OTHER; a dedicated
// copy thread stays there. Runs on fresh threads so the test's own stays as it was.
TEST(CopyPriorityTest, ScopeAppliesAndRestoresDedicatedThreadsKeepIt) {
  SetCopyPriority(CopyPriority::kBatch);
  int inside = -1, after = -1, dedicated = -1;
  std::thread([&] {
    {
      CopyThreadScope copy;
      inside = sched_getscheduler(0);
    }
    after = sched_getscheduler(0);
  }).join();
  std::thread([&] {
    BecomeCopyThread();
    dedicated = sched_getscheduler(0);
  }).join();
  SetCopyPriority(CopyPriority::kNormal);
  EXPECT_EQ(inside, SCHED_BATCH);
  EXPECT_EQ(after, SCHED_OTHER);
  EXPECT_EQ(dedicated, SCHED_BATCH);

  int normal = -1;
  std::thread([&] {
    CopyThreadScope copy;  // kNormal: nothing changes
    normal = sched_getscheduler(0);
  }).join();
  EXPECT_EQ(normal, SCHED_OTHER);
}

// --- CopyStarvationPolicy, on a synthetic clock ----------------------------------

using Policy = CopyStarvationPolicy;
using std::chrono::milliseconds;
constexpr uint64_t kFloor = 32ull << 20;

Policy::Options Opts() {
  Policy::Options o;
  o.floor_bytes_per_second = kFloor;
  o.window = milliseconds(1000);
  o.hold = milliseconds(2000);
  o.max_hold = milliseconds(8000);
  return o;
}

// Ticks every 250 ms from `t` for `ms`, the copies moving `bytes_per_second`; returns
// the actions in order (kNone left out) and advances t and progress.
std::vector<Policy::Action> Tick4(Policy& p, Policy::Clock::time_point& t, uint64_t& progress,
                                  int ms, uint64_t bytes_per_second, bool copying = true) {
  std::vector<Policy::Action> out;
  for (int i = 0; i < ms / 250; ++i) {
    t += milliseconds(250);
    progress += bytes_per_second / 4;
    auto a = p.Tick(t, progress, copying);
    if (a != Policy::Action::kNone) out.push_back(a);
  }
  return out;
}

TEST(CopyStarvationPolicyTest, CopiesAtTheFloorOrAboveAreNeverRaised) {
  Policy p(Opts());
  Policy::Clock::time_point t{};
  uint64_t progress = 0;
  EXPECT_TRUE(Tick4(p, t, progress, 20000, kFloor).empty());
  EXPECT_TRUE(Tick4(p, t, progress, 20000, kFloor / 2 + (1 << 20)).empty());
  EXPECT_FALSE(p.raised());
}

TEST(CopyStarvationPolicyTest, NothingIsRaisedWithoutCopyThreads) {
  Policy p(Opts());
  Policy::Clock::time_point t{};
  uint64_t progress = 0;
  EXPECT_TRUE(Tick4(p, t, progress, 20000, 0, /*copying=*/false).empty());
}

TEST(CopyStarvationPolicyTest, AStarvedCopyIsRaisedAfterAWindowAndLoweredAfterTheHold) {
  Policy p(Opts());
  Policy::Clock::time_point t{};
  uint64_t progress = 0;
  // A whole window from the first sample (the first tick) before anything is decided.
  EXPECT_TRUE(Tick4(p, t, progress, 1000, 0).empty());
  ASSERT_EQ(Tick4(p, t, progress, 250, 0), std::vector{Policy::Action::kRaise});
  EXPECT_TRUE(p.raised());
  EXPECT_EQ(p.hold(), milliseconds(2000));
  // Raised, the copy moves again; the hold ends on time whatever it moves.
  EXPECT_TRUE(Tick4(p, t, progress, 1750, 10 * kFloor).empty());
  EXPECT_EQ(Tick4(p, t, progress, 250, 10 * kFloor), std::vector{Policy::Action::kLower});
  EXPECT_FALSE(p.raised());
}

TEST(CopyStarvationPolicyTest, TheHoldDoublesWhileStarvationReturnsAndResetsAfterAQuietSpell) {
  Policy p(Opts());
  Policy::Clock::time_point t{};
  uint64_t progress = 0;
  std::vector<milliseconds> holds;
  for (int i = 0; i < 4; ++i) {
    // Starved whenever lowered: raised a window after each lower.
    while (!p.raised()) Tick4(p, t, progress, 250, 0);
    holds.push_back(p.hold());
    while (p.raised()) Tick4(p, t, progress, 250, 0);
  }
  EXPECT_EQ(holds, (std::vector<milliseconds>{milliseconds(2000), milliseconds(4000),
                                              milliseconds(8000), milliseconds(8000)}));
  // Lowered for a quiet spell of over 3 windows at the floor: the next raise starts over.
  EXPECT_TRUE(Tick4(p, t, progress, 4000, kFloor).empty());
  while (!p.raised()) Tick4(p, t, progress, 250, 0);
  EXPECT_EQ(p.hold(), milliseconds(2000));
}

TEST(CopyStarvationPolicyTest, AStallLongerThanAWindowCountsOnlyOnceTheWindowIsFull) {
  Policy p(Opts());
  Policy::Clock::time_point t{};
  uint64_t progress = 0;
  EXPECT_TRUE(Tick4(p, t, progress, 3000, 2 * kFloor).empty());
  // Half a window without progress after a fast one: still over half the floor.
  EXPECT_TRUE(Tick4(p, t, progress, 250, 0).empty());
  // A whole window without: raised.
  EXPECT_EQ(Tick4(p, t, progress, 1000, 0), std::vector{Policy::Action::kRaise});
}

// --- The guard with real threads ------------------------------------------------

bool PinTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

// The first CPU this process may run on.
int FirstCpu() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return -1;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) return c;
  }
  return -1;
}

// Waits (polling, with a deadline) until pred() holds; false at the deadline.
template <typename Pred>
bool WaitFor(Pred pred, std::chrono::seconds deadline = std::chrono::seconds(30)) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(milliseconds(5));  // polling interval, not synchronisation
  }
  return true;
}

// A dedicated copy thread at SCHED_IDLE shares one CPU with a busy thread at the normal
// priority, which leaves it nearly nothing: the guard raises it to SCHED_BATCH (where it
// gets its share and moves again) and, once the busy thread has gone and the hold has
// ended, puts it back at SCHED_IDLE.
TEST(CopyStarvationGuardTest, AStarvedCopyThreadIsRaisedToBatchThenLoweredAgain) {
  SetCopyPriority(CopyPriority::kIdle);
  CopyStarvationGuardOptions o;
  o.floor_bytes_per_second = 4ull << 30;  // 2 GiB/s, more than a starved thread does
  o.tick = milliseconds(50);
  o.window = milliseconds(200);
  o.hold = milliseconds(300);
  o.max_hold = milliseconds(300);
  if (!StartCopyStarvationGuard(o)) {
    SetCopyPriority(CopyPriority::kNormal);
    GTEST_SKIP() << "this process may not leave SCHED_IDLE (no CAP_SYS_NICE): copy threads "
                    "use batch and there is nothing to guard";
  }
  const uint64_t raises_before = CopyStarvationRaises();
  const int cpu = FirstCpu();
  ASSERT_GE(cpu, 0);
  std::atomic<bool> stop_hog{false}, stop_copy{false};
  std::atomic<pid_t> copy_tid{0};
  std::atomic<uint64_t> copied{0};
  std::thread hog([&] {
    ASSERT_TRUE(PinTo(cpu));
    volatile uint64_t x = 0;
    while (!stop_hog.load(std::memory_order_relaxed)) x = x + 1;
  });
  std::thread copier([&] {
    ASSERT_TRUE(PinTo(cpu));
    BecomeCopyThread();
    copy_tid = ::gettid();
    std::vector<char> buf(64 << 10);
    while (!stop_copy.load(std::memory_order_relaxed)) {
      std::memset(buf.data(), static_cast<int>(copied.load() & 0xff), buf.size());
      NoteCopyProgress(buf.size());
      copied.fetch_add(buf.size());
    }
  });
  ASSERT_TRUE(WaitFor([&] { return copy_tid.load() != 0; }));
  const pid_t tid = copy_tid.load();
  EXPECT_TRUE(WaitFor([&] { return sched_getscheduler(tid) == SCHED_BATCH; }))
      << "the starved copy thread was never raised";
  EXPECT_GT(CopyStarvationRaises(), raises_before);  // counted (the metric)
  // Raised, it gets CPU time beside the busy thread.
  const uint64_t at_raise = copied.load();
  EXPECT_TRUE(WaitFor([&] { return copied.load() > at_raise + (64ull << 20); }));

  stop_hog = true;
  hog.join();
  EXPECT_TRUE(WaitFor([&] { return !CopyThreadsRaised(); }));
  EXPECT_TRUE(WaitFor([&] { return sched_getscheduler(tid) == SCHED_IDLE; }));
  stop_copy = true;
  copier.join();
  StopCopyStarvationGuard();
  SetCopyPriority(CopyPriority::kNormal);
}

// Under kIdle a scope's thread runs at SCHED_IDLE (or batch when asked: the gRPC
// server's threads) and goes back to SCHED_OTHER at its end.
TEST(CopyStarvationGuardTest, ScopesUnderIdle) {
  SetCopyPriority(CopyPriority::kIdle);
  int inside = -1, as_batch = -1, after = -1;
  std::thread([&] {
    {
      CopyThreadScope copy;
      inside = sched_getscheduler(0);
    }
    {
      CopyThreadScope copy(/*idle_as_batch=*/true);
      as_batch = sched_getscheduler(0);
    }
    after = sched_getscheduler(0);
  }).join();
  SetCopyPriority(CopyPriority::kNormal);
  EXPECT_TRUE(inside == SCHED_IDLE || inside == SCHED_BATCH) << inside;  // batch: not reversible
  EXPECT_EQ(as_batch, SCHED_BATCH);
  EXPECT_EQ(after, SCHED_OTHER);
}

}  // namespace
}  // namespace strata::storage
