#include "strata/operator/maintenance_window_reconciler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>

#include "strata/controller/finalizer.h"
#include "strata/controller/status.h"
#include "strata/device/tier.h"
#include "strata/kube/conditions.h"
#include "strata/kube/errors.h"
#include "strata/kube/labels.h"
#include "strata/operator/maintenance_schedule.h"

namespace strata::op {

using api::v1alpha1::MaintenanceWindow;
using api::v1alpha1::MaintenanceWindowFromJson;
using ctrl::ReconcileResult;
using kube::Json;
namespace pb = storage::v1;

namespace {

std::string Size(uint64_t bytes) {
  char buf[32];
  if (bytes >= (1ull << 30)) {
    std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / (1ull << 30));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1ull << 20));
  }
  return buf;
}

// status.history keeps this many occurrences of a recurring window (newest first).
constexpr size_t kMaxHistory = 10;

constexpr const char* kPhases[] = {"Pending",   "Draining", "InMaintenance", "Restoring",
                                   "Completed", "Failed",   "Aborted"};

bool Terminal(const std::string& phase) {
  return phase == "Completed" || phase == "Failed" || phase == "Aborted";
}

bool SelectorMatches(const std::optional<api::v1alpha1::LabelSelector>& selector,
                     const std::map<std::string, std::string>& labels) {
  if (!selector) return true;
  Json raw = Json::object();
  raw["matchLabels"] = selector->match_labels;
  Json exprs = Json::array();
  for (const auto& e : selector->match_expressions) {
    exprs.push_back({{"key", e.key}, {"operator", e.operator_}, {"values", e.values}});
  }
  raw["matchExpressions"] = exprs;
  auto parsed = kube::LabelSelectorFromJson(raw, "selector");
  return parsed.ok() && parsed->Matches(labels);
}

int64_t Int(const Json& v, const char* field) {
  return v.contains(field) && v[field].is_number() ? v[field].get<int64_t>() : 0;
}

// status.progress: LUNs done of all, and bytes copied of all in the current direction.
std::string Progress(const Json& volumes, bool restoring) {
  int done = 0, total = 0;
  int64_t copied = 0, bytes = 0;
  for (const auto& v : volumes) {
    const std::string phase = v.value("phase", "");
    if (phase == "Cancelled") continue;
    ++total;
    const bool finished =
        restoring ? phase == "Restored" : (phase == "Moved" || phase == "Restored");
    if (finished) ++done;
    const int64_t size = Int(v, "bytesTotal");
    bytes += size;
    copied += finished ? size : std::min(Int(v, "bytesCopied"), size);
  }
  std::string out = std::to_string(done) + "/" + std::to_string(total) + " LUNs";
  if (bytes > 0) out += ", " + std::to_string(copied * 100 / bytes) + "%";
  return out;
}

void SetProgress(Json& v, const pb::Migration& m) {
  v["bytesCopied"] = static_cast<int64_t>(m.bytes_copied());
  if (m.bytes_total() > 0) v["bytesTotal"] = static_cast<int64_t>(m.bytes_total());
  const double rate = m.bytes_per_second();
  v["rate"] = rate > 0 ? static_cast<int64_t>(rate) : 0;
  if (rate > 0 && m.bytes_total() >= m.bytes_copied()) {
    v["eta"] =
        std::to_string(static_cast<int64_t>((m.bytes_total() - m.bytes_copied()) / rate)) + "s";
  } else {
    v.erase("eta");
  }
}

void Finished(Json& v) {
  v["bytesCopied"] = Int(v, "bytesTotal");
  v["rate"] = 0;
  v.erase("eta");
  v.erase("message");
}

// One pass's reads of the LUNs it follows, by device. A drain follows every LUN of its devices:
// a GetLun each would cost a round trip per LUN per pass (a device of 500 LUNs, 500 calls at
// every move's end). So a device where the pass follows more than kListAbove LUNs is asked once,
// ListLuns (paged by 256), and the rest from that; fewer are asked one GetLun each (a target
// holding many other LUNs is not listed whole for two). Expect() every lookup first, then Get().
class LunLookup {
 public:
  static constexpr int kListAbove = 4;
  explicit LunLookup(device::ClientCache* devices) : devices_(devices) {}

  void Expect(const std::string& endpoint) { ++expected_[endpoint]; }

  // The LUN as the device reports it now; NOT_FOUND when the device does not have it.
  Result<pb::Lun> Get(const std::string& endpoint, const std::string& lun) {
    if (expected_[endpoint] <= kListAbove) return devices_->Get(endpoint)->GetLun(lun);
    auto it = listed_.find(endpoint);
    if (it == listed_.end()) {
      auto all = devices_->Get(endpoint)->ListLuns();
      Listed l;
      if (all.ok()) {
        for (auto& x : *all) l.luns.emplace(x.name(), std::move(x));
      } else {
        l.error = all.status();
      }
      it = listed_.emplace(endpoint, std::move(l)).first;
    }
    if (!it->second.error.ok()) return it->second.error;
    auto f = it->second.luns.find(lun);
    if (f == it->second.luns.end()) {
      return NotFoundError("device " + endpoint + ": LUN " + lun + " not found");
    }
    return f->second;
  }

 private:
  struct Listed {
    Status error;
    std::map<std::string, pb::Lun> luns;
  };
  device::ClientCache* const devices_;
  std::map<std::string, int> expected_;
  std::map<std::string, Listed> listed_;
};

}  // namespace

