#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "strata/kube/events.h"

namespace strata::kube {
namespace {

using namespace std::chrono_literals;

constexpr auto kDeadline = 20s;  // for what must happen; never reached when the code is right

// Records reasons; blocks in Record until Release() (or kDeadline, noted as a timeout).
class GatedRecorder : public EventRecorder {
 public:
  void Record(const Json&, EventType, const std::string& reason, const std::string&) override {
    std::unique_lock l(mu_);
    entered_ = true;
    cv_.notify_all();
    if (!cv_.wait_for(l, kDeadline, [&] { return released_; })) timed_out_ = true;
    reasons_.push_back(reason);
    cv_.notify_all();
  }
  void Release() {
    std::lock_guard g(mu_);
    released_ = true;
    cv_.notify_all();
  }
  bool WaitEntered() {
    std::unique_lock l(mu_);
    return cv_.wait_for(l, kDeadline, [&] { return entered_; });
  }
  // The reasons once `n` were recorded (what there is at kDeadline).
  std::vector<std::string> WaitFor(size_t n) {
    std::unique_lock l(mu_);
    cv_.wait_for(l, kDeadline, [&] { return reasons_.size() >= n; });
    return reasons_;
  }
  bool timed_out() {
    std::lock_guard g(mu_);
    return timed_out_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false, released_ = false, timed_out_ = false;
  std::vector<std::string> reasons_;
};

const Json kObject = {{"kind", "MaintenanceWindow"}, {"metadata", {{"name", "mw"}}}};

TEST(QueuedEventRecorderTest, RecordReturnsWhileTheTargetIsBusyAndEventsArriveInOrder) {
  GatedRecorder target;
  QueuedEventRecorder queued(&target);
  queued.Record(kObject, EventType::kNormal, "First", "");
  ASSERT_TRUE(target.WaitEntered());
  // The target holds the first Event; these must not wait for it.
  queued.Record(kObject, EventType::kNormal, "Second", "");
  queued.Record(kObject, EventType::kWarning, "Third", "");
  target.Release();
  EXPECT_EQ(target.WaitFor(3), (std::vector<std::string>{"First", "Second", "Third"}));
  EXPECT_FALSE(target.timed_out()) << "Record waited for the target's call";
  EXPECT_EQ(queued.dropped(), 0u);
}

TEST(QueuedEventRecorderTest, AFullQueueDropsAndCountsInsteadOfWaiting) {
  GatedRecorder target;
  {
    QueuedEventRecorder queued(&target, /*capacity=*/2);
    queued.Record(kObject, EventType::kNormal, "InFlight", "");
    ASSERT_TRUE(target.WaitEntered());
    for (const char* r : {"Q1", "Q2", "Drop1", "Drop2"}) {
      queued.Record(kObject, EventType::kNormal, r, "");
    }
    EXPECT_EQ(queued.dropped(), 2u);
    target.Release();
    EXPECT_EQ(target.WaitFor(3), (std::vector<std::string>{"InFlight", "Q1", "Q2"}));
  }
  EXPECT_FALSE(target.timed_out());
}

TEST(QueuedEventRecorderTest, StoppingDeliversWhatIsQueued) {
  GatedRecorder target;
  target.Release();
  {
    QueuedEventRecorder queued(&target);
    for (const char* r : {"A", "B", "C"}) queued.Record(kObject, EventType::kNormal, r, "");
  }  // the destructor drains (within drain_on_stop)
  EXPECT_EQ(target.WaitFor(3), (std::vector<std::string>{"A", "B", "C"}));
}

}  // namespace
}  // namespace strata::kube
