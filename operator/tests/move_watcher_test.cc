#include "strata/operator/move_watcher.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>

#include "strata/device/testing/fake_client.h"

namespace strata::op {
namespace {

namespace pb = storage::v1;
using namespace std::chrono_literals;

constexpr auto kDeadline = 20s;  // for what must happen; never reached when the code is right

// The keys notified, and a wait for them.
class Requeues {
 public:
  MoveWatcher::Notify Callback() {
    return [this](const std::string& key) {
      std::lock_guard g(mu_);
      ++count_[key];
      cv_.notify_all();
    };
  }
  // True once every key in `keys` was notified at least once (false at kDeadline).
  bool WaitFor(const std::vector<std::string>& keys) {
    std::unique_lock g(mu_);
    return cv_.wait_for(g, kDeadline, [&] {
      for (const auto& k : keys) {
        if (!count_.contains(k)) return false;
      }
      return true;
    });
  }
  // True once `key` was notified `n` times (false at kDeadline).
  bool WaitForCount(const std::string& key, int n) {
    std::unique_lock g(mu_);
    return cv_.wait_for(g, kDeadline, [&] { return count_[key] >= n; });
  }
  std::map<std::string, int> Counts() {
    std::lock_guard g(mu_);
    return count_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, int> count_;
};

class MoveWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pb::Lun l;
    l.set_name("l1");
    l.set_size_bytes(1 << 20);
    device()->PutLun(l);
    pb::MigrateLunRequest req;
    req.set_name("l1");
    req.set_to_device("b:1");
    ASSERT_TRUE(device()->MigrateLun(req).ok());
  }
  std::shared_ptr<device::testing::FakeClient> device() { return fleet_.Get("a:1"); }

  device::testing::FakeFleet fleet_;
  Requeues requeues_;
};

TEST_F(MoveWatcherTest, AMoveThatEndsRequeuesEveryKeyThatAskedOnce) {
  MoveWatcher watcher(fleet_.cache(), requeues_.Callback(), {.wait = 60s});
  watcher.Watch("a:1", "l1", "w1");
  watcher.Watch("a:1", "l1", "w1");
  watcher.Watch("a:1", "l1", "w2");
  EXPECT_EQ(watcher.watching(), 1u) << "one long poll per move, whoever asks";
  device()->FinishMigration("l1");
  ASSERT_TRUE(requeues_.WaitFor({"w1", "w2"}))
      << "the move ended inside a 60 s long poll: the watch must see it then";
  EXPECT_EQ(requeues_.Counts(), (std::map<std::string, int>{{"w1", 1}, {"w2", 1}}));
  EXPECT_EQ(watcher.watching(), 0u);
  EXPECT_GE(device()->LongPolls(), 1);
}

TEST_F(MoveWatcherTest, AMoveEndedAlreadyRequeuesAtOnce) {
  device()->FinishMigration("l1");
  MoveWatcher watcher(fleet_.cache(), requeues_.Callback(), {.wait = 60s});
  watcher.Watch("a:1", "l1", "w");
  ASSERT_TRUE(requeues_.WaitFor({"w"}));
}

TEST_F(MoveWatcherTest, AnUnreachableDeviceOrAGoneLunEndsTheWatchWithARequeue) {
  MoveWatcher watcher(fleet_.cache(), requeues_.Callback(), {.wait = 60s});
  watcher.Watch("a:1", "gone", "w-gone");
  ASSERT_TRUE(requeues_.WaitFor({"w-gone"})) << "NOT_FOUND: the controller's poll takes over";
  device()->unreachable = true;
  watcher.Watch("a:1", "l1", "w-down");
  ASSERT_TRUE(requeues_.WaitFor({"w-down"})) << "UNAVAILABLE: the same";
}

TEST_F(MoveWatcherTest, AWatchOfAMoveThatEndsLaterStartsAgain) {
  MoveWatcher watcher(fleet_.cache(), requeues_.Callback(), {.wait = 60s});
  watcher.Watch("a:1", "l1", "w");
  device()->FinishMigration("l1");
  ASSERT_TRUE(requeues_.WaitFor({"w"}));
  // The next move of the same LUN (e.g. the move back): a new watch, a new requeue.
  pb::MigrateLunRequest req;
  req.set_name("l1");
  req.set_to_device("c:1");
  ASSERT_TRUE(device()->MigrateLun(req).ok());
  watcher.Watch("a:1", "l1", "w");
  EXPECT_EQ(watcher.watching(), 1u);
  device()->FinishMigration("l1");
  ASSERT_TRUE(requeues_.WaitForCount("w", 2));
}

// A device older than GetMigrationRequest.wait_ms answers at once: polled once a wait, not spun
// on. (A lower bound on time only: a slow machine makes the gaps longer, never shorter.)
class AnswersAtOnce : public device::testing::FakeClient {
 public:
  using FakeClient::FakeClient;
  Result<pb::Migration> WaitMigration(const std::string& lun, std::chrono::milliseconds) override {
    std::lock_guard g(mu_);
    times_.push_back(std::chrono::steady_clock::now());
    cv_.notify_all();
    return GetMigration(lun);
  }
  // The times of the first `n` calls (empty at kDeadline).
  std::vector<std::chrono::steady_clock::time_point> First(size_t n) {
    std::unique_lock g(mu_);
    if (!cv_.wait_for(g, kDeadline, [&] { return times_.size() >= n; })) return {};
    return {times_.begin(), times_.begin() + n};
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::chrono::steady_clock::time_point> times_;
};

TEST(MoveWatcherPollTest, ADeviceWithoutLongPollsIsAskedOnceAWaitNotSpunOn) {
  auto device = std::make_shared<AnswersAtOnce>("old:1");
  pb::Lun l;
  l.set_name("l1");
  device->PutLun(l);
  pb::MigrateLunRequest req;
  req.set_name("l1");
  req.set_to_device("b:1");
  ASSERT_TRUE(device->MigrateLun(req).ok());
  device::ClientCache cache([device](const std::string&) { return device; });
  Requeues requeues;
  MoveWatcher watcher(&cache, requeues.Callback(), {.wait = 100ms});
  watcher.Watch("old:1", "l1", "w");
  auto times = device->First(4);
  ASSERT_EQ(times.size(), 4u);
  EXPECT_GE(times[3] - times[0], 300ms) << "3 gaps of at least one wait each";
  device->FinishMigration("l1");
  ASSERT_TRUE(requeues.WaitFor({"w"})) << "and the end is still seen, at the next poll";
}

TEST_F(MoveWatcherTest, StoppingEndsEveryWatchWithoutARequeue) {
  {
    MoveWatcher watcher(fleet_.cache(), requeues_.Callback(), {.wait = 200ms});
    watcher.Watch("a:1", "l1", "w");
    EXPECT_EQ(watcher.watching(), 1u);
  }  // joins: the move still runs
  EXPECT_TRUE(requeues_.Counts().empty()) << "a stop is not the move's end";
}

}  // namespace
}  // namespace strata::op
