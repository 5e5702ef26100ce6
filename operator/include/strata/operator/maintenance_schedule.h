#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "strata/common/result.h"
#include "strata/kube/clock.h"

namespace strata::op {

// The occurrences of a MaintenanceWindow's spec.schedule (issue #11). All times are UTC: a
// window at 02:00 stays at 02:00 UTC all year (no daylight-saving shift; a local 02:00 moves by
// an hour against it twice a year).
//
// Occurrence k (k = 0, 1, ...) of a schedule starting at `anchor` (spec.schedule.start):
//   once     only k = 0;
//   Daily    anchor + k * 24h;
//   Weekly   anchor + k * 7 * 24h;
//   Monthly  anchor's time of day on anchor's day of month, k months later, clamped to the last
//            day of a shorter month. Each occurrence is computed from the anchor, not from the
//            previous one: a window anchored on Jan 31 runs Feb 28 (29 in a leap year), Mar 31,
//            Apr 30, May 31.
// Pure functions; thread-safe.
class MaintenanceSchedule {
 public:
  enum class Recurrence { kOnce, kDaily, kWeekly, kMonthly };

  // `recurrence`: absent (once), "Daily", "Weekly" or "Monthly"; anything else is
  // INVALID_ARGUMENT naming spec.schedule.recurrence.
  static Result<MaintenanceSchedule> Make(kube::WallTime anchor,
                                          const std::optional<std::string>& recurrence,
                                          kube::Duration duration);

  bool recurring() const { return recurrence_ != Recurrence::kOnce; }
  kube::Duration duration() const { return duration_; }

  // The start of occurrence k; nullopt past the last one (k > 0 for a one-off window).
  std::optional<kube::WallTime> Start(int64_t k) const;
  kube::WallTime End(kube::WallTime start) const;

  // The index of the first occurrence starting after `t` (strictly); nullopt if none.
  std::optional<int64_t> FirstStartingAfter(kube::WallTime t) const;
  // The index of the first occurrence that has not ended at `t` (its start + duration > t).
  std::optional<int64_t> FirstEndingAfter(kube::WallTime t) const;
  // The index of the occurrence that starts exactly at `start`; nullopt when `start` is none of
  // them (the schedule changed since it was computed).
  std::optional<int64_t> IndexOf(kube::WallTime start) const;

  // The shortest time between two occurrence starts: 24h, 7 days, 28 days (February); max for a
  // one-off window. A recurring window's leadTime + duration must fit in it, so that two
  // occurrences never overlap.
  kube::Duration ShortestPeriod() const;
  static const char* Name(Recurrence r);
  Recurrence recurrence() const { return recurrence_; }

 private:
  MaintenanceSchedule(kube::WallTime anchor, Recurrence recurrence, kube::Duration duration)
      : anchor_(anchor), recurrence_(recurrence), duration_(duration) {}

  kube::WallTime anchor_;
  Recurrence recurrence_;
  kube::Duration duration_;
};

}  // namespace strata::op
