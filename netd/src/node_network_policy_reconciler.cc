#include "strata/netd/node_network_policy_reconciler.h"

#include <spdlog/spdlog.h>

#include <set>

#include "strata/controller/status.h"
#include "strata/kube/conditions.h"
#include "strata/kube/errors.h"
#include "strata/kube/labels.h"

namespace strata::netd {
namespace {

using kube::Json;

Result<kube::LabelSelector> NodeSelectorOf(const Json& policy) {
  const Json* sel = nullptr;
  if (policy.contains("spec") && policy["spec"].is_object() &&
      policy["spec"].contains("nodeSelector")) {
    sel = &policy["spec"]["nodeSelector"];
  }
  return kube::LabelSelectorFromJson(sel ? *sel : Json(), "spec.nodeSelector");
}

}  // namespace

NodeNetworkPolicyReconciler::NodeNetworkPolicyReconciler(kube::ApiClient* client,
                                                         const kube::Store* policies,
                                                         const kube::Store* nodes,
                                                         UplinkAgent* agent, std::string node_name,
                                                         kube::Clock* clock)
    : client_(client),
      policies_(policies),
      nodes_(nodes),
      agent_(agent),
      node_name_(std::move(node_name)),
      clock_(clock) {}

Result<ctrl::ReconcileResult> NodeNetworkPolicyReconciler::Reconcile(const std::string& key) {
  const std::string name = kube::SplitKey(key).second;
  auto object = policies_->Get(key);
  if (!object || (*object)["metadata"].contains("deletionTimestamp")) {
    STRATA_RETURN_IF_ERROR(agent_->Remove(name));
    return ctrl::ReconcileResult{};
  }
  const int64_t generation = (*object)["metadata"].value("generation", int64_t{0});
  std::map<std::string, std::string> labels;
  if (auto node = nodes_->Get(node_name_)) labels = kube::LabelsOf(*node);

  auto selector = NodeSelectorOf(*object);
  if (!selector.ok()) {
    STRATA_RETURN_IF_ERROR(WriteNodeStatus(
        name, ReadyCondition(false, "InvalidSpec", selector.status().message(), generation)));
    return ctrl::ReconcileResult{};
  }
  if (!selector->Matches(labels)) {
    STRATA_RETURN_IF_ERROR(agent_->Remove(name));
    STRATA_RETURN_IF_ERROR(RemoveNodeStatus(name));
    return ctrl::ReconcileResult{};
  }

  // The conflict rule (see the header): every other policy selecting this node.
  std::string others;
  for (const Json& p : policies_->List()) {
    const std::string other = p["metadata"].value("name", "");
    if (other == name || p["metadata"].contains("deletionTimestamp")) continue;
    auto s = NodeSelectorOf(p);
    if (s.ok() && s->Matches(labels)) others += (others.empty() ? "" : ", ") + other;
  }
  if (!others.empty()) {
    STRATA_RETURN_IF_ERROR(WriteNodeStatus(
        name,
        ReadyCondition(false, "Conflict",
                       "node " + node_name_ + " is also selected by NodeNetworkPolicy " + others +
                           "; a node takes one NodeNetworkPolicy, so none is changed on it until "
                           "only one selects it",
                       generation)));
    return ctrl::ReconcileResult{};
  }

  auto policy = api::NodeNetworkPolicyFromJson(*object);
  Status applied = policy.ok() ? Status::Ok() : policy.status();
  std::vector<std::string> changes;
  if (applied.ok()) {
    applied = agent_->Apply(name, policy->metadata.uid, policy->spec, &changes);
  }
  for (const std::string& c : changes) {
    spdlog::info("NodeNetworkPolicy {}: {}", name, c);
  }
  if (!applied.ok()) {
    const bool invalid = applied.code() == StatusCode::kInvalidArgument;
    STRATA_RETURN_IF_ERROR(
        WriteNodeStatus(name, ReadyCondition(false, invalid ? "InvalidSpec" : "ApplyFailed",
                                             applied.message(), generation)));
    // Only an edit (or a change on the node, seen at the next resync) fixes a bad spec.
    if (invalid) return ctrl::ReconcileResult{kResync};
    return applied;
  }
  // A sample here may also catch another policy's change (a failover): report those too, since
  // the sampler will not see them as changed again.
  for (const std::string& other : agent_->Sample()) {
    if (other == name) continue;
    Status s = WriteNodeStatus(other, std::nullopt);
    if (!s.ok()) spdlog::warn("NodeNetworkPolicy {}: status: {}", other, s.ToString());
  }
  STRATA_RETURN_IF_ERROR(WriteNodeStatus(
      name,
      ReadyCondition(true, "Applied", "the live bond and bridge match the policy", generation)));
  return ctrl::ReconcileResult{kResync};
}

Status NodeNetworkPolicyReconciler::CollectOrphans() {
  for (const std::string& name : agent_->Owned()) {
    if (!policies_->Get(name)) {
      spdlog::info("NodeNetworkPolicy {} is gone: tearing down what it created", name);
      STRATA_RETURN_IF_ERROR(agent_->Remove(name));
    }
  }
  return Status::Ok();
}

void NodeNetworkPolicyReconciler::SampleAndReport() {
  for (const std::string& name : agent_->Sample()) {
    Status s = WriteNodeStatus(name, std::nullopt);
    if (!s.ok()) spdlog::warn("NodeNetworkPolicy {}: status: {}", name, s.ToString());
  }
}

Status NodeNetworkPolicyReconciler::WriteNodeStatus(const std::string& name,
                                                    const std::optional<kube::Condition>& ready) {
  auto object = policies_->Get(name);
  if (!object) return Status::Ok();
  const auto observed = agent_->Observed(name);
  const kube::WallTime now = clock_->WallNow();
  auto desired = [&](const Json& obj) -> Result<Json> {
    Json status =
        obj.contains("status") && obj["status"].is_object() ? obj["status"] : Json::object();
    Json nodes =
        status.contains("nodes") && status["nodes"].is_array() ? status["nodes"] : Json::array();
    Json entry = {{"nodeName", node_name_}};
    for (const Json& n : nodes) {
      if (n.value("nodeName", "") == node_name_) entry = n;
    }
    Json fresh = NodeUplinkEntry(node_name_, entry, observed, ready, now);
    Json out = Json::array();
    bool placed = false;
    for (const Json& n : nodes) {
      if (n.value("nodeName", "") == node_name_) {
        out.push_back(fresh);
        placed = true;
      } else {
        out.push_back(n);
      }
    }
    if (!placed) out.push_back(fresh);
    status["nodes"] = std::move(out);
    return status;
  };
  auto written =
      ctrl::WriteStatus(*client_, kube::resources::NodeNetworkPolicies(), *object, desired);
  return written.ok() ? Status::Ok() : written.status();
}

Status NodeNetworkPolicyReconciler::RemoveNodeStatus(const std::string& name) {
  auto object = policies_->Get(name);
  if (!object) return Status::Ok();
  auto desired = [&](const Json& obj) -> Result<Json> {
    Json status =
        obj.contains("status") && obj["status"].is_object() ? obj["status"] : Json::object();
    if (!status.contains("nodes") || !status["nodes"].is_array()) return status;
    Json out = Json::array();
    for (const Json& n : status["nodes"]) {
      if (n.value("nodeName", "") != node_name_) out.push_back(n);
    }
    if (out.empty()) {
      status.erase("nodes");
    } else {
      status["nodes"] = std::move(out);
    }
    return status;
  };
  auto written =
      ctrl::WriteStatus(*client_, kube::resources::NodeNetworkPolicies(), *object, desired);
  return written.ok() ? Status::Ok() : written.status();
}

}  // namespace strata::netd
