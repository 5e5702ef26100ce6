#include "strata/netd/virtual_network_config_reconciler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <set>

#include "strata/controller/status.h"
#include "strata/kube/conditions.h"
#include "strata/operator/api/v1alpha1/virtual_network_config.h"

namespace strata::netd {
namespace {

using kube::Json;
namespace api = op::api::v1alpha1;

std::string KeyOf(const std::string& ns, const std::string& name) { return ns + "/" + name; }

// The object as a store record: the CRD's checks (typed decode, defaults applied) and then the
// store's own (addresses parse, families agree, ...). INVALID_ARGUMENT naming the field.
Result<vnc::WorkloadConfig> Decode(const Json& object) {
  STRATA_ASSIGN_OR_RETURN(api::VirtualNetworkConfig typed,
                          api::VirtualNetworkConfigFromJson(object));
  vnc::WorkloadConfig config;
  config.workload.namespace_ = typed.metadata.namespace_;
  config.source = {typed.metadata.namespace_, typed.metadata.name, typed.metadata.uid,
                   typed.metadata.resource_version, typed.metadata.generation.value_or(0)};
  STRATA_RETURN_IF_ERROR(vnc::ParseSpecInto(api::ToJson(typed)["spec"], &config));
  return config;
}

// Whether `object` names `workload` (cheap: before a full decode).
bool Names(const Json& object, const vnc::WorkloadKey& workload) {
  const Json& md = object.value("metadata", Json::object());
  if (md.value("namespace", "") != workload.namespace_) return false;
  const Json spec = object.value("spec", Json::object());
  if (!spec.is_object()) return false;
  const Json w = spec.value("workload", Json::object());
  return w.is_object() && w.value("kind", "") == workload.kind &&
         w.value("name", "") == workload.name;
}

// This node's status.nodes entry from its applied records of object `uid` (null when none).
Json NodeEntry(const std::vector<vnc::AppliedRecord>& records, const std::string& uid,
               const std::string& node) {
  std::vector<const vnc::AppliedRecord*> mine;
  for (const auto& r : records) {
    if (r.source.uid == uid) mine.push_back(&r);
  }
  if (mine.empty()) return nullptr;
  // The newest pod's attachments (during a live migration within one node, two pods may hold it).
  std::sort(mine.begin(), mine.end(), [](const auto* a, const auto* b) {
    return std::tie(a->applied_at, a->container_id, a->ifname) <
           std::tie(b->applied_at, b->container_id, b->ifname);
  });
  const vnc::AppliedRecord& newest = *mine.back();
  Json interfaces = Json::array();
  for (const auto* r : mine) {
    if (r->pod_uid != newest.pod_uid || r->pod_name != newest.pod_name) continue;
    interfaces.push_back({{"name", r->interface}, {"ifname", r->ifname}, {"mac", r->mac}});
  }
  Json entry = {{"node", node},
                {"appliedTime", newest.applied_at},
                {"resourceVersion", newest.source.resource_version},
                {"interfaces", interfaces}};
  if (!newest.pod_name.empty()) entry["pod"] = newest.pod_name;
  return entry;
}

std::string Signature(const std::vector<const vnc::AppliedRecord*>& records) {
  std::vector<std::string> parts;
  for (const auto* r : records) {
    parts.push_back(r->container_id + "|" + r->ifname + "|" + r->mac + "|" +
                    r->source.resource_version + "|" + r->applied_at);
  }
  std::sort(parts.begin(), parts.end());
  std::string out;
  for (const auto& p : parts) out += p + ";";
  return out;
}

}  // namespace

VirtualNetworkConfigReconciler::VirtualNetworkConfigReconciler(
    kube::ApiClient* client, const kube::Store* configs, const vnc::NodeStore* store,
    std::string node, kube::EventRecorder* events, kube::Clock* clock)
    : client_(client),
      configs_(configs),
      store_(store),
      node_(std::move(node)),
      events_(events),
      clock_(clock) {}

std::vector<VirtualNetworkConfigReconciler::Candidate>
VirtualNetworkConfigReconciler::CandidatesFor(const vnc::WorkloadKey& workload) const {
  std::vector<Candidate> out;
  for (const Json& object : configs_->List()) {
    if (!Names(object, workload)) continue;
    if (object["metadata"].contains("deletionTimestamp")) continue;
    auto config = Decode(object);
    if (!config.ok() || config->workload != workload) continue;
    out.push_back({KeyOf(config->source.namespace_, config->source.name), std::move(*config),
                   object["metadata"].value("creationTimestamp", "")});
  }
  std::sort(out.begin(), out.end(), [](const Candidate& a, const Candidate& b) {
    return std::tie(a.created, a.key) < std::tie(b.created, b.key);
  });
  return out;
}

Result<std::string> VirtualNetworkConfigReconciler::ReplicateWorkload(
    const vnc::WorkloadKey& workload) {
  std::vector<Candidate> candidates = CandidatesFor(workload);
  if (candidates.empty()) {
    STRATA_RETURN_IF_ERROR(store_->Remove(workload));
    spdlog::debug("vnc: {}: no configuration; record removed", workload.ToString());
    return std::string();
  }
  const Candidate& governing = candidates.front();
  STRATA_ASSIGN_OR_RETURN(vnc::PutOutcome outcome, store_->Put(governing.config));
  if (outcome == vnc::PutOutcome::kWritten) {
    spdlog::info("vnc: {}: replicated {} (resourceVersion {})", workload.ToString(), governing.key,
                 governing.config.source.resource_version);
  } else if (outcome == vnc::PutOutcome::kStale) {
    // The cache lags a version this agent already stored (a relist in flight): the next event
    // brings the newer one; the store keeps the newer record meanwhile.
    spdlog::debug("vnc: {}: stored record is newer than {}", workload.ToString(), governing.key);
  }
  return governing.key;
}

Result<ctrl::ReconcileResult> VirtualNetworkConfigReconciler::Reconcile(const std::string& key) {
  std::optional<Json> cached = configs_->Get(key);
  if (!cached) {
    // Deleted: the workloads whose record came from this object get the next governing one, or
    // none.
    for (const auto& record : store_->List()) {
      if (KeyOf(record.source.namespace_, record.source.name) != key) continue;
      STRATA_RETURN_IF_ERROR(ReplicateWorkload(record.workload).status());
    }
    return ctrl::ReconcileResult{};
  }
  auto config = Decode(*cached);
  if (!config.ok()) {
    STRATA_RETURN_IF_ERROR(ctrl::ReportInvalidObject(
        *client_, *events_, kube::resources::VirtualNetworkConfigs(), *cached, config.status(),
        clock_->WallNow(), "InvalidSpec", "Error"));
    return ctrl::ReconcileResult{};  // only an edit fixes it, and an edit triggers us
  }
  // spec.workload edited: the record under the old key must go (or pass to another object).
  for (const auto& record : store_->List()) {
    if (record.source.uid == config->source.uid && record.workload != config->workload) {
      STRATA_RETURN_IF_ERROR(ReplicateWorkload(record.workload).status());
    }
  }
  STRATA_ASSIGN_OR_RETURN(std::string governor, ReplicateWorkload(config->workload));
  STRATA_RETURN_IF_ERROR(WriteStatus(*cached, governor == key, governor));
  return ctrl::ReconcileResult{};
}

Status VirtualNetworkConfigReconciler::WriteStatus(const Json& object, bool governing,
                                                   const std::string& governor) {
  const std::string uid = object["metadata"].value("uid", "");
  const Json mine = NodeEntry(store_->ListApplied(), uid, node_);
  const kube::WallTime now = clock_->WallNow();
  auto desired = [&](const Json& current) -> Result<Json> {
    Json status = current.value("status", Json::object());
    if (!status.is_object()) status = Json::object();
    Json nodes = Json::array();
    if (auto it = status.find("nodes"); it != status.end() && it->is_array()) {
      for (const Json& e : *it) {
        if (e.is_object() && e.value("node", "") != node_) nodes.push_back(e);
      }
    }
    if (!mine.is_null()) nodes.push_back(mine);
    std::sort(nodes.begin(), nodes.end(), [](const Json& a, const Json& b) {
      return a.value("node", "") < b.value("node", "");
    });
    if (nodes.empty()) {
      status.erase("nodes");
      status.erase("node");
      status.erase("lastAppliedTime");
      status.erase("interfaces");
      status["phase"] = "Pending";
    } else {
      auto stamp = [](const Json& e) {
        return std::make_pair(e.value("appliedTime", ""), e.value("node", ""));
      };
      const Json* newest = &nodes[0];
      for (const Json& e : nodes) {
        if (stamp(e) > stamp(*newest)) newest = &e;
      }
      status["phase"] = "Applied";
      status["node"] = (*newest)["node"];
      status["lastAppliedTime"] = (*newest)["appliedTime"];
      Json interfaces = Json::array();
      std::set<std::string> seen;
      for (const Json& i : newest->value("interfaces", Json::array())) {
        const std::string name = i.value("name", "");
        if (name.empty() || !seen.insert(name).second) continue;
        Json entry = {{"name", name}};
        if (!i.value("mac", "").empty()) entry["mac"] = i["mac"];
        interfaces.push_back(entry);
      }
      status["interfaces"] = interfaces;
      status["nodes"] = nodes;
    }
    const int64_t generation = current["metadata"].value("generation", int64_t{0});
    status["observedGeneration"] = generation;
    kube::Condition ready{"Ready",      "True",
                          "Replicated", "replicated to the node-local store of every strata-netd",
                          generation,   ""};
    if (!governing) {
      ready.status = "False";
      ready.reason = "WorkloadConflict";
      ready.message = "workload " + current["spec"]["workload"].value("kind", "") + "/" +
                      current["spec"]["workload"].value("name", "") +
                      " is configured by the older VirtualNetworkConfig " + governor +
                      "; this one is not applied";
    }
    kube::SetCondition(status, ready, now);
    return status;
  };
  auto written =
      ctrl::WriteStatus(*client_, kube::resources::VirtualNetworkConfigs(), object, desired);
  return written.ok() ? Status::Ok() : written.status();
}

void VirtualNetworkConfigReconciler::SyncStore(
    const kube::Store* pods, const std::function<void(const std::string&)>& requeue) {
  // Records whose object is gone (or was replaced by one with another uid).
  std::vector<std::string> corrupt;
  for (const auto& record : store_->List(&corrupt)) {
    auto object = configs_->Get(KeyOf(record.source.namespace_, record.source.name));
    if (object && (*object)["metadata"].value("uid", "") == record.source.uid) continue;
    auto s = ReplicateWorkload(record.workload);
    if (!s.ok())
      spdlog::warn("vnc: sync {}: {}", record.workload.ToString(), s.status().ToString());
  }
  for (const auto& path : corrupt) spdlog::warn("vnc: {}: record does not decode", path);
  if (pods) {
    for (const auto& entry : store_->ListPods()) {
      auto pod = pods->Get(KeyOf(entry.namespace_, entry.name));
      if (pod && (*pod)["metadata"].value("uid", "") == entry.uid) continue;
      Status s = store_->RemovePod(entry.namespace_, entry.name);
      if (!s.ok())
        spdlog::warn("vnc: sync pod {}/{}: {}", entry.namespace_, entry.name, s.ToString());
    }
  }
  // Applied records (the CNI's) changed: requeue the objects so their status follows.
  const std::vector<vnc::AppliedRecord> applied = store_->ListApplied();
  std::map<std::string, std::vector<const vnc::AppliedRecord*>> by_uid;
  std::map<std::string, std::string> key_of;
  for (const auto& r : applied) {
    by_uid[r.source.uid].push_back(&r);
    key_of[r.source.uid] = KeyOf(r.source.namespace_, r.source.name);
  }
  std::vector<std::string> keys;
  {
    std::lock_guard lock(mu_);
    std::map<std::string, std::string> next;
    for (const auto& [uid, records] : by_uid) {
      next[uid] = Signature(records);
      auto it = applied_signature_.find(uid);
      if (it == applied_signature_.end() || it->second != next[uid]) keys.push_back(key_of[uid]);
    }
    for (const auto& [uid, sig] : applied_signature_) {
      if (!next.count(uid)) {
        // All of its attachments on this node are gone: find its key in the cache.
        for (const Json& object : configs_->List()) {
          if (object["metadata"].value("uid", "") == uid) keys.push_back(kube::ObjectKey(object));
        }
      }
    }
    applied_signature_ = std::move(next);
  }
  for (const auto& k : keys) requeue(k);
}

void VirtualNetworkConfigReconciler::RunSync(std::stop_token stop, const kube::Store* pods,
                                             const std::function<void(const std::string&)>& requeue,
                                             std::chrono::milliseconds period) {
  std::mutex m;
  std::condition_variable_any cv;
  while (!stop.stop_requested()) {
    SyncStore(pods, requeue);
    std::unique_lock lock(m);
    cv.wait_for(lock, stop, period, [] { return false; });
  }
}

}  // namespace strata::netd
