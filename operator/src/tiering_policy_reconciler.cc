#include "strata/operator/tiering_policy_reconciler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "strata/controller/status.h"
#include "strata/device/tier.h"
#include "strata/kube/conditions.h"

namespace strata::op {

namespace v1 = api::v1alpha1;
namespace pb = storage::v1;
using kube::Json;

namespace {

// The band around a threshold a metric must leave before a holding condition stops holding.
constexpr double kHysteresis = 0.10;
// lastEvaluationTime alone is refreshed at most this often (no status write per sweep for it).
constexpr auto kEvaluationTimeRefresh = std::chrono::minutes(1);

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

std::string Seconds(kube::Duration d) {
  const double s = std::chrono::duration<double>(d).count();
  char buf[32];
  std::snprintf(buf, sizeof buf, s == std::floor(s) ? "%.0fs" : "%.1fs", s);
  return buf;
}

std::optional<double> Metric(const pb::LunStats& s, const std::string& metric) {
  if (metric == "ReadIOPS") return s.read().iops();
  if (metric == "WriteIOPS") return s.write().iops();
  if (metric == "TotalIOPS") return s.read().iops() + s.write().iops();
  if (metric == "ThroughputBytesPerSecond") {
    return s.read().bytes_per_second() + s.write().bytes_per_second();
  }
  if (metric == "IdleSeconds") return static_cast<double>(s.idle_seconds());
  return std::nullopt;
}

int64_t Rounded(double v) {
  return std::isfinite(v) && v > 0 ? static_cast<int64_t>(std::llround(v)) : 0;
}

// Metric values as status shows them: two significant digits (whole numbers below 100), so a
// steady load does not rewrite the status on every sweep. Decisions use the exact values.
int64_t ForStatus(double v) {
  int64_t n = Rounded(v);
  int64_t scale = 1;
  while (n >= 100) {
    n = (n + 5) / 10;
    scale *= 10;
  }
  return n * scale;
}

// Idle seconds as status shows them: exact for a minute, then whole minutes, then whole hours.
int64_t IdleForStatus(uint64_t s) {
  const auto v = static_cast<int64_t>(s);
  return v < 60 ? v : v < 3600 ? v / 60 * 60 : v / 3600 * 3600;
}

// Whether `rule` holds for `value`, given whether it held on the previous sample (hysteresis).
bool Holds(double value, const v1::TieringRule& rule, bool was_holding) {
  const double t = static_cast<double>(rule.threshold);
  if (rule.comparison == "Above") return was_holding ? value >= t * (1 - kHysteresis) : value > t;
  return was_holding ? value <= t * (1 + kHysteresis) : value < t;
}

bool Listed(const std::vector<std::string>& allowed, const std::string& value) {
  return allowed.empty() || std::find(allowed.begin(), allowed.end(), value) != allowed.end();
}

std::string Bracketed(const std::vector<std::string>& list) { return "[" + Join(list) + "]"; }

// The policy, from an object whose status may be malformed (another writer, an older schema):
// the status is this reconciler's to rewrite, so a bad one is dropped rather than reported as
// an invalid spec that no edit of the spec could fix.
Result<v1::TieringPolicy> ParsePolicy(const Json& object) {
  auto policy = v1::TieringPolicyFromJson(object);
  if (policy.ok() || !policy.status().message().starts_with("status") || !object.is_object()) {
    return policy;
  }
  Json without = object;
  without.erase("status");
  return v1::TieringPolicyFromJson(without);
}

}  // namespace

Result<kube::LabelSelector> ToKubeSelector(const v1::LabelSelector& selector,
                                           std::string_view field) {
  Json j = Json::object();
  if (!selector.match_labels.empty()) j["matchLabels"] = selector.match_labels;
  if (!selector.match_expressions.empty()) {
    Json exprs = Json::array();
    for (const auto& e : selector.match_expressions) {
      Json x = {{"key", e.key}, {"operator", e.operator_}};
      if (!e.values.empty()) x["values"] = e.values;
      exprs.push_back(std::move(x));
    }
    j["matchExpressions"] = std::move(exprs);
  }
  return kube::LabelSelectorFromJson(j, field);
}

TieringPolicyReconciler::TieringPolicyReconciler(kube::ApiClient* client, Lookup lookup,
                                                 ListPvcs pvcs, SnapshotFn snapshot,
                                                 device::ClientCache* devices,
                                                 kube::EventRecorder* events, Options options,
                                                 kube::Clock* clock)
    : client_(client),
      lookup_(std::move(lookup)),
      pvcs_(std::move(pvcs)),
      snapshot_(std::move(snapshot)),
      devices_(devices),
      events_(events),
      options_(options),
      clock_(clock) {}

Result<ctrl::ReconcileResult> TieringPolicyReconciler::Reconcile(const std::string& key) {
  std::optional<Json> cached = lookup_(key);
  if (!cached) {
    std::lock_guard g(mu_);
    memory_.erase(key);  // deleted: nothing of ours outside this process
    return ctrl::ReconcileResult{};
  }
  Json object = std::move(*cached);
  auto policy = ParsePolicy(object);
  Status invalid = policy.status();
  std::optional<kube::LabelSelector> selector, device_selector;
  kube::Duration cooldown{};
  std::vector<kube::Duration> sustained_for;
  if (invalid.ok()) {
    auto s = ToKubeSelector(policy->spec.selector, "spec.selector");
    invalid = s.status();
    if (s.ok()) selector = std::move(*s);
  }
  if (invalid.ok() && policy->spec.target_device_selector) {
    auto s = ToKubeSelector(*policy->spec.target_device_selector, "spec.targetDeviceSelector");
    invalid = s.status();
    if (s.ok()) device_selector = std::move(*s);
  }
  if (invalid.ok()) {
    auto c = v1::ParseDuration(policy->spec.cooldown);
    if (!c.ok()) invalid = InvalidArgumentError("spec.cooldown: " + c.status().message());
    if (c.ok()) cooldown = *c;
  }
  for (size_t i = 0; invalid.ok() && i < policy->spec.rules.size(); ++i) {
    auto d = v1::ParseDuration(policy->spec.rules[i].sustained_for);
    if (!d.ok()) {
      invalid = InvalidArgumentError("spec.rules[" + std::to_string(i) +
                                     "].sustainedFor: " + d.status().message());
    }
    if (d.ok()) sustained_for.push_back(*d);
  }
  if (!invalid.ok()) {
    STRATA_RETURN_IF_ERROR(ctrl::ReportInvalidObject(
        *client_, *events_, kube::resources::TieringPolicies(), std::move(object), invalid,
        clock_->WallNow(), "InvalidSpec", "Error"));
    return ctrl::ReconcileResult{};  // only an edit fixes it, and an edit triggers us
  }
  if (policy->metadata.deletion_timestamp) return ctrl::ReconcileResult{};
  const v1::TieringPolicySpec& spec = policy->spec;
  const std::string& ns = policy->metadata.namespace_;
  const int64_t generation = policy->metadata.generation.value_or(0);
  const bool cross_device = spec.scope == "CrossDevice";

  PolicyMemory* mem;
  {
    std::lock_guard g(mu_);
    mem = &memory_[key];  // std::map: stable while other keys come and go
  }
  if (mem->generation != generation) {
    mem->generation = generation;
    mem->refused_reported.clear();
    mem->unavailable_reported.clear();
  }

  const auto snap = snapshot_();
  const bool evaluated = snap && snap->sweep > 0;
  const kube::TimePoint now = clock_->Now();
  const kube::WallTime wall_now = clock_->WallNow();

  // The selected volumes, by PVC name.
  std::vector<std::string> pvcs;
  for (const Json& pvc : pvcs_()) {
    if (!pvc.is_object() || !pvc.contains("metadata") || !pvc["metadata"].is_object()) continue;
    const Json& md = pvc["metadata"];
    const auto ns_it = md.find("namespace"), name_it = md.find("name");
    if (ns_it == md.end() || name_it == md.end() || !ns_it->is_string() || !name_it->is_string() ||
        ns_it->get<std::string>() != ns) {
      continue;
    }
    if (selector->MatchesObject(pvc)) pvcs.push_back(name_it->get<std::string>());
  }
  std::sort(pvcs.begin(), pvcs.end());

  // Devices a volume may move to (CrossDevice), and the ones the audit lists exclude.
  std::vector<const DeviceView*> allowed;
  std::map<std::string, std::string> refused;  // device -> why
  if (evaluated && cross_device) {
    for (const auto& [name, d] : snap->devices) {
      if (device_selector && !device_selector->Matches(d.labels)) continue;
      std::vector<std::string> why;
      if (!Listed(spec.allowed_jurisdictions, d.jurisdiction)) {
        why.push_back("jurisdiction '" + d.jurisdiction + "' not in allowedJurisdictions " +
                      Bracketed(spec.allowed_jurisdictions));
      }
      if (!Listed(spec.allowed_regions, d.region)) {
        why.push_back("region '" + d.region + "' not in allowedRegions " +
                      Bracketed(spec.allowed_regions));
      }
      if (why.empty()) {
        allowed.push_back(&d);
      } else {
        refused[name] = name + " (region '" + d.region + "', jurisdiction '" + d.jurisdiction +
                        "'): " + Join(why);
      }
    }
  }
  for (const auto& [name, why] : refused) {
    if (mem->refused_reported.insert(name).second) {
      events_->Record(object, kube::EventType::kWarning, "DeviceRefused",
                      "StorageDevice " + why + ": never a move target of this policy");
    }
  }

  // Rules whose targetTier no device the policy may use offers.
  std::set<std::string> volume_devices;
  if (evaluated) {
    for (const auto& pvc : pvcs) {
      if (auto ref = snap->FindPvc(ns, pvc)) volume_devices.insert(ref->device);
    }
  }
  std::vector<bool> unavailable(spec.rules.size(), false);
  std::vector<std::string> unavailable_msgs;
  if (evaluated && !snap->devices.empty() && (cross_device || !volume_devices.empty())) {
    for (size_t i = 0; i < spec.rules.size(); ++i) {
      const auto& rule = spec.rules[i];
      bool offered = false;
      for (const DeviceView* d : allowed) offered = offered || d->FindTier(rule.target_tier);
      for (const auto& name : volume_devices) {
        const DeviceView* d = snap->Device(name);
        offered = offered || (d && d->FindTier(rule.target_tier));
      }
      if (offered) continue;
      unavailable[i] = true;
      const std::string msg =
          "rule " + rule.name + ": no device this policy may use offers tier " + rule.target_tier;
      unavailable_msgs.push_back(msg);
      if (mem->unavailable_reported.insert(rule.name).second) {
        events_->Record(object, kube::EventType::kWarning, "TargetTierUnavailable", msg);
      }
    }
  }

  // Cooldowns survive a restart through status.volumes[].lastMove.
  for (const auto& v : policy->status.volumes) {
    if (!v.last_move) continue;
    if (auto t = kube::ParseTime(*v.last_move)) {
      auto& last = mem->last_move[v.pvc];
      last = std::max(last, *t);
    }
  }

  // Moves in flight per device: what the devices report, plus ours the snapshot predates.
  std::map<std::string, int64_t> in_flight;
  if (evaluated) {
    for (const auto& [name, d] : snap->devices) in_flight[name] = d.running_migrations;
    for (const auto& [pvc, s] : mem->started) {
      if (s.at >= snap->taken) ++in_flight[s.record.from_device];
    }
  }

  // Bytes this reconcile's moves will take on (device, tier): the snapshot does not show them.
  std::map<std::pair<std::string, std::string>, uint64_t> reserved;
  const auto free_bytes = [&](const DeviceView* d, const std::string& cls) -> uint64_t {
    const uint64_t free = d->FreeBytes(cls), taken = reserved[{d->name, cls}];
    return free > taken ? free - taken : 0;
  };

  std::vector<v1::TieringVolumeStatus> volumes;
  std::set<std::pair<std::string, std::string>> live_timers;
  int64_t moving_count = 0;
  Status move_error;
  for (const auto& pvc : pvcs) {
    v1::TieringVolumeStatus vs;
    vs.pvc = pvc;
    vs.state = "Idle";
    if (auto it = mem->last_move.find(pvc); it != mem->last_move.end()) {
      vs.last_move = kube::FormatTime(it->second);
    }
    const auto ref = evaluated ? snap->FindPvc(ns, pvc) : std::nullopt;
    const pb::Lun* lun = ref ? snap->Lun(*ref) : nullptr;
    const DeviceView* dev = ref ? snap->Device(ref->device) : nullptr;
    if (!lun || !dev) {
      vs.message = evaluated ? "no LUN on any StorageDevice names this PVC as its owner"
                             : "waiting for the first inventory sweep";
      volumes.push_back(std::move(vs));
      continue;
    }
    vs.device = dev->name;
    vs.lun = lun->name();
    const std::string tier(device::TierName(lun->tier()));
    vs.tier = tier;
    const pb::LunStats* stats = snap->Stats(*ref);
    if (stats) {
      vs.read_iops = ForStatus(stats->read().iops());
      vs.write_iops = ForStatus(stats->write().iops());
      vs.total_iops = ForStatus(stats->read().iops() + stats->write().iops());
      vs.throughput_bytes_per_second =
          ForStatus(stats->read().bytes_per_second() + stats->write().bytes_per_second());
      vs.idle_seconds = IdleForStatus(stats->idle_seconds());
    }

    // A move we started: in flight until a snapshot taken after it shows otherwise.
    bool moving = lun->migration().state() == pb::MIGRATION_STATE_RUNNING;
    if (auto it = mem->started.find(pvc); it != mem->started.end()) {
      const Started& s = it->second;
      if (!moving && snap->taken <= s.at) {
        moving = true;
      } else if (!moving) {
        const v1::TieringMigration& m = s.record;
        const std::string where = dev->name + "/" + tier;
        if (dev->name == m.to_device && tier == m.to_tier) {
          events_->Record(object, kube::EventType::kNormal, "VolumeMoved",
                          "volume " + ns + "/" + pvc + " now on " + where + " (from " +
                              m.from_device + "/" + m.from_tier + ", started " + m.time +
                              ", rule " + m.rule + ")");
        } else {
          const std::string why = lun->migration().message();
          events_->Record(object, kube::EventType::kWarning, "MoveFailed",
                          "volume " + ns + "/" + pvc + " still on " + where + ", not " +
                              m.to_device + "/" + m.to_tier + (why.empty() ? "" : ": " + why));
        }
        mem->started.erase(it);
      }
    }

    // The rules' conditions, each with its own sustain timer.
    std::optional<size_t> due;
    bool sustaining = false;
    for (size_t i = 0; i < spec.rules.size(); ++i) {
      const auto& rule = spec.rules[i];
      const std::pair<std::string, std::string> timer{pvc, rule.name};
      std::optional<double> value = stats ? Metric(*stats, rule.metric) : std::nullopt;
      if (!value) continue;  // no sample: the condition does not hold (timer restarts)
      Sustain& s = mem->sustain[timer];
      live_timers.insert(timer);
      const bool holds = Holds(*value, rule, s.holding);
      if (holds && !s.holding) s.since = now;
      s.holding = holds;
      if (!holds || unavailable[i]) continue;
      if (rule.target_tier != tier) sustaining = true;
      if (!due && now - s.since >= sustained_for[i]) due = i;
    }

    const auto last = mem->last_move.find(pvc);
    const bool cooling = last != mem->last_move.end() && wall_now - last->second < cooldown;
    if (moving) {
      vs.state = "Moving";
    } else if (cooling) {
      vs.state = "Cooldown";
    } else if (sustaining) {
      vs.state = "Sustaining";
    }
    if (due && spec.rules[*due].target_tier != tier && !moving && !cooling) {
      const auto& rule = spec.rules[*due];
      const double value = Metric(*stats, rule.metric).value_or(0);
      const uint64_t size = lun->size_bytes();
      const DeviceView* target = nullptr;
      if (dev->AcceptsVolumes() && free_bytes(dev, rule.target_tier) >= size) {
        target = dev;
      } else if (cross_device) {
        std::vector<const DeviceView*> fits;
        for (const DeviceView* d : allowed) {
          if (d != dev && d->AcceptsVolumes() && free_bytes(d, rule.target_tier) >= size) {
            fits.push_back(d);
          }
        }
        std::sort(fits.begin(), fits.end(), [&](const DeviceView* a, const DeviceView* b) {
          const uint64_t fa = free_bytes(a, rule.target_tier), fb = free_bytes(b, rule.target_tier);
          return fa != fb ? fa > fb : a->name < b->name;
        });
        if (!fits.empty()) target = fits.front();
      }
      if (spec.paused) {
        vs.message = "paused: rule " + rule.name + " is due";
      } else if (!target) {
        vs.message = "rule " + rule.name + " is due, but no " +
                     (cross_device ? std::string("allowed device")
                                   : "tier " + rule.target_tier + " of " + dev->name) +
                     " has " + std::to_string(size) + " free bytes on tier " + rule.target_tier;
      } else if (in_flight[dev->name] >= spec.max_concurrent_migrations) {
        vs.message = "rule " + rule.name + " is due; waiting: device " + dev->name + " has " +
                     std::to_string(in_flight[dev->name]) +
                     " moves in flight (maxConcurrentMigrations " +
                     std::to_string(spec.max_concurrent_migrations) + ")";
      } else {
        pb::MigrateLunRequest req;
        req.set_name(lun->name());
        auto to_tier = device::ParseTier(rule.target_tier);
        if (to_tier.ok()) req.set_to_tier(*to_tier);
        if (target != dev) req.set_to_device(target->endpoint);
        v1::TieringMigration m;
        m.volume = pvc;
        m.from_device = dev->name;
        m.from_tier = tier;
        m.to_device = target->name;
        m.to_tier = rule.target_tier;
        m.rule = rule.name;
        m.reason = rule.metric + " " + std::to_string(Rounded(value)) + " " + rule.comparison +
                   " " + std::to_string(rule.threshold) + " for " +
                   Seconds(now - mem->sustain[{pvc, rule.name}].since);
        m.time = kube::FormatTime(wall_now);
        auto started = devices_->Get(dev->endpoint)->MigrateLun(req);
        const std::string what = "volume " + ns + "/" + pvc + " (LUN " + lun->name() + ") " +
                                 m.from_device + "/" + m.from_tier + " -> " + m.to_device + "/" +
                                 m.to_tier;
        if (started.ok()) {
          ++in_flight[dev->name];
          reserved[{target->name, rule.target_tier}] += size;
          mem->started[pvc] = Started{m, wall_now, lun->name()};
          mem->last_move[pvc] = wall_now;
          mem->unrecorded.push_back(m);
          vs.state = "Moving";
          vs.last_move = m.time;
          moving = true;
          events_->Record(object, kube::EventType::kNormal, "MoveStarted",
                          m.time + ": " + what + ": rule " + m.rule + ": " + m.reason);
          spdlog::info("TieringPolicy {}: {}: rule {}: {}", key, what, m.rule, m.reason);
        } else {
          vs.message = "MigrateLun failed: " + started.status().message();
          events_->Record(object, kube::EventType::kWarning, "MoveFailed",
                          what + ": " + started.status().message());
          if (move_error.ok()) move_error = started.status();
        }
      }
    }
    if (moving) ++moving_count;
    volumes.push_back(std::move(vs));
  }
  std::erase_if(mem->sustain, [&](const auto& e) { return !live_timers.contains(e.first); });

  std::vector<std::string> refused_lines;
  for (const auto& [name, why] : refused) refused_lines.push_back(why);

  const auto desired = [&](const Json& current_object) -> Result<Json> {
    auto current = ParsePolicy(current_object);
    if (!current.ok()) return current.status();  // the next reconcile reports it
    v1::TieringPolicy out = *current;
    v1::TieringPolicyStatus& st = out.status;
    const Json old_status =
        current_object.contains("status") ? current_object["status"] : Json::object();
    st.observed_generation = current->metadata.generation.value_or(0);
    st.phase = spec.paused ? "Paused" : evaluated ? "Active" : "Pending";
    st.matched_volumes = static_cast<int64_t>(pvcs.size());
    st.migrations_in_progress = moving_count;
    st.volumes = volumes;
    st.refused_devices = refused_lines;
    for (const auto& m : mem->unrecorded) {
      const bool recorded = std::any_of(st.history.begin(), st.history.end(), [&](const auto& h) {
        return h.volume == m.volume && h.time == m.time && h.rule == m.rule;
      });
      if (!recorded) st.history.push_back(m);
    }
    if (st.history.size() > static_cast<size_t>(v1::kTieringHistoryLimit)) {
      st.history.erase(st.history.begin(), st.history.end() - v1::kTieringHistoryLimit);
    }
    if (!st.history.empty()) st.last_migration = st.history.back();
    st.last_evaluation_time.reset();
    Json status = v1::ToJson(out).value("status", Json::object());

    auto set = [&](const char* type, const char* value, const std::string& reason,
                   const std::string& msg) {
      kube::SetCondition(status, {type, value, reason, msg, st.observed_generation.value_or(0), ""},
                         wall_now);
    };
    if (!evaluated) {
      set("Ready", "False", "NotEvaluated", "waiting for the first inventory sweep");
    } else if (!unavailable_msgs.empty()) {
      set("Ready", "False", "TargetTierUnavailable", Join(unavailable_msgs));
    } else {
      set("Ready", "True", "Evaluated",
          std::to_string(pvcs.size()) + " volumes selected" + (spec.paused ? " (paused)" : ""));
    }
    set("Progressing", moving_count > 0 ? "True" : "False",
        moving_count > 0 ? "MigrationsInProgress" : "NoMigrations",
        std::to_string(moving_count) + " moves in flight");

    // lastEvaluationTime: with any other change, else at most every kEvaluationTimeRefresh.
    Json old_without = old_status;
    std::optional<kube::WallTime> old_eval;
    if (old_without.is_object() && old_without.contains("lastEvaluationTime")) {
      if (old_without["lastEvaluationTime"].is_string()) {
        old_eval = kube::ParseTime(old_without["lastEvaluationTime"].get<std::string>());
      }
      old_without.erase("lastEvaluationTime");
    }
    if (evaluated) {
      if (old_eval && old_without == status && wall_now - *old_eval < kEvaluationTimeRefresh) {
        status["lastEvaluationTime"] = kube::FormatTime(*old_eval);
      } else {
        status["lastEvaluationTime"] = kube::FormatTime(wall_now);
      }
    }
    return status;
  };
  auto written =
      ctrl::WriteStatus(*client_, kube::resources::TieringPolicies(), std::move(object), desired);
  if (!written.ok()) return written.status();
  if (written->gone) {
    std::lock_guard g(mu_);
    memory_.erase(key);
    return ctrl::ReconcileResult{};
  }
  mem->unrecorded.clear();                  // in status.history now
  if (!move_error.ok()) return move_error;  // retried with backoff
  return Requeue();
}

}  // namespace strata::op
