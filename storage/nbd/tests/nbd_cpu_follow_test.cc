// A connection sending one small request at a time is served on the CPU its
// requests arrive on (CpuFollower); pipelined or large requests, or the option off,
// leave the threads free to run anywhere.
#include <gtest/gtest.h>
#include <sched.h>

#include <mutex>
#include <vector>

#include "cpu_follower.h"
#include "nbd_test_fixture.h"

namespace strata::nbd::test {
namespace {

using storage::IoKind;

int AllowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
  return CPU_COUNT(&set);
}

class NbdCpuFollowTest : public NbdServerTest {
 protected:
  void SetUp() override {
    NbdServerTest::SetUp();
    base_cpus_ = AllowedCpus();
    if (base_cpus_ < 2) GTEST_SKIP() << "needs at least 2 CPUs to run on, has " << base_cpus_;
    // Each request records how many CPUs the thread serving it may run on.
    auto vol = std::make_shared<MemVolume>(kDiskSize);
    vol->SetBeforeOpHook([this](IoKind) {
      const int n = AllowedCpus();
      std::lock_guard lock(mu_);
      served_on_.push_back(n);
    });
    catalog_.Add("watched", vol);
  }

  // How many CPUs the thread serving each request may run on, in order.
  std::vector<int> ServedOn() {
    std::lock_guard lock(mu_);
    return served_on_;
  }
  void Forget() {
    std::lock_guard lock(mu_);
    served_on_.clear();
  }

  // n requests, each sent after the previous reply arrived.
  void OneAtATime(TestClient* c, int n, uint32_t length) {
    for (int i = 0; i < n; ++i) {
      auto r = c->Read(uint64_t(i % 64) * length, length);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ASSERT_EQ(r->error, 0u);
    }
  }

  // The mechanism, without FollowPolicy's timed trial (tested on its own below).
  void StartFollowing() {
    NbdServerOptions o;
    o.follow_client_cpu_trial = false;
    StartServer(o);
  }

  int base_cpus_ = 0;
  std::mutex mu_;
  std::vector<int> served_on_;
};

TEST_F(NbdCpuFollowTest, SmallRequestsOneAtATimeAreServedOnOneCpu) {
  StartFollowing();
  auto c = Open("watched");
  ASSERT_NE(c, nullptr);
  constexpr int kN = CpuFollower::kFollowAfter + 40;
  OneAtATime(c.get(), kN, 4096);
  std::vector<int> on = ServedOn();
  ASSERT_EQ(on.size(), size_t{kN});
  // Not before the streak, every one after it.
  EXPECT_EQ(on.front(), base_cpus_);
  for (int i = CpuFollower::kFollowAfter; i < kN; ++i) EXPECT_EQ(on[i], 1) << "request " << i;
}

TEST_F(NbdCpuFollowTest, PipelinedRequestsLetTheThreadsRunAnywhereAgain) {
  StartFollowing();
  auto c = Open("watched");
  ASSERT_NE(c, nullptr);
  OneAtATime(c.get(), CpuFollower::kFollowAfter + 8, 4096);
  ASSERT_EQ(ServedOn().back(), 1);
  // Several requests in the socket at once (one send, so however fast the server
  // answers, it reads the first with the others behind it): no longer a client waiting
  // for each reply. Whichever thread serves the later ones may run on every CPU again.
  Forget();
  std::vector<TestClient::RequestHeader> reads;
  for (uint64_t h = 1; h <= 16; ++h) reads.push_back({kCmdRead, h, h * 4096, 4096});
  ASSERT_TRUE(c->SendRequestsAtOnce(reads).ok());
  for (int i = 0; i < 16; ++i) {
    auto r = c->ReadReply();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->error, 0u);
  }
  // The first was read with the rest behind it: the threads were let go before any of
  // them ran.
  const std::vector<int> on = ServedOn();
  ASSERT_EQ(on.size(), 16u);
  for (size_t i = 0; i < on.size(); ++i) EXPECT_EQ(on[i], base_cpus_) << "request " << i;
  // And one at a time again: followed again after the streak.
  Forget();
  OneAtATime(c.get(), CpuFollower::kFollowAfter + 8, 4096);
  EXPECT_EQ(ServedOn().back(), 1);
}

TEST_F(NbdCpuFollowTest, LargeRequestsAreNotFollowed) {
  StartFollowing();
  auto c = Open("watched");
  ASSERT_NE(c, nullptr);
  OneAtATime(c.get(), CpuFollower::kFollowAfter + 16, CpuFollower::kMaxSmallBytes + 4096);
  for (int n : ServedOn()) ASSERT_EQ(n, base_cpus_);
}

TEST_F(NbdCpuFollowTest, NothingIsFollowedWhenTurnedOff) {
  NbdServerOptions o;
  o.follow_client_cpu = false;
  o.follow_client_cpu_trial = false;
  StartServer(o);
  auto c = Open("watched");
  ASSERT_NE(c, nullptr);
  OneAtATime(c.get(), CpuFollower::kFollowAfter + 16, 4096);
  for (int n : ServedOn()) ASSERT_EQ(n, base_cpus_);
}

