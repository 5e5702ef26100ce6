#include "strata/netd/uplink_agent.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

namespace strata::netd {

UplinkAgent::UplinkAgent(net::NetlinkFactory* netlink, Env* env, std::string state_path,
                         std::shared_ptr<prometheus::Registry> registry, kube::Clock* clock,
                         ResolveOptions resolve)
    : netlink_(netlink),
      state_(env, std::move(state_path)),
      clock_(clock),
      resolve_(std::move(resolve)),
      registry_(std::move(registry)) {
  uplink_up_ = &prometheus::BuildGauge()
                    .Name("strata_netd_uplink_up")
                    .Help("1 when the uplink is a port of its bond and has carrier")
                    .Register(*registry_);
  active_slave_ =
      &prometheus::BuildGauge()
           .Name("strata_netd_bond_active_slave")
           .Help("1 for the bond's active slave (active-backup), 0 for its other uplinks")
           .Register(*registry_);
  failovers_ = &prometheus::BuildCounter()
                    .Name("strata_netd_bond_failovers_total")
                    .Help("Changes of a bond's active slave seen by this agent")
                    .Register(*registry_);
}

Status UplinkAgent::Start() {
  std::lock_guard lock(mu_);
  STRATA_ASSIGN_OR_RETURN(owned_, state_.Load());
  STRATA_ASSIGN_OR_RETURN(nl_, netlink_->Open(""));
  return Status::Ok();
}

Status UplinkAgent::Apply(const std::string& policy, const std::string& uid,
                          const api::NodeNetworkPolicySpec& spec,
                          std::vector<std::string>* changes) {
  std::lock_guard lock(mu_);
  STRATA_ASSIGN_OR_RETURN(UplinkPlan plan, ResolveUplinkPlan(spec, *nl_, resolve_));
  UplinkOwnership before = owned_[policy];
  UplinkOwnership& owned = owned_[policy];
  owned.policy_uid = uid;
  Status applied = ApplyUplinkPlan(plan, *nl_, &owned, changes);
  if (!(owned == before)) STRATA_RETURN_IF_ERROR(state_.Save(owned_));
  STRATA_RETURN_IF_ERROR(applied);
  auto it = applied_.find(policy);
  if (it != applied_.end() &&
      (it->second.plan.bond.name != plan.bond.name || it->second.plan.uplinks != plan.uplinks)) {
    ClearMetricsLocked(it->second.plan);
  }
  Applied_& a = applied_[policy];
  a.plan = std::move(plan);
  return Status::Ok();
}

Status UplinkAgent::Remove(const std::string& policy) {
  std::lock_guard lock(mu_);
  auto a = applied_.find(policy);
  if (a != applied_.end()) {
    ClearMetricsLocked(a->second.plan);
    applied_.erase(a);
  }
  auto it = owned_.find(policy);
  if (it == owned_.end()) return Status::Ok();
  STRATA_RETURN_IF_ERROR(TeardownUplinks(it->second, *nl_));
  owned_.erase(it);
  return state_.Save(owned_);
}

std::vector<std::string> UplinkAgent::Owned() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [name, o] : owned_) out.push_back(name);
  return out;
}

bool UplinkAgent::Applied(const std::string& policy) const {
  std::lock_guard lock(mu_);
  return applied_.count(policy) != 0;
}

std::vector<std::string> UplinkAgent::Sample() {
  std::lock_guard lock(mu_);
  std::vector<std::string> changed;
  for (auto& [name, a] : applied_) {
    UplinkObservation o = ObserveUplinks(a.plan, *nl_);
    const bool differs = !a.sampled || o.active_slave != a.last.active_slave ||
                         o.uplink_up != a.last.uplink_up || o.bond_present != a.last.bond_present ||
                         o.bridge_present != a.last.bridge_present;
    if (a.sampled && !a.last.active_slave.empty() && o.active_slave != a.last.active_slave) {
      a.failovers++;
      a.last_failover_time = kube::FormatTime(clock_->WallNow());
      failovers_->Add({{"bond", a.plan.bond.name}}).Increment();
    }
    a.last = std::move(o);
    a.sampled = true;
    UpdateMetricsLocked(a);
    if (differs) changed.push_back(name);
  }
  return changed;
}

