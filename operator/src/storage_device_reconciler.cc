#include "strata/operator/storage_device_reconciler.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <set>

#include "strata/controller/status.h"
#include "strata/device/tier.h"
#include "strata/kube/conditions.h"
#include "strata/kube/errors.h"

namespace strata::op {

using api::v1alpha1::StorageDevice;
using api::v1alpha1::StorageDeviceFromJson;

namespace {

using kube::Json;
namespace pb = storage::v1;

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

std::string Gib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / (1ull << 30));
  return buf;
}

}  // namespace

StorageDeviceReconciler::StorageDeviceReconciler(kube::ApiClient* client, Lookup lookup,
                                                 DeviceClient* devices, kube::EventRecorder* events,
                                                 Options options, kube::Clock* clock)
    : client_(client),
      lookup_(std::move(lookup)),
      devices_(devices),
      events_(events),
      options_(options),
      clock_(clock) {}

Json StorageDeviceReconciler::DesiredStatus(const StorageDevice& device, const Json& old_status,
                                            const Result<pb::DeviceStatus>& observed,
                                            kube::WallTime now) {
  const int64_t generation = device.metadata.generation.value_or(0);
  // Unreachable: keep the last numbers seen, flip the conditions.
  Json status = old_status.is_object() ? old_status : Json::object();
  status["observedGeneration"] = generation;
  auto set = [&](const char* type, bool value, const std::string& reason, const std::string& msg) {
    kube::SetCondition(status, {type, value ? "True" : "False", reason, msg, generation, ""}, now);
  };

  if (!observed.ok()) {
    status["phase"] = "Offline";
    const std::string msg = observed.status().message();
    set("Unreachable", true, "ManagementEndpointUnreachable", msg);
    set("Ready", false, "DeviceUnreachable", "the device's management endpoint does not answer");
    // Degraded describes a device that answers; while it does not, its last value stands.
    if (!kube::FindCondition(status, "Degraded")) {
      kube::SetCondition(status, {"Degraded", "Unknown", "DeviceUnreachable", "", generation, ""},
                         now);
    }
    return status;
  }

  const pb::DeviceStatus& d = *observed;
  // Empty strings are left out: see kube::SetCondition on the 1.20 apiserver and "".
  auto set_string = [&](const char* field, const std::string& value) {
    if (value.empty()) {
      status.erase(field);
    } else {
      status[field] = value;
    }
  };
  set_string("deviceName", d.name());
  set_string("deviceId", d.device_id());
  set_string("version", d.version());
  status["capacityBytes"] = static_cast<int64_t>(d.capacity_bytes());
  status["usedBytes"] = static_cast<int64_t>(d.used_bytes());
  double ratio = d.has_space() ? d.space().dedup_ratio() : 1.0;
  if (!std::isfinite(ratio) || ratio < 0) ratio = 1.0;
  status["dedupRatio"] = std::round(ratio * 1000) / 1000;  // no churn on the 15th digit
  status["lunCount"] = d.lun_count();
  set_string("stateReason", d.state_reason());
  Json portals = Json::array();
  for (const auto& p : d.portals()) {
    if (!p.empty()) portals.push_back(p);
  }
  status["portals"] = portals;

  Json tiers = Json::array();
  std::set<std::string> present;
  std::vector<std::string> unhealthy;
  for (const auto& t : d.tiers()) {
    const std::string cls(device::TierName(t.class_()));
    if (cls.empty()) continue;
    present.insert(cls);
    Json tier = {{"class", cls},
                 {"capacityBytes", static_cast<int64_t>(t.capacity_bytes())},
                 {"usedBytes", static_cast<int64_t>(t.used_bytes())},
                 {"healthy", t.healthy()}};
    if (!t.healthy()) {
      if (!t.message().empty()) tier["message"] = t.message();
      unhealthy.push_back(cls + (t.message().empty() ? "" : " (" + t.message() + ")"));
    }
    tiers.push_back(std::move(tier));
  }
  status["tiers"] = tiers;

  std::vector<std::string> missing;
  for (const auto& t : device.spec.tiers) {
    if (!present.contains(t.class_)) missing.push_back(t.class_);
  }

  std::string degraded_reason, degraded_msg;
  if (!unhealthy.empty()) {
    degraded_reason = "TierUnhealthy";
    degraded_msg = "unhealthy tiers: " + Join(unhealthy);
  } else if (!missing.empty()) {
    degraded_reason = "TierMissing";
    degraded_msg = "spec.tiers lists classes the device does not have: " + Join(missing);
  } else if (d.state() == pb::DEVICE_STATE_DEGRADED) {
    degraded_reason = "DeviceDegraded";
    degraded_msg = "the device reports itself degraded";
  }
  const bool degraded = !degraded_reason.empty();

  std::string phase;
  switch (d.state()) {
    case pb::DEVICE_STATE_MAINTENANCE:
      phase = "Maintenance";
      break;
    case pb::DEVICE_STATE_ONLINE:
      phase = degraded ? "Degraded" : "Online";
      break;
    case pb::DEVICE_STATE_DEGRADED:
      phase = "Degraded";
      break;
    default:
      phase = "Pending";
      break;
  }
  status["phase"] = phase;

  set("Unreachable", false, "ManagementEndpointReachable", "");
  set("Degraded", degraded, degraded ? degraded_reason : "AllTiersHealthy",
      degraded ? degraded_msg : "");
  const bool ready = !degraded && (phase == "Online" || phase == "Maintenance");
  set("Ready", ready, ready ? "DeviceReady" : (degraded ? degraded_reason : "DeviceNotServing"),
      "device " + d.name() + " (" + d.device_id() + "): " + phase + ", " +
          std::to_string(present.size()) + " tiers, " + Gib(d.used_bytes()) + " of " +
          Gib(d.capacity_bytes()) + " used, " + std::to_string(d.lun_count()) + " LUNs");
  return status;
}

