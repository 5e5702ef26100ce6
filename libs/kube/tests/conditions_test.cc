#include "strata/kube/conditions.h"

#include <gtest/gtest.h>

namespace strata::kube {
namespace {

using std::chrono::seconds;

TEST(ConditionsTest, TransitionTimeMovesOnlyWhenStatusChanges) {
  FakeClock clock;
  Json status = Json::object();
  EXPECT_TRUE(
      SetCondition(status, {"Ready", "True", "DeviceOnline", "ok", 1, ""}, clock.WallNow()));
  const std::string t0 = FindCondition(status, "Ready")->last_transition_time;
  EXPECT_EQ(t0, "2025-01-01T00:00:00Z");

  clock.Advance(seconds(30));
  EXPECT_FALSE(
      SetCondition(status, {"Ready", "True", "DeviceOnline", "ok", 1, ""}, clock.WallNow()))
      << "setting the same condition again is not a change";
  EXPECT_TRUE(
      SetCondition(status, {"Ready", "True", "DeviceOnline", "3 tiers", 2, ""}, clock.WallNow()));
  EXPECT_EQ(FindCondition(status, "Ready")->last_transition_time, t0)
      << "message and generation changes keep the transition time";
  EXPECT_EQ(FindCondition(status, "Ready")->observed_generation, 2);

  EXPECT_TRUE(SetCondition(status, {"Ready", "False", "DeviceUnreachable", "down", 2, ""},
                           clock.WallNow()));
  EXPECT_EQ(FindCondition(status, "Ready")->last_transition_time, "2025-01-01T00:00:30Z");
  EXPECT_FALSE(IsConditionTrue(status, "Ready"));
  EXPECT_EQ(status["conditions"].size(), 1u);
}

TEST(ConditionsTest, SeveralTypesAndRemoval) {
  FakeClock clock;
  Json status;
  SetCondition(status, {"Ready", "True", "A", "", 1, ""}, clock.WallNow());
  SetCondition(status, {"Degraded", "False", "B", "", 1, ""}, clock.WallNow());
  EXPECT_TRUE(IsConditionTrue(status, "Ready"));
  EXPECT_FALSE(IsConditionTrue(status, "Degraded"));
  EXPECT_FALSE(FindCondition(status, "Unreachable"));
  EXPECT_TRUE(RemoveCondition(status, "Ready"));
  EXPECT_FALSE(RemoveCondition(status, "Ready"));
  EXPECT_EQ(status["conditions"].size(), 1u);
}

TEST(ConditionsTest, Finalizers) {
  Json obj = {{"metadata", {{"name", "a"}}}};
  EXPECT_FALSE(HasFinalizer(obj, "strata.io/cleanup"));
  EXPECT_TRUE(AddFinalizer(obj, "strata.io/cleanup"));
  EXPECT_FALSE(AddFinalizer(obj, "strata.io/cleanup"));
  EXPECT_TRUE(AddFinalizer(obj, "other"));
  EXPECT_TRUE(HasFinalizer(obj, "strata.io/cleanup"));
  EXPECT_TRUE(RemoveFinalizer(obj, "strata.io/cleanup"));
  EXPECT_FALSE(RemoveFinalizer(obj, "strata.io/cleanup"));
  EXPECT_EQ(obj["metadata"]["finalizers"], Json::array({"other"}));
}

TEST(ConditionsTest, TimeFormatsRoundTrip) {
  FakeClock clock;
  clock.Advance(std::chrono::microseconds(1500123));
  EXPECT_EQ(FormatMicroTime(clock.WallNow()), "2025-01-01T00:00:01.500123Z");
  EXPECT_EQ(ParseTime("2025-01-01T00:00:01.500123Z"), clock.WallNow());
  EXPECT_EQ(ParseTime("2025-01-01T00:00:01Z"), clock.WallNow() - std::chrono::microseconds(500123));
  EXPECT_FALSE(ParseTime("yesterday"));
}

}  // namespace
}  // namespace strata::kube
