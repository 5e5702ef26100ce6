#include "strata/operator/dedup_policy_reconciler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "strata/controller/status.h"
#include "strata/device/tier.h"
#include "strata/kube/conditions.h"
#include "strata/kube/labels.h"

namespace strata::op {

namespace {

using api::v1alpha1::DedupDeviceStatus;
using api::v1alpha1::DedupPolicy;
using api::v1alpha1::DedupPolicyFromJson;
using api::v1alpha1::DedupVolumeStatus;
using kube::Json;

// Dedup switches (SetLunDedup, a journaled device call each) one reconcile makes at most.
constexpr int kMaxChangesPerReconcile = 32;

double Ratio(int64_t logical, int64_t unique) {
  if (unique <= 0 || logical <= 0) return 1.0;
  // Three decimals: no status write for a change in the 15th digit.
  return std::round(static_cast<double>(logical) / static_cast<double>(unique) * 1000) / 1000;
}

std::string Join(const std::set<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

std::string Fixed(double v, int decimals = 2) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// Another policy of the namespace, as far as arbitration needs it.
struct Rival {
  std::string name;
  std::string created;  // RFC 3339 sorts as text
  kube::LabelSelector selector;
  std::vector<std::string> tiers;
};

bool Selects(const kube::LabelSelector& selector, const std::vector<std::string>& tiers,
             const Json& pvc, const std::string& tier) {
  if (!selector.MatchesObject(pvc)) return false;
  return tiers.empty() || std::find(tiers.begin(), tiers.end(), tier) != tiers.end();
}

}  // namespace

DedupPolicyReconciler::DedupPolicyReconciler(kube::ApiClient* client, const kube::Store* policies,
                                             const kube::Store* pvcs, SnapshotFn snapshot,
                                             device::ClientCache* devices,
                                             kube::EventRecorder* events, kube::Clock* clock)
    : client_(client),
      policies_(policies),
      pvcs_(pvcs),
      snapshot_(std::move(snapshot)),
      devices_(devices),
      events_(events),
      clock_(clock) {}

std::vector<std::string> DedupPolicyReconciler::PolicyKeysIn(const std::string& ns) const {
  std::vector<std::string> keys;
  for (const auto& key : policies_->Keys()) {
    if (key.starts_with(ns + "/")) keys.push_back(key);
  }
  return keys;
}

std::vector<std::string> DedupPolicyReconciler::AllPolicyKeys() const { return policies_->Keys(); }

Result<ctrl::ReconcileResult> DedupPolicyReconciler::Reconcile(const std::string& key) {
  std::optional<Json> cached = policies_->Get(key);
  if (!cached) return ctrl::ReconcileResult{};  // deleted: the volumes keep their setting
  const kube::WallTime now = clock_->WallNow();
  auto policy = DedupPolicyFromJson(*cached);
  Status invalid = policy.status();
  kube::LabelSelector selector;
  std::chrono::nanoseconds window{};
  if (policy.ok()) {
    auto sel = kube::LabelSelectorFromJson((*cached)["spec"]["selector"], "spec.selector");
    auto w = api::v1alpha1::ParseDuration(policy->spec.evaluation_window);
    if (!sel.ok()) {
      invalid = sel.status();
    } else if (!w.ok()) {
      invalid = InvalidArgumentError("spec.evaluationWindow: " + w.status().message());
    } else {
      selector = *sel;
      window = *w;
    }
  }
  if (!invalid.ok()) {
    STRATA_RETURN_IF_ERROR(ctrl::ReportInvalidObject(*client_, *events_,
                                                     kube::resources::DedupPolicies(), *cached,
                                                     invalid, now, "InvalidSpec", "Error"));
    return ctrl::ReconcileResult{};  // only an edit fixes it, and an edit triggers us
  }
  if (policy->metadata.deletion_timestamp) return ctrl::ReconcileResult{};

  const std::string& ns = policy->metadata.namespace_;
  const std::string& name = policy->metadata.name;
  const int64_t generation = policy->metadata.generation.value_or(0);
  const std::string created = policy->metadata.creation_timestamp.value_or("");
  const bool inline_mode = policy->spec.mode == "Inline";
  auto snap = snapshot_();

  // Older policies of the namespace govern what they select; this one yields to them.
  std::vector<Rival> older;
  for (const Json& other : policies_->List()) {
    auto p = DedupPolicyFromJson(other);
    if (!p.ok() || p->metadata.namespace_ != ns || p->metadata.name == name ||
        p->metadata.deletion_timestamp) {
      continue;
    }
    auto sel = kube::LabelSelectorFromJson(other["spec"]["selector"], "spec.selector");
    if (!sel.ok()) continue;  // an invalid policy acts on nothing
    const std::string c = p->metadata.creation_timestamp.value_or("");
    if (c < created || (c == created && p->metadata.name < name)) {
      older.push_back({p->metadata.name, c, *sel, p->spec.tiers});
    }
  }

  std::map<std::string, DedupVolumeStatus> before;
  for (const auto& v : policy->status.volumes) before[v.pvc] = v;

  std::vector<DedupVolumeStatus> volumes;
  std::map<std::string, DedupDeviceStatus> devices;
  std::set<std::string> conflicts, rivals, dedup_off_devices, failed;
  std::string first_failure;
  Status retry;  // an error worth a backoff retry (device unreachable, ...)
  int changed = 0;
  bool more = false;  // changes left for the next pass (kMaxChangesPerReconcile)
  int64_t logical = 0, unique = 0, governed = 0;

  for (const Json& pvc : pvcs_->List()) {
    const Json& meta = pvc.value("metadata", Json::object());
    if (meta.value("namespace", "") != ns || !selector.MatchesObject(pvc)) continue;
    const std::string pvc_name = meta.value("name", "");
    auto ref = snap->FindPvc(ns, pvc_name);
    if (!ref) continue;  // no LUN (yet), or its device does not answer
    const storage::v1::Lun* lun = snap->Lun(*ref);
    const DeviceView* device = snap->Device(ref->device);
    if (lun == nullptr || device == nullptr) continue;
    const std::string tier(device::TierName(lun->tier()));
    const auto& tiers = policy->spec.tiers;
    if (!tiers.empty() && std::find(tiers.begin(), tiers.end(), tier) == tiers.end()) continue;

    DedupVolumeStatus v;
    v.pvc = pvc_name;
    v.device = ref->device;
    v.lun = lun->name();
    v.tier = tier;
    v.dedup = lun->dedup();
    v.logical_bytes = static_cast<int64_t>(lun->space().logical_bytes());
    v.unique_bytes = static_cast<int64_t>(lun->space().unique_bytes());
    v.ratio = Ratio(v.logical_bytes, v.unique_bytes);
    auto prev_it = before.find(pvc_name);
    const DedupVolumeStatus* prev = prev_it == before.end() ? nullptr : &prev_it->second;

    auto rival = std::find_if(older.begin(), older.end(), [&](const Rival& r) {
      return Selects(r.selector, r.tiers, pvc, tier);
    });
    if (rival != older.end()) {
      v.state = "Conflict";
      v.message = "governed by the older DedupPolicy " + rival->name;
      conflicts.insert(pvc_name);
      rivals.insert(rival->name);
      volumes.push_back(std::move(v));
      continue;
    }

    // Dedup on since: ours from the status, or now if we find it on without a record.
    if (v.dedup) {
      v.since = prev && prev->since ? prev->since : std::optional(kube::FormatTime(now));
    }
    bool want = inline_mode;
    std::string why =
        inline_mode ? "policy " + name + " mode Inline" : "policy " + name + " mode Disabled";
    if (inline_mode && prev && prev->state == "BelowMinSavings" &&
        prev->turned_off_generation == generation) {
      want = false;  // stays off until the policy changes
      v.state = "BelowMinSavings";
      v.message = prev->message;
      v.turned_off_at = prev->turned_off_at;
      v.turned_off_generation = prev->turned_off_generation;
    } else if (inline_mode && v.dedup && v.since) {
      auto since = kube::ParseTime(*v.since);
      if (since && now - *since >= window && v.ratio < policy->spec.min_savings_ratio) {
        want = false;
        v.state = "BelowMinSavings";
        v.message = "dedup ratio " + Fixed(v.ratio) + " below minSavingsRatio " +
                    Fixed(policy->spec.min_savings_ratio) + " after evaluationWindow " +
                    policy->spec.evaluation_window;
        v.turned_off_at = kube::FormatTime(now);
        v.turned_off_generation = generation;
        why = v.message;
      }
    }

    if (want && !device->status.dedup_enabled()) {
      v.state = "DeviceDedupDisabled";
      v.message = "device " + ref->device + " runs with dedup disabled (strata-stored --dedup off)";
      dedup_off_devices.insert(ref->device);
    } else if (v.dedup != want && changed >= kMaxChangesPerReconcile) {
      // Bounded work per reconcile (each change is a journaled call on a device): the rest in
      // the next pass, requeued at once, so one policy over thousands of volumes neither holds
      // a worker for seconds nor delays the status of what is done.
      more = true;
    } else if (v.dedup != want) {
      // Turning on also folds what is already written, throttled, in the background.
      auto done = devices_->Get(device->endpoint)->SetLunDedup(lun->name(), want, want);
      if (done.ok()) {
        ++changed;
        v.dedup = done->dedup();
        v.since = v.dedup ? std::optional(kube::FormatTime(now)) : std::nullopt;
        const std::string what = "PVC " + pvc_name + " (LUN " + lun->name() + " on device " +
                                 ref->device + ", tier " + tier + ")";
        if (want) {
          events_->Record(*cached, kube::EventType::kNormal, "DedupEnabled",
                          "dedup turned on for " + what + ": " + why +
                              "; blocks already written are folded in the background");
        } else {
          events_->Record(*cached, kube::EventType::kNormal, "DedupDisabled",
                          "dedup turned off for " + what + ": " + why);
        }
        spdlog::info("DedupPolicy {}: dedup {} for {}: {}", key, want ? "on" : "off", what, why);
      } else {
        const Status& st = done.status();
        if (st.code() == StatusCode::kFailedPrecondition && want &&
            st.message().find("dedup") != std::string::npos &&
            st.message().find("disabled") != std::string::npos) {
          // The device's dedup switch went off after the sweep: same as above.
          v.state = "DeviceDedupDisabled";
          v.message = "device " + ref->device + ": " + st.message();
          dedup_off_devices.insert(ref->device);
        } else {
          v.state = "Error";
          v.message = st.message();
          failed.insert(pvc_name);
          if (first_failure.empty()) first_failure = pvc_name + ": " + st.message();
          // FAILED_PRECONDITION (a LUN being moved) waits for the next sweep; anything else
          // (unreachable, ...) is retried with backoff too.
          if (st.code() != StatusCode::kFailedPrecondition && retry.ok()) retry = st;
        }
      }
    }
    if (!v.dedup) v.since.reset();
    if (v.state.empty()) v.state = v.dedup ? "Deduplicating" : "Off";

    ++governed;
    logical += v.logical_bytes;
    unique += v.unique_bytes;
    DedupDeviceStatus& d = devices[ref->device];
    d.name = ref->device;
    d.volumes++;
    d.logical_bytes += v.logical_bytes;
    d.unique_bytes += v.unique_bytes;
    d.dedup_enabled = device->status.dedup_enabled();
    volumes.push_back(std::move(v));
  }

  DedupPolicy out;
  out.status.phase = snap->sweep == 0 ? "Pending" : "Active";
  out.status.matched_volumes = governed;
  out.status.logical_bytes = logical;
  out.status.unique_bytes = unique;
  out.status.saved_bytes = std::max<int64_t>(0, logical - unique);
  out.status.dedup_ratio = Ratio(logical, unique);
  out.status.observed_generation = generation;
  out.status.volumes = std::move(volumes);
  for (auto& [_, d] : devices) {
    d.dedup_ratio = Ratio(d.logical_bytes, d.unique_bytes);
    out.status.devices.push_back(d);
  }
  const Json fields = api::v1alpha1::ToJson(out)["status"];

  auto conditions = [&](Json& status) {
    auto set = [&](const char* type, bool value, const std::string& reason,
                   const std::string& message) {
      kube::SetCondition(status, {type, value ? "True" : "False", reason, message, generation, ""},
                         now);
    };
    if (snap->sweep == 0) {
      set("Ready", false, "WaitingForInventory", "no sweep of the StorageDevices yet");
    } else if (!dedup_off_devices.empty()) {
      set("Ready", false, "DeviceDedupDisabled",
          "dedup is disabled on device(s) " + Join(dedup_off_devices) +
              ": their volumes cannot de-duplicate");
    } else if (!failed.empty()) {
      set("Ready", false, "ApplyFailed",
          std::to_string(failed.size()) + " volume(s) not set: " + first_failure);
    } else {
      set("Ready", true, "Applied",
          std::to_string(governed) + " volume(s), dedup " + (inline_mode ? "Inline" : "Disabled") +
              ", ratio " + Fixed(Ratio(logical, unique)));
    }
    if (snap->sweep == 0) {
      set("Progressing", true, "WaitingForInventory", "");
    } else if (changed > 0) {
      set("Progressing", true, "DedupChanged",
          std::to_string(changed) + " volume(s) switched" +
              (inline_mode ? "; blocks already written are folded in the background" : ""));
    } else {
      set("Progressing", false, "Settled", "");
    }
    if (conflicts.empty()) {
      set("Conflict", false, "NoConflict", "");
    } else {
      set("Conflict", true, "SelectedByOlderPolicy",
          "PVC(s) " + Join(conflicts) + " are governed by the older DedupPolicy " + Join(rivals));
    }
  };

  auto written = ctrl::WriteStatus(
      *client_, kube::resources::DedupPolicies(), *cached,
      [&](const Json& current) -> Result<Json> {
        Json status = fields;
        if (current.contains("status") && current["status"].contains("conditions")) {
          status["conditions"] = current["status"]["conditions"];
        }
        conditions(status);
        return status;
      });
  if (!written.ok()) return written.status();
  if (written->gone) return ctrl::ReconcileResult{};
  if (!retry.ok()) return retry;
  if (more) return ctrl::ReconcileResult{std::chrono::milliseconds(1)};
  return ctrl::ReconcileResult{};
}

}  // namespace strata::op
