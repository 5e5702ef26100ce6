#include "strata/operator/maintenance_schedule.h"

#include <chrono>
#include <limits>

namespace strata::op {
namespace {

using namespace std::chrono;

constexpr kube::Duration kDay = hours(24);

kube::Duration Period(MaintenanceSchedule::Recurrence r) {
  switch (r) {
    case MaintenanceSchedule::Recurrence::kDaily:
      return kDay;
    case MaintenanceSchedule::Recurrence::kWeekly:
      return 7 * kDay;
    default:
      return kube::Duration::max();
  }
}

}  // namespace

Result<MaintenanceSchedule> MaintenanceSchedule::Make(kube::WallTime anchor,
                                                      const std::optional<std::string>& recurrence,
                                                      kube::Duration duration) {
  Recurrence r = Recurrence::kOnce;
  if (recurrence) {
    if (*recurrence == "Daily") {
      r = Recurrence::kDaily;
    } else if (*recurrence == "Weekly") {
      r = Recurrence::kWeekly;
    } else if (*recurrence == "Monthly") {
      r = Recurrence::kMonthly;
    } else {
      return InvalidArgumentError("spec.schedule.recurrence: \"" + *recurrence +
                                  "\" is not one of Daily, Weekly, Monthly");
    }
  }
  return MaintenanceSchedule(anchor, r, duration);
}

const char* MaintenanceSchedule::Name(Recurrence r) {
  switch (r) {
    case Recurrence::kDaily:
      return "Daily";
    case Recurrence::kWeekly:
      return "Weekly";
    case Recurrence::kMonthly:
      return "Monthly";
    case Recurrence::kOnce:
      break;
  }
  return "once";
}

std::optional<kube::WallTime> MaintenanceSchedule::Start(int64_t k) const {
  if (k < 0) return std::nullopt;
  switch (recurrence_) {
    case Recurrence::kOnce:
      if (k > 0) return std::nullopt;
      return anchor_;
    case Recurrence::kDaily:
    case Recurrence::kWeekly:
      return anchor_ + duration_cast<kube::WallTime::duration>(Period(recurrence_) * k);
    case Recurrence::kMonthly: {
      const sys_days anchor_day = floor<days>(anchor_);
      const auto time_of_day = anchor_ - anchor_day;
      const year_month_day ymd{anchor_day};
      const year_month ym = year_month{ymd.year(), ymd.month()} + months{k};
      const day last = year_month_day_last{ym.year(), month_day_last{ym.month()}}.day();
      const day d = std::min(ymd.day(), last);
      return sys_days{year_month_day{ym.year(), ym.month(), d}} + time_of_day;
    }
  }
  return std::nullopt;
}

kube::WallTime MaintenanceSchedule::End(kube::WallTime start) const {
  return start + duration_cast<kube::WallTime::duration>(duration_);
}

std::optional<int64_t> MaintenanceSchedule::FirstStartingAfter(kube::WallTime t) const {
  if (t < anchor_) return 0;
  int64_t k = 0;
  switch (recurrence_) {
    case Recurrence::kOnce:
      return std::nullopt;
    case Recurrence::kDaily:
    case Recurrence::kWeekly:
      k = (t - anchor_) / Period(recurrence_);
      break;
    case Recurrence::kMonthly: {
      // Whole months between the two dates, then step to the exact one (clamping moves an
      // occurrence by at most three days, so one or two steps either way settle it).
      const year_month_day a{floor<days>(anchor_)};
      const year_month_day b{floor<days>(t)};
      k = (static_cast<int>(b.year()) - static_cast<int>(a.year())) * 12 +
          (static_cast<int>(static_cast<unsigned>(b.month())) -
           static_cast<int>(static_cast<unsigned>(a.month())));
      k = std::max<int64_t>(k - 1, 0);
      break;
    }
  }
  while (k > 0 && *Start(k) > t) --k;
  while (*Start(k) <= t) ++k;
  return k;
}

std::optional<int64_t> MaintenanceSchedule::FirstEndingAfter(kube::WallTime t) const {
  if (recurrence_ == Recurrence::kOnce) {
    if (End(anchor_) > t) return 0;
    return std::nullopt;
  }
  // Occurrences do not overlap (ShortestPeriod), so the one ending after t is the last one
  // starting at or before t, or the next.
  int64_t k = *FirstStartingAfter(t);
  if (k > 0 && End(*Start(k - 1)) > t) return k - 1;
  return k;
}

std::optional<int64_t> MaintenanceSchedule::IndexOf(kube::WallTime start) const {
  if (start < anchor_) return std::nullopt;
  auto next = FirstStartingAfter(start);
  int64_t k = next ? *next - 1 : 0;
  if (k >= 0 && Start(k) == start) return k;
  return std::nullopt;
}

kube::Duration MaintenanceSchedule::ShortestPeriod() const {
  if (recurrence_ == Recurrence::kMonthly) return 28 * kDay;
  return Period(recurrence_);
}

}  // namespace strata::op