MaintenanceWindowReconciler::MaintenanceWindowReconciler(kube::ApiClient* client, Lookup lookup,
                                                         Inventory inventory,
                                                         device::ClientCache* devices,
                                                         kube::EventRecorder* events,
                                                         Options options, kube::Clock* clock)
    : client_(client),
      lookup_(std::move(lookup)),
      inventory_(std::move(inventory)),
      devices_(devices),
      events_(events),
      options_(options),
      clock_(clock) {
  if (!options_.registry) return;
  // Registry::InsertBehavior::Merge (the default): a second reconciler on one registry shares
  // the families.
  luns_draining_ = &prometheus::BuildGauge()
                        .Name("strata_maintenance_luns_draining")
                        .Help("LUN moves of a MaintenanceWindow in flight (out or back).")
                        .Register(*options_.registry);
  bytes_left_ = &prometheus::BuildGauge()
                     .Name("strata_maintenance_bytes_left")
                     .Help("Bytes a MaintenanceWindow's plan has still to copy.")
                     .Register(*options_.registry);
  phase_ = &prometheus::BuildGauge()
                .Name("strata_maintenance_window_phase")
                .Help("1 for a MaintenanceWindow's current phase, 0 for the others.")
                .Register(*options_.registry);
}

void MaintenanceWindowReconciler::Publish(const std::string& window, const Json& status) {
  if (!phase_) return;
  int64_t in_flight = 0, left = 0;
  const std::string current = status.value("phase", "Pending");
  if (status.contains("volumes") && status["volumes"].is_array()) {
    for (const auto& v : status["volumes"]) {
      const std::string vp = v.value("phase", "");
      if (vp == "Moving" || vp == "Restoring") ++in_flight;
      if (vp == "Cancelled" || vp == "Failed") continue;
      // While restoring, a LUN still on its target has its whole move back ahead of it.
      const int64_t copied = current == "Restoring" && vp == "Moved" ? 0 : Int(v, "bytesCopied");
      left += std::max<int64_t>(0, Int(v, "bytesTotal") - copied);
    }
  }
  luns_draining_->Add({{"window", window}}).Set(static_cast<double>(in_flight));
  bytes_left_->Add({{"window", window}}).Set(static_cast<double>(left));
  for (const char* p : kPhases) {
    phase_->Add({{"window", window}, {"phase", p}}).Set(current == p ? 1 : 0);
  }
}

void MaintenanceWindowReconciler::Unpublish(const std::string& window) {
  if (!phase_) return;
  luns_draining_->Remove(&luns_draining_->Add({{"window", window}}));
  bytes_left_->Remove(&bytes_left_->Add({{"window", window}}));
  for (const char* p : kPhases) phase_->Remove(&phase_->Add({{"window", window}, {"phase", p}}));
}

std::vector<std::string> MaintenanceWindowReconciler::WindowsFor(const kube::Store& windows,
                                                                 const Json& device) {
  std::vector<std::string> keys;
  const Json& meta = device.value("metadata", Json::object());
  const std::string name = meta.value("name", "");
  std::map<std::string, std::string> labels;
  if (meta.contains("labels") && meta["labels"].is_object()) {
    for (const auto& [k, v] : meta["labels"].items()) {
      if (v.is_string()) labels[k] = v.get<std::string>();
    }
  }
  for (const auto& object : windows.List()) {
    auto w = MaintenanceWindowFromJson(object);
    if (!w.ok()) continue;
    bool ours = SelectorMatches(w->spec.device_selector, labels);
    for (const auto& v : w->status.volumes) ours = ours || v.to_device == name;
    if (ours) keys.push_back(w->metadata.name);
  }
  return keys;
}

Result<std::vector<MaintenanceWindowReconciler::Placement>> MaintenanceWindowReconciler::Plan(
    const InventorySnapshot& snapshot, const MaintenanceWindow& window,
    const std::set<std::string>& selected, const std::vector<Placement>& luns,
    std::map<std::pair<std::string, std::string>, uint64_t> reserved) {
  const auto& spec = window.spec;
  auto listed = [](const std::vector<std::string>& allowed, const std::string& value) {
    return allowed.empty() || std::find(allowed.begin(), allowed.end(), value) != allowed.end();
  };
  std::vector<const DeviceView*> targets;
  for (const auto& [name, d] : snapshot.devices) {
    if (selected.contains(name) || !d.AcceptsVolumes()) continue;
    if (!SelectorMatches(spec.drain.target_device_selector, d.labels)) continue;
    if (!listed(spec.allowed_regions, d.region) ||
        !listed(spec.allowed_jurisdictions, d.jurisdiction)) {
      continue;
    }
    targets.push_back(&d);
  }
  std::vector<Placement> order = luns;
  std::sort(order.begin(), order.end(), [](const Placement& a, const Placement& b) {
    return a.size_bytes != b.size_bytes ? a.size_bytes > b.size_bytes : a.lun < b.lun;
  });
  auto free = [&](const DeviceView* d, const std::string& tier) -> uint64_t {
    const uint64_t f = d->FreeBytes(tier);
    const uint64_t r = reserved[{d->name, tier}];
    return f > r ? f - r : 0;
  };
  std::vector<Placement> placed;
  std::string unplaced;
  uint64_t short_bytes = 0;
  int short_count = 0;
  for (auto p : order) {
    const DeviceView* best = nullptr;
    for (const DeviceView* d : targets) {
      if (!best || free(d, p.tier) > free(best, p.tier)) best = d;
    }
    if (!best || free(best, p.tier) < p.size_bytes) {
      ++short_count;
      short_bytes += p.size_bytes - (best ? free(best, p.tier) : 0);
      unplaced += (unplaced.empty() ? "" : ", ") + p.lun + " (" + Size(p.size_bytes) + " " +
                  p.tier + " on " + p.from + ")";
      continue;
    }
    reserved[{best->name, p.tier}] += p.size_bytes;
    p.to = best->name;
    placed.push_back(std::move(p));
  }
  if (short_count == 0) return placed;
  std::string room;
  for (const DeviceView* d : targets) {
    std::string tiers;
    for (const auto& t : d->tiers) {
      tiers +=
          (tiers.empty() ? "" : ", ") + t.class_ + " " + Size(d->FreeBytes(t.class_)) + " free";
    }
    room += (room.empty() ? "" : "; ") + d->name + " (" + tiers + ")";
  }
  return FailedPreconditionError(
      std::to_string(short_count) + " of " + std::to_string(order.size()) +
      " LUNs fit on no target device, short by " + Size(short_bytes) + ": " + unplaced +
      (targets.empty() ? "; no eligible target (Online, not selected, matching "
                         "drain.targetDeviceSelector, allowedRegions, allowedJurisdictions)"
                       : "; targets: " + room));
}

