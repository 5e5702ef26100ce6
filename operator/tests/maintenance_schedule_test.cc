#include "strata/operator/maintenance_schedule.h"

#include <gtest/gtest.h>

#include "strata/kube/conditions.h"

namespace strata::op {
namespace {

using namespace std::chrono_literals;

kube::WallTime T(const char* text) {
  auto t = kube::ParseTime(text);
  EXPECT_TRUE(t) << text;
  return t.value_or(kube::WallTime{});
}
std::string S(std::optional<kube::WallTime> t) { return t ? kube::FormatTime(*t) : "none"; }

MaintenanceSchedule Make(const char* start, std::optional<std::string> recurrence,
                         kube::Duration duration = 1h) {
  auto s = MaintenanceSchedule::Make(T(start), recurrence, duration);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return *s;
}

TEST(MaintenanceScheduleTest, OnceHasOneOccurrence) {
  auto s = Make("2025-06-01T02:00:00Z", std::nullopt);
  EXPECT_FALSE(s.recurring());
  EXPECT_EQ(S(s.Start(0)), "2025-06-01T02:00:00Z");
  EXPECT_FALSE(s.Start(1));
  EXPECT_EQ(s.FirstEndingAfter(T("2025-06-01T02:30:00Z")), 0);
  EXPECT_FALSE(s.FirstEndingAfter(T("2025-06-01T03:00:00Z")));
  EXPECT_EQ(s.IndexOf(T("2025-06-01T02:00:00Z")), 0);
}

TEST(MaintenanceScheduleTest, DailyAndWeeklyAreFixedUtcSteps) {
  // 2025-03-30 is a DST change in Europe: UTC does not move.
  auto daily = Make("2025-03-29T02:00:00Z", "Daily");
  EXPECT_EQ(S(daily.Start(1)), "2025-03-30T02:00:00Z");
  EXPECT_EQ(S(daily.Start(2)), "2025-03-31T02:00:00Z");
  EXPECT_EQ(S(daily.Start(365)), "2026-03-29T02:00:00Z");
  EXPECT_EQ(daily.FirstStartingAfter(T("2025-03-29T02:00:00Z")), 1) << "strictly after";
  EXPECT_EQ(daily.FirstStartingAfter(T("2025-03-28T00:00:00Z")), 0);
  EXPECT_EQ(daily.FirstStartingAfter(T("2025-04-02T01:59:59Z")), 4);
  // Inside occurrence 4 (02:00-03:00): it has not ended yet.
  EXPECT_EQ(daily.FirstEndingAfter(T("2025-04-02T02:30:00Z")), 4);
  EXPECT_EQ(daily.FirstEndingAfter(T("2025-04-02T03:00:00Z")), 5);
  EXPECT_EQ(daily.IndexOf(T("2025-04-02T02:00:00Z")), 4);
  EXPECT_FALSE(daily.IndexOf(T("2025-04-02T02:00:01Z")));
  EXPECT_EQ(daily.ShortestPeriod(), 24h);

  auto weekly = Make("2025-06-01T02:00:00Z", "Weekly", 4h);
  EXPECT_EQ(S(weekly.Start(1)), "2025-06-08T02:00:00Z");
  EXPECT_EQ(S(weekly.Start(5)), "2025-07-06T02:00:00Z");
  EXPECT_EQ(weekly.FirstStartingAfter(T("2025-06-10T00:00:00Z")), 2);
  EXPECT_EQ(weekly.FirstEndingAfter(T("2025-06-08T05:59:00Z")), 1);
  EXPECT_EQ(weekly.ShortestPeriod(), 7 * 24h);
}

TEST(MaintenanceScheduleTest, MonthlyKeepsTheDayAndClampsToTheMonthsLastDay) {
  auto s = Make("2025-01-31T23:30:00Z", "Monthly");
  EXPECT_EQ(S(s.Start(1)), "2025-02-28T23:30:00Z");
  EXPECT_EQ(S(s.Start(2)), "2025-03-31T23:30:00Z") << "from the anchor, not from Feb 28";
  EXPECT_EQ(S(s.Start(3)), "2025-04-30T23:30:00Z");
  EXPECT_EQ(S(s.Start(11)), "2025-12-31T23:30:00Z");
  EXPECT_EQ(S(s.Start(12)), "2026-01-31T23:30:00Z");
  EXPECT_EQ(S(s.Start(13)), "2026-02-28T23:30:00Z");
  EXPECT_EQ(S(s.Start(37)), "2028-02-29T23:30:00Z") << "leap year";
  EXPECT_EQ(s.FirstStartingAfter(T("2025-02-28T23:30:00Z")), 2);
  EXPECT_EQ(s.FirstStartingAfter(T("2025-02-28T23:29:59Z")), 1);
  EXPECT_EQ(s.FirstStartingAfter(T("2025-03-01T00:00:00Z")), 2);
  EXPECT_EQ(s.FirstStartingAfter(T("2027-06-15T00:00:00Z")), 29);
  EXPECT_EQ(S(s.Start(29)), "2027-06-30T23:30:00Z");
  // The occurrence of Feb 28 23:30 runs into March 1.
  EXPECT_EQ(s.FirstEndingAfter(T("2025-03-01T00:10:00Z")), 1);
  EXPECT_EQ(s.IndexOf(T("2025-04-30T23:30:00Z")), 3);
  EXPECT_EQ(s.ShortestPeriod(), 28 * 24h);

  auto mid = Make("2025-05-15T04:00:00Z", "Monthly");
  EXPECT_EQ(S(mid.Start(9)), "2026-02-15T04:00:00Z");
  EXPECT_EQ(mid.FirstStartingAfter(T("2025-05-01T00:00:00Z")), 0);
}

TEST(MaintenanceScheduleTest, UnknownRecurrenceNamesTheField) {
  auto s = MaintenanceSchedule::Make(T("2025-06-01T02:00:00Z"), "Yearly", 1h);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("spec.schedule.recurrence"), std::string::npos);
}

}  // namespace
}  // namespace strata::op