void StorageDeviceReconciler::RecordTransitions(const Json& object, const Json& old_status,
                                                const Json& new_status) {
  auto changed_to_true = [&](const char* type) {
    auto before = kube::FindCondition(old_status, type);
    auto after = kube::FindCondition(new_status, type);
    return after && after->status == "True" && (!before || before->status != "True");
  };
  auto ready_after = kube::FindCondition(new_status, "Ready");
  if (changed_to_true("Unreachable")) {
    events_->Record(object, kube::EventType::kWarning, "DeviceUnreachable",
                    kube::FindCondition(new_status, "Unreachable")->message);
  }
  if (changed_to_true("Degraded")) {
    events_->Record(object, kube::EventType::kWarning, "DeviceDegraded",
                    kube::FindCondition(new_status, "Degraded")->message);
  }
  if (changed_to_true("Ready")) {
    events_->Record(object, kube::EventType::kNormal, "DeviceReady", ready_after->message);
  }
  const std::string old_phase = old_status.value("phase", "");
  const std::string new_phase = new_status.value("phase", "");
  if (!old_phase.empty() && old_phase != new_phase) {
    events_->Record(object,
                    new_phase == "Online" || new_phase == "Maintenance" ? kube::EventType::kNormal
                                                                        : kube::EventType::kWarning,
                    "PhaseChanged", "phase " + old_phase + " -> " + new_phase);
  }
}

Result<ReconcileResult> StorageDeviceReconciler::Reconcile(const std::string& key) {
  std::optional<Json> cached = lookup_(key);
  if (!cached) return ReconcileResult{};  // deleted: nothing of ours to clean up
  Json object = std::move(*cached);
  auto device = StorageDeviceFromJson(object);
  if (!device.ok()) {
    // A StorageDevice being deleted that does not parse: drop its connection if we can read it.
    if (object.is_object() && object.contains("metadata") && object["metadata"].is_object() &&
        object["metadata"].contains("deletionTimestamp") && object.contains("spec") &&
        object["spec"].is_object() && object["spec"].contains("endpoint") &&
        object["spec"]["endpoint"].is_string()) {
      devices_->Forget(object["spec"]["endpoint"].get<std::string>());
    }
    STRATA_RETURN_IF_ERROR(
        ctrl::ReportInvalidObject(*client_, *events_, kube::resources::StorageDevices(),
                                  std::move(object), device.status(), clock_->WallNow()));
    return ReconcileResult{};  // no requeue: only an edit fixes it, and an edit triggers us
  }
  const ReconcileResult again{options_.resync};
  const std::string& endpoint = device->spec.endpoint;
  if (device->metadata.deletion_timestamp) {
    devices_->Forget(endpoint);
    return ReconcileResult{};
  }
  auto observed = devices_->GetDeviceStatus(endpoint, options_.device_timeout);
  Status act_error;
  if (observed.ok()) {
    // spec.desiredState is the truth for Online vs Maintenance; a Degraded device is left alone.
    const std::string& desired = device->spec.desired_state;
    const auto state = observed->state();
    std::optional<storage::v1::DeviceState> want;
    if (desired == "Maintenance" && state == storage::v1::DEVICE_STATE_ONLINE) {
      want = storage::v1::DEVICE_STATE_MAINTENANCE;
    } else if (desired == "Online" && state == storage::v1::DEVICE_STATE_MAINTENANCE) {
      want = storage::v1::DEVICE_STATE_ONLINE;
    }
    if (want) {
      auto changed = devices_->SetDeviceState(
          endpoint, *want, "StorageDevice " + key + " spec.desiredState=" + desired,
          options_.device_timeout);
      if (changed.ok()) {
        events_->Record(object, kube::EventType::kNormal, "DeviceStateChanged",
                        "device put into " + desired + " (spec.desiredState)");
        observed = std::move(changed);
      } else {
        act_error = changed.status();
        events_->Record(object, kube::EventType::kWarning, "DeviceStateChangeFailed",
                        changed.status().message());
      }
    }
  }
  // Recomputed on a fresh copy after a conflict (our cache was behind a spec edit or another
  // writer); transitions are judged against the status the write replaced, not the cache.
  auto written = ctrl::WriteStatus(
      *client_, kube::resources::StorageDevices(), std::move(object),
      [&](const Json& current_object) -> Result<Json> {
        auto current = StorageDeviceFromJson(current_object);
        if (!current.ok()) return current.status();  // the next reconcile reports it
        const Json old_status =
            current_object.contains("status") ? current_object["status"] : Json::object();
        return DesiredStatus(*current, old_status, observed, clock_->WallNow());
      });
  if (!written.ok()) return written.status();
  if (written->changed) {
    const Json& new_status = written->object["status"];
    RecordTransitions(written->object, written->replaced, new_status);
    spdlog::debug("StorageDevice {}: status written (phase {})", key,
                  new_status.value("phase", ""));
  }
  if (written->gone) return ReconcileResult{};
  if (!act_error.ok()) return act_error;  // retried with backoff
  return again;
}

}  // namespace strata::op
