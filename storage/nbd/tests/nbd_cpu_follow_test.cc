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

  int base_cpus_ = 0;
  std::mutex mu_;
  std::vector<int> served_on_;
};

TEST_F(NbdCpuFollowTest, SmallRequestsOneAtATimeAreServedOnOneCpu) {
  StartServer();
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
  StartServer();
  auto c = Open("watched");
  ASSERT_NE(c, nullptr);
  OneAtATime(c.get(), CpuFollower::kFollowAfter + 8, 4096);
  ASSERT_EQ(ServedOn().back(), 1);
  // Several requests in the socket at once: no longer a client waiting for each
  // reply. Whichever thread serves the later ones may run on every CPU again.
  for (int round = 0; round < 3; ++round) {
    Forget();
    for (uint64_t h = 1; h <= 16; ++h) {
      ASSERT_TRUE(c->SendRequest(kCmdRead, 0, h, h * 4096, 4096).ok());
    }
    for (int i = 0; i < 16; ++i) {
      auto r = c->ReadReply();
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ(r->error, 0u);
    }
    if (ServedOn().back() == base_cpus_) break;
  }
  EXPECT_EQ(ServedOn().back(), base_cpus_);
  // And one at a time again: followed again after the streak.
  Forget();
  OneAtATime(c.get(), CpuFollower::kFollowAfter + 8, 4096);
  EXPECT_EQ(ServedOn().back(), 1);
}

TEST_F(NbdCpuFollowTest, LargeRequestsAreNotFollowed) {
  StartServer();
  auto c = Open("watched");
  ASSERT_NE(c, nullptr);
  OneAtATime(c.get(), CpuFollower::kFollowAfter + 16, CpuFollower::kMaxSmallBytes + 4096);
  for (int n : ServedOn()) ASSERT_EQ(n, base_cpus_);
}

TEST_F(NbdCpuFollowTest, NothingIsFollowedWhenTurnedOff) {
  NbdServerOptions o;
  o.follow_client_cpu = false;
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
  StartServer();
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

}  // namespace
}  // namespace strata::nbd::test