std::optional<api::NodeUplinkStatus> UplinkAgent::Observed(const std::string& policy) const {
  std::lock_guard lock(mu_);
  auto it = applied_.find(policy);
  if (it == applied_.end()) return std::nullopt;
  const Applied_& a = it->second;
  api::NodeUplinkStatus s;
  s.bond_present = a.last.bond_present;
  if (a.plan.bridge) s.bridge_present = a.last.bridge_present;
  if (!a.last.active_slave.empty()) s.active_slave = a.last.active_slave;
  s.failovers = a.failovers;
  s.last_failover_time = a.last_failover_time;
  for (const std::string& u : a.plan.uplinks) {
    api::UplinkStatus us;
    us.name = u;
    auto up = a.last.uplink_up.find(u);
    us.link_state = up != a.last.uplink_up.end() && up->second ? "up" : "down";
    auto mac = a.last.uplink_mac.find(u);
    if (mac != a.last.uplink_mac.end()) us.mac_address = mac->second;
    s.uplinks.push_back(std::move(us));
  }
  return s;
}

void UplinkAgent::UpdateMetricsLocked(const Applied_& a) {
  const std::string& bond = a.plan.bond.name;
  failovers_->Add({{"bond", bond}});  // present (at 0) from the first sample on
  for (const std::string& u : a.plan.uplinks) {
    auto up = a.last.uplink_up.find(u);
    uplink_up_->Add({{"bond", bond}, {"slave", u}})
        .Set(up != a.last.uplink_up.end() && up->second ? 1 : 0);
    active_slave_->Add({{"bond", bond}, {"slave", u}}).Set(a.last.active_slave == u ? 1 : 0);
  }
}

void UplinkAgent::ClearMetricsLocked(const UplinkPlan& plan) {
  for (const std::string& u : plan.uplinks) {
    uplink_up_->Remove(&uplink_up_->Add({{"bond", plan.bond.name}, {"slave", u}}));
    active_slave_->Remove(&active_slave_->Add({{"bond", plan.bond.name}, {"slave", u}}));
  }
}

kube::Condition ReadyCondition(bool status, std::string reason, std::string message,
                               int64_t generation) {
  kube::Condition c;
  c.type = "Ready";
  c.status = status ? "True" : "False";
  c.reason = std::move(reason);
  c.message = std::move(message);
  c.observed_generation = generation;
  return c;
}

kube::Json NodeUplinkEntry(const std::string& node, const kube::Json& previous,
                           const std::optional<api::NodeUplinkStatus>& observed,
                           const std::optional<kube::Condition>& ready, kube::WallTime now) {
  using kube::Json;
  Json fresh = {{"nodeName", node}};
  if (previous.is_object()) {
    if (previous.contains("conditions")) fresh["conditions"] = previous["conditions"];
    if (previous.contains("observedGeneration")) {
      fresh["observedGeneration"] = previous["observedGeneration"];
    }
  }
  if (ready) {
    fresh["observedGeneration"] = ready->observed_generation;
    kube::SetCondition(fresh, *ready, now);
  }
  if (!observed) {
    kube::RemoveCondition(fresh, "Degraded");
    return fresh;
  }
  fresh["bondPresent"] = observed->bond_present.value_or(false);
  if (observed->bridge_present) fresh["bridgePresent"] = *observed->bridge_present;
  if (observed->active_slave) fresh["activeSlave"] = *observed->active_slave;
  fresh["failovers"] = observed->failovers.value_or(0);
  if (observed->last_failover_time) fresh["lastFailoverTime"] = *observed->last_failover_time;
  Json uplinks = Json::array();
  std::string message;
  for (const api::UplinkStatus& u : observed->uplinks) {
    Json j = {{"name", u.name}, {"linkState", u.link_state.value_or("down")}};
    if (u.mac_address) j["macAddress"] = *u.mac_address;
    uplinks.push_back(std::move(j));
    if (u.link_state != "up") message += (message.empty() ? "uplink down: " : ", ") + u.name;
  }
  if (!uplinks.empty()) fresh["uplinks"] = std::move(uplinks);
  if (!observed->bond_present.value_or(false)) message = "the bond is missing";
  kube::Condition d;
  d.type = "Degraded";
  d.status = message.empty() ? "False" : "True";
  d.reason = message.empty() ? "AllUplinksUp" : "UplinkDown";
  d.message = message.empty() ? "every uplink is up" : message;
  d.observed_generation = fresh.value("observedGeneration", int64_t{0});
  kube::SetCondition(fresh, d, now);
  return fresh;
}

}  // namespace strata::netd
