#include "strata/kube/leader_election.h"

#include <gtest/gtest.h>

#include <atomic>
#include <initializer_list>
#include <thread>

#include "strata/kube/testing/fake_api_client.h"

namespace strata::kube {
namespace {

using namespace std::chrono_literals;

// Runs one candidate on its own thread against the fake API and the fake clock.
class Candidate {
 public:
  Candidate(ApiClient* api, FakeClock* clock, const std::string& id, bool release_on_stop = true) {
    LeaderElectionConfig c;
    c.lease_name = "op";
    c.identity = id;
    c.release_on_stop = release_on_stop;
    LeaderElector::Callbacks cb;
    cb.on_started_leading = [this](std::stop_token) { started = true; };
    cb.on_stopped_leading = [this] { stopped = true; };
    elector_ = std::make_unique<LeaderElector>(api, c, cb, clock);
    thread_ = std::jthread([this](std::stop_token s) {
      led = elector_->Run(s);
      done = true;
    });
  }
  // Stops the thread without any further API call being required of the test.
  void Stop() {
    thread_.request_stop();
    thread_.join();
  }
  LeaderElector& elector() { return *elector_; }

  std::atomic<bool> started{false}, stopped{false}, led{false}, done{false};

 private:
  std::unique_ptr<LeaderElector> elector_;
  std::jthread thread_;
};

// Real-time wait for another thread to catch up with fake time: polled, with a deadline that
// only a hang reaches.
template <typename Pred>
bool Eventually(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return pred();
}

// Advances fake time in 500 ms steps, in lockstep with the candidates still running
// (FakeClock::AdvanceInLockstep): each acts at the step it is due, however late its thread got a
// CPU.
void Advance(FakeClock& clock, Duration total, std::initializer_list<const Candidate*> candidates) {
  ASSERT_TRUE(clock.AdvanceInLockstep(total, 500ms, [&] {
    size_t running = 0;
    for (const Candidate* c : candidates) running += c->done.load() ? 0 : 1;
    return running;
  })) << "a candidate did not go back to sleep after a step";
}

TEST(LeaderElectionTest, StandbyTakesOverOnlyAfterTheLeaseOfACrashedLeaderExpires) {
  FakeClock clock;
  testing::FakeApiClient api;
  Candidate a(&api, &clock, "a", /*release_on_stop=*/false);
  ASSERT_TRUE(Eventually([&] { return a.elector().IsLeader(); }));
  Candidate b(&api, &clock, "b");
  Advance(clock, 30s, {&a, &b});  // a keeps renewing: b stays out however long it waits
  EXPECT_TRUE(a.elector().IsLeader());
  EXPECT_FALSE(b.elector().IsLeader());
  EXPECT_EQ(b.elector().observed_leader(), "a");

  a.Stop();  // a crash: no release
  // a renewed at most one retry period (2 s) before it stopped: its lease runs until >= 13 s from
  // now.
  Advance(clock, 12s, {&a, &b});
  EXPECT_FALSE(b.elector().IsLeader()) << "the lease (15 s) has not run out yet";
  Advance(clock, 6s, {&a, &b});
  EXPECT_TRUE(Eventually([&] { return b.elector().IsLeader(); }))
      << "b takes over within lease_duration + 1.2 x retry_period";
  auto lease = api.Get(resources::Leases(), "default", "op");
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ((*lease)["spec"]["holderIdentity"], "b");
  EXPECT_EQ((*lease)["spec"]["leaseTransitions"], 1);
  b.Stop();
}

TEST(LeaderElectionTest, ReleaseOnStopHandsOverAtOnce) {
  FakeClock clock;
  testing::FakeApiClient api;
  Candidate a(&api, &clock, "a");
  ASSERT_TRUE(Eventually([&] { return a.elector().IsLeader(); }));
  Candidate b(&api, &clock, "b");
  Advance(clock, 4s, {&a, &b});
  a.Stop();
  EXPECT_TRUE(a.stopped.load());
  Advance(clock, 3s, {&a, &b});
  EXPECT_TRUE(Eventually([&] { return b.elector().IsLeader(); }))
      << "a released lease (duration 1 s) is taken at the next retry";
  b.Stop();
}

TEST(LeaderElectionTest, LeaderThatCannotRenewStopsLeadingAtTheRenewDeadline) {
  FakeClock clock;
  testing::FakeApiClient api;
  Candidate a(&api, &clock, "a");
  ASSERT_TRUE(Eventually([&] { return a.started.load(); }));
  api.SetUnreachable(true);
  Advance(clock, 9s, {&a});
  EXPECT_TRUE(a.elector().IsLeader()) << "still within the renew deadline (10 s)";
  clock.Advance(1s);
  EXPECT_FALSE(a.elector().IsLeader())
      << "IsLeader turns false at the deadline itself, before the renew loop notices";
  Advance(clock, 3s, {&a});
  EXPECT_TRUE(Eventually([&] { return a.done.load(); })) << "Run returns once leadership is lost";
  EXPECT_TRUE(a.stopped.load());
  EXPECT_TRUE(a.led.load());
}

}  // namespace
}  // namespace strata::kube