TEST_F(NbdCpuFollowTest, AnotherConnectionIsNotMoved) {
  // Two clients: one followed, the other sending its requests after it; the
  // second's threads keep every CPU until its own streak.
  std::mutex b_mu;
  std::vector<int> b_on;
  disk_->SetBeforeOpHook([&](IoKind) {
    const int n = AllowedCpus();
    std::lock_guard lock(b_mu);
    b_on.push_back(n);
  });
  StartFollowing();
  auto a = Open("watched");
  auto b = Open("disk");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  OneAtATime(a.get(), CpuFollower::kFollowAfter + 8, 4096);
  ASSERT_EQ(ServedOn().back(), 1);
  for (int i = 0; i < 8; ++i) {
    auto r = b->Read(uint64_t(i) * 4096, 4096);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  std::lock_guard lock(b_mu);
  ASSERT_EQ(b_on.size(), 8u);
  for (int n : b_on) EXPECT_EQ(n, base_cpus_);
}

using Clock = FollowPolicy::Clock;
using std::chrono::microseconds;

// Feeds n qualifying requests `every` apart from *t; how many were followed.
int Feed(FollowPolicy* p, Clock::time_point* t, int n, microseconds every) {
  int followed = 0;
  for (int i = 0; i < n; ++i) {
    *t += every;
    if (p->Observe(true, *t)) ++followed;
  }
  return followed;
}

TEST(FollowPolicyTest, WithoutATrialFollowsAfterOneWindow) {
  FollowPolicy p(/*trial=*/false);
  Clock::time_point t{};
  EXPECT_EQ(Feed(&p, &t, FollowPolicy::kWindow, microseconds(30)), 0);
  EXPECT_TRUE(p.Observe(true, t += microseconds(30)));
  EXPECT_EQ(Feed(&p, &t, 1000, microseconds(90)), 1000);
  EXPECT_FALSE(p.Observe(false, t));
}

// A whole trial: the requests followed before it is decided.
constexpr int kTrial = FollowPolicy::kSettle + FollowPolicy::kWindow;

TEST(FollowPolicyTest, KeepsFollowingWhenTheTrialIsFaster) {
  FollowPolicy p;
  Clock::time_point t{};
  EXPECT_EQ(Feed(&p, &t, FollowPolicy::kWindow, microseconds(40)), 0);
  // The trial: slow while the threads settle, then twice as fast.
  EXPECT_EQ(Feed(&p, &t, FollowPolicy::kSettle, microseconds(90)), FollowPolicy::kSettle);
  EXPECT_EQ(Feed(&p, &t, FollowPolicy::kWindow, microseconds(20)), FollowPolicy::kWindow);
  // Kept, whatever the pace afterwards, until a request does not qualify.
  EXPECT_EQ(Feed(&p, &t, 500, microseconds(60)), 500);
  EXPECT_FALSE(p.Observe(false, t));
  EXPECT_EQ(p.needed(), FollowPolicy::kWindow);
}

TEST(FollowPolicyTest, LetsGoWhenTheTrialIsNotFasterAndWaitsLongerEachTime) {
  FollowPolicy p;
  Clock::time_point t{};
  const int w = FollowPolicy::kWindow;
  EXPECT_EQ(Feed(&p, &t, w, microseconds(10)), 0);
  // On trial at the same pace (under 10 % faster): followed for the trial, then let go.
  EXPECT_EQ(Feed(&p, &t, kTrial, microseconds(10)), kTrial);
  EXPECT_FALSE(p.Observe(true, t += microseconds(10)));
  EXPECT_EQ(p.needed(), 2 * w);
  // The next trial needs a streak twice as long.
  EXPECT_EQ(Feed(&p, &t, 2 * w, microseconds(10)), 0);
  EXPECT_EQ(Feed(&p, &t, kTrial, microseconds(12)), kTrial);  // slower: let go again
  EXPECT_FALSE(p.Observe(true, t += microseconds(12)));
  EXPECT_EQ(p.needed(), 4 * w);
  // A faster trial is kept, and resets the wait.
  EXPECT_EQ(Feed(&p, &t, 4 * w, microseconds(10)), 0);
  EXPECT_EQ(Feed(&p, &t, kTrial + 100, microseconds(5)), kTrial + 100);
  EXPECT_EQ(p.needed(), w);
}

TEST(FollowPolicyTest, TheWaitIsCapped) {
  FollowPolicy p;
  Clock::time_point t{};
  for (int i = 0; i <= FollowPolicy::kMaxBackoff + 2; ++i) {
    Feed(&p, &t, p.needed() + kTrial + 1, microseconds(10));
  }
  EXPECT_EQ(p.needed(), FollowPolicy::kWindow << FollowPolicy::kMaxBackoff);
}

TEST(FollowPolicyTest, ARequestThatDoesNotQualifyRestartsTheStreak) {
  FollowPolicy p(/*trial=*/false);
  Clock::time_point t{};
  EXPECT_EQ(Feed(&p, &t, FollowPolicy::kWindow - 1, microseconds(30)), 0);
  EXPECT_FALSE(p.Observe(false, t));
  EXPECT_EQ(Feed(&p, &t, FollowPolicy::kWindow, microseconds(30)), 0);
  EXPECT_TRUE(p.Observe(true, t += microseconds(30)));
}

}  // namespace
}  // namespace strata::nbd::test