Result<ReconcileResult> MaintenanceWindowReconciler::Reconcile(const std::string& key) {
  std::optional<Json> cached = lookup_(key);
  if (!cached) {
    Unpublish(kube::SplitKey(key).second);
    return ReconcileResult{};
  }
  auto parsed = MaintenanceWindowFromJson(*cached);
  if (!parsed.ok()) {
    // Nothing we did can be read back from an object that does not parse: report it, and let a
    // deletion through (cleanup has nothing to go on).
    return ctrl::Finalize(
        *client_, kube::resources::MaintenanceWindows(), *cached, kFinalizer,
        [&](const Json& object) -> Result<ReconcileResult> {
          STRATA_RETURN_IF_ERROR(
              ctrl::ReportInvalidObject(*client_, *events_, kube::resources::MaintenanceWindows(),
                                        object, parsed.status(), clock_->WallNow()));
          return ReconcileResult{};
        },
        [](const Json&) -> Result<ReconcileResult> { return ReconcileResult{}; });
  }
  return ctrl::Finalize(
      *client_, kube::resources::MaintenanceWindows(), *cached, kFinalizer,
      [&](const Json& object) { return Step(object, /*deleting=*/false); },
      [&](const Json& object) { return Step(object, /*deleting=*/true); });
}

Result<ReconcileResult> MaintenanceWindowReconciler::Step(const Json& object, bool deleting) {
  STRATA_ASSIGN_OR_RETURN(MaintenanceWindow w, MaintenanceWindowFromJson(object));
  const auto& spec = w.spec;
  const auto& meta = w.metadata;
  const int64_t generation = meta.generation.value_or(0);
  const Json old_status =
      object.contains("status") && object["status"].is_object() ? object["status"] : Json::object();
  Json status = old_status;
  std::string phase = status.value("phase", "Pending");
  Publish(meta.name, old_status);
  // A recurring window is never Completed or Failed for long: the occurrence ends and the window
  // waits for the next (a window in such a phase was left by an operator without recurrence).
  const bool recurring_spec = spec.schedule.recurrence.has_value();
  if (Terminal(phase) && (!recurring_spec || phase == "Aborted")) return ReconcileResult{};

  const auto now = clock_->WallNow();
  const ReconcileResult poll{options_.poll};
  const bool stop = deleting || spec.abort;
  const int64_t max_moves = spec.drain.max_concurrent_migrations;
  auto event = [&](kube::EventType type, const std::string& reason, const std::string& msg) {
    events_->Record(object, type, reason, msg);
  };
  // A move in flight: requeued the moment it ends (Options::watch_move).
  const std::string window_key = kube::ObjectKey(object);
  auto watch = [&](const std::string& source, const std::string& lun) {
    if (options_.watch_move) options_.watch_move(source, lun, window_key);
  };
  auto ready = [&](bool value, const std::string& reason, const std::string& msg) {
    kube::SetCondition(status, {"Ready", value ? "True" : "False", reason, msg, generation, ""},
                       now);
  };
  auto write = [&]() -> Result<bool> {
    status["observedGeneration"] = generation;
    auto written = ctrl::WriteStatus(*client_, kube::resources::MaintenanceWindows(), object,
                                     [&](const Json&) -> Result<Json> { return status; });
    if (!written.ok()) return written.status();
    if (written->gone) {
      Unpublish(meta.name);
    } else {
      Publish(meta.name, status);
    }
    const std::string before = written->replaced.value("phase", "");
    const std::string after = status.value("phase", "");
    if (written->changed && before != after) {
      event(after == "Failed" ? kube::EventType::kWarning : kube::EventType::kNormal,
            "PhaseChanged", "phase " + (before.empty() ? "(none)" : before) + " -> " + after);
    }
    return !written->gone;
  };

  auto start = kube::ParseTime(spec.schedule.start);
  auto duration = api::v1alpha1::ParseDuration(spec.schedule.duration);
  auto lead = api::v1alpha1::ParseDuration(spec.drain.lead_time);
  if (!start || !duration.ok() || !lead.ok()) {
    STRATA_RETURN_IF_ERROR(ctrl::ReportInvalidObject(
        *client_, *events_, kube::resources::MaintenanceWindows(), object,
        InvalidArgumentError("spec.schedule.start must be an RFC 3339 time in UTC (e.g. "
                             "2025-06-01T02:00:00Z)"),
        now));
    return ReconcileResult{};
  }
  auto schedule = MaintenanceSchedule::Make(*start, spec.schedule.recurrence, *duration);
  if (schedule.ok() && schedule->recurring() && *lead + *duration >= schedule->ShortestPeriod()) {
    schedule = InvalidArgumentError(
        "spec.schedule.duration (" + spec.schedule.duration + ") plus spec.drain.leadTime (" +
        spec.drain.lead_time + ") must be shorter than the " +
        MaintenanceSchedule::Name(schedule->recurrence()) + " period (" +
        std::to_string(
            std::chrono::duration_cast<std::chrono::hours>(schedule->ShortestPeriod()).count()) +
        "h" + "): two occurrences would overlap");
  }
  if (!schedule.ok()) {
    STRATA_RETURN_IF_ERROR(ctrl::ReportInvalidObject(
        *client_, *events_, kube::resources::MaintenanceWindows(), object, schedule.status(), now));
    return ReconcileResult{};
  }
  const bool recurring = schedule->recurring();

  // spec.finish is one-shot on a recurring window: it ends the occurrence under way, and is set
  // back to false once that occurrence is over (or when set between occurrences: nothing to end),
  // so that the next occurrence holds for its whole duration.
  auto clear_finish = [&]() -> Status {
    if (!recurring || !spec.finish) return Status::Ok();
    auto patched = client_->Patch(kube::resources::MaintenanceWindows(), "", meta.name,
                                  kube::PatchType::kMerge, {{"spec", {{"finish", false}}}}, false);
    if (!patched.ok() && !kube::IsNotFound(patched.status())) return patched.status();
    event(kube::EventType::kNormal, "FinishCleared",
          "spec.finish set back to false: it ended one occurrence; the next runs its full "
          "duration");
    return Status::Ok();
  };

  // The occurrences of a recurring window (status.history, newest first, at most kMaxHistory).
  auto history = [&]() -> Json& {
    if (!status.contains("history") || !status["history"].is_array()) {
      status["history"] = Json::array();
    }
    return status["history"];
  };
  auto record = [&](kube::WallTime occ_start, kube::WallTime ended, const std::string& result,
                    const std::string& message) {
    Json& h = history();
    const std::string key = kube::FormatTime(occ_start);
    for (auto it = h.begin(); it != h.end();) {
      it = it->value("start", "") == key ? h.erase(it) : it + 1;
    }
    Json entry = {{"start", key}, {"end", kube::FormatTime(ended)}, {"result", result}};
    if (!message.empty()) entry["message"] = message.substr(0, 1024);
    h.insert(h.begin(), entry);
    while (h.size() > kMaxHistory) h.erase(h.end() - 1);
  };
  auto last_start = [&]() -> std::optional<kube::WallTime> {
    std::optional<kube::WallTime> latest;
    if (!status.contains("history") || !status["history"].is_array()) return latest;
    for (const auto& e : status["history"]) {
      auto t = kube::ParseTime(e.value("start", ""));
      if (t && (!latest || *t > *latest)) latest = t;
    }
    return latest;
  };
  // The occurrence a recurring window waits for, starting from index `k`: every occurrence
  // that has already ended by now is skipped (CronJob's startingDeadlineSeconds with the
  // window's duration as the deadline: an occurrence missed while the operator was down still
  // runs, late, while inside its duration; one past its end is skipped), recorded in
  // status.history as Missed and announced by one Warning Event.
  auto next_due = [&](int64_t k, const std::string& why) -> kube::WallTime {
    const auto created = meta.creation_timestamp ? kube::ParseTime(*meta.creation_timestamp)
                                                 : std::optional<kube::WallTime>();
    int64_t missed = 0;
    std::optional<kube::WallTime> first, last;
    while (schedule->End(*schedule->Start(k)) <= now) {
      const kube::WallTime s = *schedule->Start(k++);
      // Occurrences over before the window existed were never due.
      if (created && schedule->End(s) <= *created) continue;
      ++missed;
      if (!first) first = s;
      last = s;
    }
    const kube::WallTime due = *schedule->Start(k);
    if (missed > 0) {
      // History keeps the newest few; the counter keeps them all.
      for (int64_t i = std::max<int64_t>(0, missed - static_cast<int64_t>(kMaxHistory)); i < missed;
           ++i) {
        const kube::WallTime s = *schedule->Start(k - missed + i);
        record(s, schedule->End(s), "Missed", why);
      }
      status["missedOccurrences"] = Int(status, "missedOccurrences") + missed;
      // Once per miss: a pass that ends before its status write (no device view yet) comes
      // back here, and finds the miss already recorded only if that write happened.
      bool announced = false;
      for (const auto& e : old_status.value("history", Json::array())) {
        announced = announced || e.value("start", "") == kube::FormatTime(*last);
      }
      if (!announced)
        event(kube::EventType::kWarning, "OccurrenceMissed",
              (missed == 1 ? "occurrence at " + kube::FormatTime(*first)
                           : std::to_string(missed) + " occurrences from " +
                                 kube::FormatTime(*first) + " to " + kube::FormatTime(*last)) +
                  " skipped (" + why + "): past its end; next at " + kube::FormatTime(due));
    }
    return due;
  };

  // The occurrence this pass works on. A one-off window: spec.schedule.start. A recurring one:
  // status.nextStart, fixed once draining began; while Pending, the first occurrence after the
  // last one that ran (or, the first time, the first not yet over).
  kube::WallTime occ_start = *start;
  if (recurring) {
    const auto recorded = kube::ParseTime(status.value("nextStart", ""));
    if (phase == "Pending") {
      const auto last = last_start();
      int64_t k = 0;
      if (last) {
        k = *schedule->FirstStartingAfter(*last);
      } else if (recorded && schedule->IndexOf(*recorded)) {
        k = *schedule->IndexOf(*recorded);
      } else {
        k = *schedule->FirstEndingAfter(now);
      }
      const std::string old_reason = kube::FindCondition(old_status, "Ready")
                                         ? kube::FindCondition(old_status, "Ready")->reason
                                         : "";
      std::string why = spec.suspend ? "spec.suspend is true"
                        : old_reason == "InsufficientCapacity" || old_reason == "DeviceUnreachable"
                            ? "not drained in time: " + old_reason
                            : "the operator was not running during it";
      occ_start = next_due(k, why);
      STRATA_RETURN_IF_ERROR(clear_finish());
    } else if (recorded) {
      occ_start = *recorded;
    } else {
      // Left mid-occurrence by an operator without recurrence: the latest start not after now.
      const int64_t k = *schedule->FirstStartingAfter(now);
      occ_start = *schedule->Start(k > 0 ? k - 1 : 0);
    }
    status["nextStart"] = kube::FormatTime(occ_start);
  }
  const kube::WallTime drain_at =
      occ_start - std::chrono::duration_cast<kube::WallTime::duration>(*lead);
  const kube::WallTime end = schedule->End(occ_start);

  // The end of an occurrence. A one-off window (and any abort) ends in `result` for good; a
  // recurring window records the occurrence in status.history and waits, Pending, for the next.
  auto conclude = [&](const std::string& result,
                      const std::string& message) -> Result<ReconcileResult> {
    if (!recurring || result == "Aborted") {
      if (recurring) record(occ_start, now, result, message);
      status["phase"] = result;
      ready(result == "Completed", result, message);
      STRATA_RETURN_IF_ERROR(write().status());
      return ReconcileResult{};
    }
    record(occ_start, now, result, message);
    status["occurrences"] = Int(status, "occurrences") + 1;
    if (result == "Completed") status["lastCompleted"] = kube::FormatTime(now);
    const std::string ended = "occurrence at " + kube::FormatTime(occ_start) + " " + result;
    const kube::WallTime next =
        next_due(*schedule->FirstStartingAfter(occ_start), "the previous occurrence ran past it");
    event(result == "Completed" ? kube::EventType::kNormal : kube::EventType::kWarning,
          result == "Completed" ? "OccurrenceCompleted" : "OccurrenceFailed",
          ended + " (" + message + "); next at " + kube::FormatTime(next));
    status["phase"] = "Pending";
    status["nextStart"] = kube::FormatTime(next);
    status.erase("volumes");
    status.erase("devices");
    status.erase("progress");
    ready(false, "Scheduled", ended + "; next starts " + kube::FormatTime(next));
    STRATA_ASSIGN_OR_RETURN(bool live, write());
    if (!live) return ReconcileResult{};
    STRATA_RETURN_IF_ERROR(clear_finish());
    return ReconcileResult{options_.poll};
  };
  if (Terminal(phase)) {
    // Completed or Failed on a recurring window (see above): roll on to the next occurrence.
    return conclude(phase, "ended before this operator version ran recurring windows");
  }

  auto snap = inventory_();
  if (!snap || snap->sweep == 0) {  // no view of the devices yet
    // A recurring window's skipped occurrences are recorded at once (their Event goes once).
    if (recurring && status != old_status) STRATA_RETURN_IF_ERROR(write().status());
    return poll;
  }

  // The devices under maintenance: fixed in status.devices once draining began.
  // (A recurring window selects again on every pass while Pending: between occurrences devices
  // come and go. A one-off window keeps the set its first pass wrote, as before.)
  std::set<std::string> selected;
  if (!(recurring && phase == "Pending") && status.contains("devices") &&
      !status["devices"].empty()) {
    for (const auto& d : status["devices"]) selected.insert(d.value("name", ""));
  } else {
    for (const auto& [name, d] : snap->devices) {
      if (SelectorMatches(spec.device_selector, d.labels)) selected.insert(name);
    }
  }
  auto set_devices = [&](const std::string& device_phase) {
    Json devices = Json::array();
    for (const auto& name : selected) {
      Json d = {{"name", name}, {"phase", device_phase}};
      if (const DeviceView* v = snap->Device(name); v && v->reachable) {
        d["volumesRemaining"] = static_cast<int64_t>(v->luns.size());
      }
      devices.push_back(d);
    }
    status["devices"] = devices;
    status["deviceCount"] = static_cast<int64_t>(selected.size());
  };
  auto endpoint = [&](const std::string& device) -> std::string {
    const DeviceView* d = snap->Device(device);
    return d ? d->endpoint : "";
  };
  auto set_desired = [&](const std::string& desired) -> Status {
    for (const auto& name : selected) {
      if (options_.device_lookup) {
        auto cached = options_.device_lookup(name);
        if (cached &&
            cached->value("spec", Json::object()).value("desiredState", "Online") == desired) {
          continue;
        }
      }
      // The live object, not the inventory's snapshot (which lags our own patches).
      auto current = client_->Get(kube::resources::StorageDevices(), "", name);
      if (!current.ok() && kube::IsNotFound(current.status())) continue;
      STRATA_RETURN_IF_ERROR(current.status());
      if (current->value("spec", Json::object()).value("desiredState", "Online") == desired) {
        continue;
      }
      auto patched =
          client_->Patch(kube::resources::StorageDevices(), "", name, kube::PatchType::kMerge,
                         {{"spec", {{"desiredState", desired}}}}, false);
      if (!patched.ok() && !kube::IsNotFound(patched.status())) return patched.status();
      event(kube::EventType::kNormal, "DeviceStateSet",
            "StorageDevice " + name + " spec.desiredState=" + desired);
    }
    return Status::Ok();
  };
  // LUNs on the selected devices not yet in the plan.
  auto unplanned = [&]() {
    std::set<std::string> known;
    if (status.contains("volumes")) {
      for (const auto& v : status["volumes"]) known.insert(v.value("lun", ""));
    }
    std::vector<Placement> out;
    for (const auto& name : selected) {
      const DeviceView* d = snap->Device(name);
      if (!d) continue;
      for (const auto& l : d->luns) {
        if (known.contains(l.name())) continue;
        out.push_back(
            {l.name(), name, "", l.size_bytes(), std::string(device::TierName(l.tier()))});
      }
    }
    return out;
  };
  auto add_volumes = [&](const std::vector<Placement>& placed) {
    if (!status.contains("volumes")) status["volumes"] = Json::array();
    for (const auto& p : placed) {
      status["volumes"].push_back({{"lun", p.lun},
                                   {"fromDevice", p.from},
                                   {"toDevice", p.to},
                                   {"bytesCopied", 0},
                                   {"bytesTotal", static_cast<int64_t>(p.size_bytes)},
                                   {"phase", "Pending"}});
    }
  };

  // ---- Pending: wait for the drain time, then place every LUN or move none.
  if (phase == "Pending") {
    if (stop) {
      status["phase"] = "Aborted";
      ready(false, "Aborted", "aborted before draining began; nothing was moved");
      STRATA_RETURN_IF_ERROR(write().status());
      return ReconcileResult{};
    }
    status["phase"] = "Pending";
    if (spec.suspend && now < end) {
      // CronJob's suspend: no occurrence starts (one under way is not affected). A one-off
      // window whose end passes meanwhile is Failed (WindowMissed) below, as when not drained.
      ready(false, "Suspended",
            "spec.suspend is true: no drain starts" +
                (recurring ? "; occurrences that end meanwhile are skipped (next would start " +
                                 kube::FormatTime(occ_start) + ")"
                           : std::string()));
      set_devices("Pending");
      STRATA_RETURN_IF_ERROR(write().status());
      return ReconcileResult{std::min<kube::Duration>(end - now, std::chrono::hours(1))};
    }
    if (now < drain_at) {
      ready(false, "Scheduled",
            (recurring ? "next occurrence starts " + kube::FormatTime(occ_start) + "; " : "") +
                std::string("draining starts at ") + kube::FormatTime(drain_at));
      set_devices("Pending");
      STRATA_RETURN_IF_ERROR(write().status());
      return ReconcileResult{std::min<kube::Duration>(drain_at - now, std::chrono::hours(1))};
    }
    if (now >= end) {
      status["phase"] = "Failed";
      ready(false, "WindowMissed", "the window ended before its devices could be drained");
      STRATA_RETURN_IF_ERROR(write().status());
      return ReconcileResult{};
    }
    for (const auto& name : selected) {
      const DeviceView* d = snap->Device(name);
      if (!d || !d->reachable) {
        ready(false, "DeviceUnreachable",
              "device " + name + " is not reachable: its LUNs cannot be listed");
        set_devices("Pending");
        STRATA_RETURN_IF_ERROR(write().status());
        return poll;
      }
    }
    std::vector<Placement> luns =
        spec.drain.policy == "None" ? std::vector<Placement>{} : unplanned();
    auto placed = Plan(*snap, w, selected, luns);
    if (!placed.ok()) {
      auto before = kube::FindCondition(old_status, "Ready");
      ready(false, "InsufficientCapacity", placed.status().message());
      if (!before || before->reason != "InsufficientCapacity" ||
          before->message != placed.status().message()) {
        event(kube::EventType::kWarning, "InsufficientCapacity", placed.status().message());
      }
      set_devices("Pending");
      STRATA_RETURN_IF_ERROR(write().status());
      return poll;
    }
    status["volumes"] = Json::array();
    add_volumes(*placed);
    set_devices("Draining");
    status["phase"] = phase = "Draining";
    uint64_t bytes = 0;
    for (const auto& p : *placed) bytes += p.size_bytes;
    ready(false, "Draining", "moving " + std::to_string(placed->size()) + " LUNs off");
    event(kube::EventType::kNormal, "DrainStarted",
          "moving " + std::to_string(placed->size()) + " LUNs (" + Size(bytes) + ") off " +
              std::to_string(selected.size()) + " devices");
    // The plan is durable before the first move: a restart knows where every LUN was going.
    STRATA_ASSIGN_OR_RETURN(bool live, write());
    if (!live) return ReconcileResult{};
  }

  bool any_failed = false;
  Json& volumes = status["volumes"];
  if (!volumes.is_array()) volumes = Json::array();

  // ---- Draining: follow and start moves off the selected devices.
  if (phase == "Draining" && !stop) {
    int64_t in_flight = 0;
    std::map<std::string, pb::TierClass> tiers;
    LunLookup sources(devices_);
    for (const auto& v : volumes) {
      const std::string vp = v.value("phase", "");
      if (vp == "Pending" || vp == "Moving") sources.Expect(endpoint(v.value("fromDevice", "")));
    }
    for (auto& v : volumes) {
      const std::string vp = v.value("phase", "");
      if (vp != "Pending" && vp != "Moving") continue;
      const std::string lun = v.value("lun", "");
      auto got = sources.Get(endpoint(v.value("fromDevice", "")), lun);
      if (!got.ok()) {
        if (got.status().code() == StatusCode::kNotFound) {
          v["phase"] = "Cancelled";
          v["message"] = "the LUN was deleted from its device";
        } else {
          v["message"] = got.status().message();
          if (vp == "Moving") ++in_flight;
        }
        continue;
      }
      tiers[lun] = got->tier();
      const auto& m = got->migration();
      if (!got->moved_to().empty()) {
        v["phase"] = "Moved";
        Finished(v);
        event(kube::EventType::kNormal, "LunMoved",
              "LUN " + lun + " moved " + v.value("fromDevice", "") + " -> " +
                  v.value("toDevice", ""));
      } else if (m.state() == pb::MIGRATION_STATE_RUNNING) {
        v["phase"] = "Moving";
        SetProgress(v, m);
        ++in_flight;
        watch(endpoint(v.value("fromDevice", "")), lun);
      } else if (vp == "Moving") {
        // It stopped without moving: the source still holds it whole.
        const int64_t attempts = Int(v, "attempts") + 1;
        v["attempts"] = attempts;
        v["message"] = m.message().empty() ? "the move stopped" : m.message();
        v["phase"] = attempts >= options_.max_attempts ? "Failed" : "Pending";
        event(kube::EventType::kWarning, "MoveFailed",
              "LUN " + lun + ": " + v["message"].get<std::string>() + " (attempt " +
                  std::to_string(attempts) + ")");
      }
    }
    // LUNs created on a selected device since the plan: placed the same way.
    if (auto extra = unplanned(); !extra.empty()) {
      std::map<std::pair<std::string, std::string>, uint64_t> reserved;
      for (const auto& v : volumes) {
        if (v.value("phase", "") == "Pending") {
          // Tier unknown here without a call; reserve against every class conservatively.
          for (const char* t : {"ssd", "sas", "sata"}) {
            reserved[{v.value("toDevice", ""), t}] += Int(v, "bytesTotal");
          }
        }
      }
      auto placed = Plan(*snap, w, selected, extra, reserved);
      if (placed.ok()) {
        add_volumes(*placed);
      } else {
        ready(false, "InsufficientCapacity", placed.status().message());
      }
    }
    for (auto& v : volumes) {
      if (in_flight >= max_moves) break;
      if (v.value("phase", "") != "Pending") continue;
      const std::string lun = v.value("lun", "");
      const std::string to = endpoint(v.value("toDevice", ""));
      if (to.empty()) {
        v["message"] = "target device " + v.value("toDevice", "") + " is gone";
        continue;
      }
      pb::MigrateLunRequest req;
      req.set_name(lun);
      if (tiers.contains(lun)) req.set_to_tier(tiers[lun]);
      req.set_to_device(to);
      auto started = devices_->Get(endpoint(v.value("fromDevice", "")))->MigrateLun(req);
      if (started.ok()) {
        v["phase"] = "Moving";
        v.erase("message");
        SetProgress(v, *started);
        ++in_flight;
        watch(endpoint(v.value("fromDevice", "")), lun);
        event(kube::EventType::kNormal, "MoveStarted",
              "LUN " + lun + ": " + v.value("fromDevice", "") + " -> " + v.value("toDevice", ""));
      } else {
        const int64_t attempts = Int(v, "attempts") + 1;
        v["attempts"] = attempts;
        v["message"] = started.status().message();
        if (attempts >= options_.max_attempts) v["phase"] = "Failed";
        event(kube::EventType::kWarning, "MoveFailed",
              "LUN " + lun + ": " + started.status().message());
      }
    }
    bool drained = true;
    for (const auto& v : volumes) {
      const std::string vp = v.value("phase", "");
      if (vp == "Failed") any_failed = true;
      if (vp == "Pending" || vp == "Moving") drained = false;
    }
    status["progress"] = Progress(volumes, false);
    if (!any_failed) {
      if (!drained || !unplanned().empty()) {
        set_devices("Draining");
        STRATA_RETURN_IF_ERROR(write().status());
        return poll;
      }
      STRATA_RETURN_IF_ERROR(set_desired("Maintenance"));
      status["phase"] = phase = "InMaintenance";
      set_devices("InMaintenance");
      ready(true, "InMaintenance",
            "drained; devices in maintenance until " + kube::FormatTime(end));
      event(kube::EventType::kNormal, "Drained",
            std::to_string(volumes.size()) + " LUNs moved; devices in maintenance");
      STRATA_RETURN_IF_ERROR(write().status());
    }
  }

  // ---- InMaintenance: hold until the end (or finish).
  if (phase == "InMaintenance" && !stop) {
    STRATA_RETURN_IF_ERROR(set_desired("Maintenance"));
    if (now < end && !spec.finish) {
      STRATA_RETURN_IF_ERROR(write().status());
      return ReconcileResult{std::min<kube::Duration>(end - now, std::chrono::minutes(1))};
    }
    event(kube::EventType::kNormal, "WindowEnded",
          spec.finish ? "spec.finish set" : "the window's duration has passed");
    if (!spec.restore) {
      STRATA_RETURN_IF_ERROR(set_desired("Online"));
      set_devices("Online");
      return conclude("Completed",
                      "devices back Online; LUNs left on their targets (restore: false)");
    }
    status["phase"] = phase = "Restoring";
  }

  // ---- Unwinding: the window's end, an abort, a deletion, or a failed move. Cancel moves out
  // that are still running, bring the devices Online, move back what moved (restore).
  for (const auto& v : volumes) any_failed = any_failed || v.value("phase", "") == "Failed";
  const std::string final_phase = stop ? "Aborted" : any_failed ? "Failed" : "Completed";
  for (auto& v : volumes) {
    const std::string vp = v.value("phase", "");
    if (vp != "Pending" && vp != "Moving") continue;
    const std::string lun = v.value("lun", "");
    auto source = devices_->Get(endpoint(v.value("fromDevice", "")));
    auto got = source->GetLun(lun);
    if (got.ok() && !got->moved_to().empty()) {
      v["phase"] = "Moved";  // it finished before the cancel: bring it back below
      Finished(v);
      continue;
    }
    if (got.ok() && got->migration().state() == pb::MIGRATION_STATE_RUNNING) {
      auto cancelled = source->CancelMigration(lun);
      if (!cancelled.ok()) {
        v["message"] = cancelled.status().message();
        STRATA_RETURN_IF_ERROR(write().status());
        return cancelled.status();
      }
      event(kube::EventType::kNormal, "MoveCancelled",
            "LUN " + lun + ": move cancelled; whole on " + v.value("fromDevice", ""));
      // Cancelled is asynchronous on a real device: look again until the state settles.
      auto after = source->GetLun(lun);
      if (after.ok() && after->migration().state() == pb::MIGRATION_STATE_RUNNING) {
        STRATA_RETURN_IF_ERROR(write().status());
        return poll;
      }
    } else if (!got.ok() && got.status().code() != StatusCode::kNotFound) {
      v["message"] = got.status().message();
      STRATA_RETURN_IF_ERROR(write().status());
      return got.status();
    }
    v["phase"] = "Cancelled";
    v["bytesCopied"] = 0;
    v["rate"] = 0;
    v.erase("eta");
  }
  STRATA_RETURN_IF_ERROR(set_desired("Online"));
  set_devices("Online");

  bool remaining = false;
  if (spec.restore) {
    int64_t in_flight = 0;
    std::vector<Json*> to_start;
    LunLookup targets(devices_);
    for (const auto& v : volumes) {
      const std::string vp = v.value("phase", "");
      if (vp == "Moved" || vp == "Restoring") targets.Expect(endpoint(v.value("toDevice", "")));
    }
    for (auto& v : volumes) {
      const std::string vp = v.value("phase", "");
      if (vp != "Moved" && vp != "Restoring") continue;
      const std::string lun = v.value("lun", "");
      const std::string from = endpoint(v.value("fromDevice", ""));
      auto got = targets.Get(endpoint(v.value("toDevice", "")), lun);
      if (!got.ok()) {
        v["message"] = got.status().message();
        remaining = true;
        continue;
      }
      const auto& m = got->migration();
      if (got->moved_to() == from) {
        v["phase"] = "Restored";
        Finished(v);
        event(kube::EventType::kNormal, "LunRestored",
              "LUN " + lun + " back on " + v.value("fromDevice", ""));
        continue;
      }
      remaining = true;
      if (m.state() == pb::MIGRATION_STATE_RUNNING) {
        v["phase"] = "Restoring";
        SetProgress(v, m);
        ++in_flight;
        watch(endpoint(v.value("toDevice", "")), lun);
        continue;
      }
      if (vp == "Restoring") {
        const int64_t attempts = Int(v, "attempts") + 1;
        v["attempts"] = attempts;
        v["message"] = m.message().empty() ? "the move back stopped" : m.message();
        event(kube::EventType::kWarning, "RestoreFailed",
              "LUN " + lun + ": " + v["message"].get<std::string>());
        v["phase"] = "Moved";
      }
      to_start.push_back(&v);
    }
    // Moves back need the source Online again (it refuses LUNs in maintenance).
    bool sources_online = true;
    for (const auto& name : selected) {
      if (endpoint(name).empty()) {
        sources_online = false;
        continue;
      }
      auto st = devices_->Get(endpoint(name))->GetDeviceStatus();
      if (!st.ok() || st->state() != pb::DEVICE_STATE_ONLINE) sources_online = false;
    }
    for (Json* v : to_start) {
      if (!sources_online || in_flight >= max_moves) break;
      const std::string lun = v->value("lun", "");
      auto target = devices_->Get(endpoint(v->value("toDevice", "")));
      auto got = targets.Get(endpoint(v->value("toDevice", "")), lun);  // as read above
      if (!got.ok()) continue;
      pb::MigrateLunRequest req;
      req.set_name(lun);
      req.set_to_tier(got->tier());
      req.set_to_device(endpoint(v->value("fromDevice", "")));
      auto started = target->MigrateLun(req);
      if (started.ok()) {
        (*v)["phase"] = "Restoring";
        (*v)["bytesCopied"] = 0;
        v->erase("message");
        ++in_flight;
        watch(endpoint(v->value("toDevice", "")), lun);
        event(kube::EventType::kNormal, "RestoreStarted",
              "LUN " + lun + ": " + v->value("toDevice", "") + " -> " + v->value("fromDevice", ""));
      } else {
        (*v)["message"] = started.status().message();
        event(kube::EventType::kWarning, "RestoreFailed",
              "LUN " + lun + ": " + started.status().message());
      }
    }
  }
  status["progress"] = Progress(volumes, true);
  if (remaining) {
    status["phase"] = "Restoring";
    ready(false, stop ? "Aborting" : "Restoring", "moving LUNs back to their devices");
    STRATA_RETURN_IF_ERROR(write().status());
    return poll;
  }
  return conclude(final_phase, final_phase == "Completed" ? "devices back Online with their LUNs"
                               : final_phase == "Aborted"
                                   ? "aborted: every LUN whole on one device, devices Online"
                                   : "a LUN could not be moved; the window was unwound");
}

}  // namespace strata::op
