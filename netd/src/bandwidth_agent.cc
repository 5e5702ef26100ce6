#include "strata/netd/bandwidth_agent.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include "strata/cni/bandwidth.h"
#include "strata/controller/status.h"
#include "strata/kube/conditions.h"
#include "strata/kube/errors.h"
#include "strata/kube/labels.h"

namespace strata::netd {
namespace {

using kube::Json;

std::string Rfc3339(kube::WallTime t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string InterfaceId(const net::Attachment& a) { return a.container_id + "/" + a.ifname; }

std::string StatusPodKey(const net::Attachment& a) {
  return a.ifname == "eth0" ? a.pod_name : a.pod_name + "/" + a.ifname;
}

cni::BandwidthLimits ToLimits(const DirectionLimit& in, const DirectionLimit& out) {
  cni::BandwidthLimits l;
  l.ingress_rate = in.rate_bits;
  l.ingress_burst = in.rate_bits ? in.burst_bits : 0;
  l.egress_rate = out.rate_bits;
  l.egress_burst = out.rate_bits ? out.burst_bits : 0;
  return l;
}

}  // namespace

BandwidthAgent::BandwidthAgent(kube::ApiClient* client, const kube::Store* policies,
                               const kube::Store* pods, net::NetlinkFactory* netlink,
                               kube::EventRecorder* events, kube::Clock* clock, Options options)
    : client_(client),
      policies_(policies),
      pods_(pods),
      netlink_(netlink),
      events_(events),
      clock_(clock),
      options_(std::move(options)) {}

std::vector<net::Attachment> BandwidthAgent::Attachments() {
  // REQUIRES: mu_ held. Rescans only when the dir changed (a record is created or unlinked, so
  // the dir's mtime moves): 500 pods sampled every second do not mean 500 file reads a second.
  struct stat st {};
  int64_t mtime = -2;
  if (::stat(options_.attachments_dir.c_str(), &st) == 0) {
    mtime = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  }
  if (mtime != attachments_mtime_ns_ || mtime == -2) {
    auto list = net::ListAttachments(options_.attachments_dir);
    if (list.ok()) {
      attachments_ = std::move(*list);
      attachments_mtime_ns_ = mtime;
    } else {
      spdlog::warn("attachments: {}", list.status().ToString());
    }
  }
  return attachments_;
}

Result<net::NetlinkManager*> BandwidthAgent::Host() {
  // REQUIRES: mu_ held. One socket in the agent's own namespace for every host-side call.
  if (!host_) {
    STRATA_ASSIGN_OR_RETURN(host_, netlink_->Open(""));
  }
  return host_.get();
}

Result<cni::BandwidthLimits> BandwidthAgent::ReadKernel(const net::Attachment& a) {
  STRATA_ASSIGN_OR_RETURN(net::NetlinkManager * host, Host());
  STRATA_ASSIGN_OR_RETURN(auto pod, netlink_->Open(a.netns));
  STRATA_ASSIGN_OR_RETURN(cni::ShapingTarget target,
                          cni::ResolveShapingTarget(*host, *pod, a.ifname));
  return cni::ReadLimits(target);
}

Status BandwidthAgent::ApplyTo(const net::Attachment& a, const DirectionLimit& ingress,
                               const DirectionLimit& egress, bool* changed,
                               uint64_t* kernel_egress) {
  STRATA_ASSIGN_OR_RETURN(net::NetlinkManager * host, Host());
  STRATA_ASSIGN_OR_RETURN(auto pod, netlink_->Open(a.netns));
  STRATA_ASSIGN_OR_RETURN(cni::ShapingTarget target,
                          cni::ResolveShapingTarget(*host, *pod, a.ifname));
  STRATA_ASSIGN_OR_RETURN(cni::BandwidthLimits now, cni::ReadLimits(target));
  if (kernel_egress != nullptr) *kernel_egress = now.egress_rate;
  const cni::BandwidthLimits want = ToLimits(ingress, egress);
  *changed = !cni::LimitsMatch(want, now);
  if (!*changed) return Status::Ok();
  return cni::ApplyLimits(target, want);
}

Status BandwidthAgent::RemoveFrom(const net::Attachment& a) {
  STRATA_ASSIGN_OR_RETURN(net::NetlinkManager * host, Host());
  auto pod = netlink_->Open(a.netns);
  if (!pod.ok()) return pod.status().code() == StatusCode::kNotFound ? Status::Ok() : pod.status();
  auto target = cni::ResolveShapingTarget(*host, **pod, a.ifname);
  if (!target.ok()) {
    return target.status().code() == StatusCode::kNotFound ? Status::Ok() : target.status();
  }
  return cni::RemoveLimits(*target);
}

std::vector<std::string> BandwidthAgent::PolicyKeysIn(const std::string& ns) const {
  std::vector<std::string> keys;
  for (const auto& p : policies_->List()) {
    if (p["metadata"].value("namespace", "") == ns) keys.push_back(kube::ObjectKey(p));
  }
  return keys;
}

Result<ctrl::ReconcileResult> BandwidthAgent::Reconcile(const std::string& key) {
  const std::string ns = kube::SplitKey(key).first;
  std::lock_guard lock(mu_);  // coarse: netlink calls are short, and Sample shares the state
  const auto attachments = Attachments();

  std::vector<PolicySpec> valid;
  Status key_invalid;
  std::optional<Json> key_object;
  for (const auto& p : policies_->List()) {
    if (p["metadata"].value("namespace", "") != ns) continue;
    auto spec = ParsePolicy(p);
    if (kube::ObjectKey(p) == key) {
      key_object = p;
      if (!spec.ok()) key_invalid = spec.status();
    }
    if (spec.ok()) valid.push_back(std::move(*spec));
  }

  Json node_pods = Json::object();
  Json overridden = Json::object();
  Status first_error;
  const std::string now = Rfc3339(clock_->WallNow());
  std::set<std::string> seen;
  for (const auto& a : attachments) {
    if (a.pod_namespace != ns || a.pod_name.empty()) continue;
    const std::string id = InterfaceId(a);
    seen.insert(id);
    auto pod = pods_->Get(ns + "/" + a.pod_name);
    // Only pods the node-scoped cache holds (this node's), and the incarnation that made the
    // record (a record left by a crashed DEL of an older pod of that name is not this pod's).
    const bool ours =
        pod && (a.pod_uid.empty() || (*pod)["metadata"].value("uid", "") == a.pod_uid);
    std::vector<const PolicySpec*> candidates;
    if (ours) {
      const auto labels = kube::LabelsOf(*pod);
      for (const auto& p : valid) {
        if (p.selector.Matches(labels) && p.AppliesTo(a.ifname)) candidates.push_back(&p);
      }
    }
    auto it = shaped_.find(id);
    if (candidates.empty()) {
      if (it != shaped_.end()) {
        if (Status s = RemoveFrom(a); !s.ok() && first_error.ok()) first_error = s;
        shaped_.erase(it);
      }
      continue;
    }
    const PolicySpec& winner = *candidates[ChooseWinner(candidates)];
    for (const PolicySpec* c : candidates) {
      if (c == &winner) continue;
      if (c->Key() == key) overridden[StatusPodKey(a)] = winner.name;
      const std::string ev = c->Key() + "|" + id + "|" + winner.name;
      if (events_ != nullptr && conflict_events_.insert(ev).second) {
        if (auto obj = policies_->Get(c->Key())) {
          events_->Record(*obj, kube::EventType::kWarning, "Overridden",
                          "pod " + a.pod_name + " (" + a.ifname + ") is also selected by " +
                              winner.name + ", which is older and wins");
        }
      }
    }

    DirectionLimit egress = winner.egress;
    ShapedInterface fresh;
    ShapedInterface& st = it != shaped_.end() ? it->second : fresh;
    const bool same_policy = it != shaped_.end() && st.policy == winner.Key();
    if (winner.elastic) {
      if (same_policy && st.scaler && st.elastic_config == *winner.elastic) {
        egress.rate_bits = st.scaler->rate();
        egress.burst_bits = DefaultBurstBits(egress.rate_bits);
      }
    }
    bool changed = false;
    uint64_t kernel_egress = 0;
    if (winner.elastic && !(same_policy && st.scaler && st.elastic_config == *winner.elastic)) {
      // A new scaler starts from the rate in force when it is in range (agent restart, policy
      // edit): read the kernel first, apply after.
      if (auto k = ReadKernel(a); k.ok()) kernel_egress = k->egress_rate;
      const uint64_t start = kernel_egress != 0 ? kernel_egress : winner.egress.rate_bits;
      st.scaler = std::make_unique<ElasticScaler>(*winner.elastic, start);
      st.elastic_config = *winner.elastic;
      st.sampled = false;
      egress.rate_bits = st.scaler->rate();
      egress.burst_bits = DefaultBurstBits(egress.rate_bits);
    } else if (!winner.elastic) {
      st.scaler.reset();
    }
    Status s = ApplyTo(a, winner.ingress, egress, &changed, nullptr);
    if (!s.ok()) {
      spdlog::warn("bandwidth {}: pod {}/{} {}: {}", winner.Key(), ns, a.pod_name, a.ifname,
                   s.ToString());
      if (first_error.ok()) first_error = s;
      continue;
    }
    if (changed || !same_policy || st.since.empty()) {
      st.reason = changed ? "Policy" : (it == shaped_.end() ? "Restored" : "Policy");
      st.since = now;
    }
    if (st.host_ifindex == 0 && !a.host_interface.empty()) {
      if (auto h = Host(); h.ok()) {
        if (auto l = (*h)->GetLink(a.host_interface); l.ok()) st.host_ifindex = l->index;
      }
    }
    st.attachment = a;
    st.policy = winner.Key();
    st.ingress = winner.ingress;
    st.egress = egress;
    st.sample_interval = winner.sample_interval;
    if (it == shaped_.end()) shaped_.emplace(id, std::move(fresh));
    if (winner.Key() == key) {
      node_pods[StatusPodKey(a)] = {{"ingressRateBitsPerSecond", winner.ingress.rate_bits},
                                    {"egressRateBitsPerSecond", egress.rate_bits},
                                    {"reason", shaped_.at(id).reason},
                                    {"since", shaped_.at(id).since}};
    }
  }
  // Records gone (DEL) or of pods gone: forget them (the kernel's links went with the pod).
  for (auto it = shaped_.begin(); it != shaped_.end();) {
    if (it->second.attachment.pod_namespace == ns && !seen.count(it->first)) {
      it = shaped_.erase(it);
    } else {
      ++it;
    }
  }

  if (!key_object) return ctrl::ReconcileResult{};  // deleted: its pods were handled above
  Json node_entry = Json::object();
  if (!node_pods.empty()) node_entry["pods"] = node_pods;
  if (!overridden.empty()) node_entry["overridden"] = overridden;
  if (!key_invalid.ok()) {
    // Ready=False InvalidSpec naming the field, once per generation, and a Warning Event; the
    // policy selects nothing until an edit fixes it.
    if (events_ != nullptr) {
      STRATA_RETURN_IF_ERROR(ctrl::ReportInvalidObject(
          *client_, *events_, kube::resources::BandwidthPolicies(), *key_object, key_invalid,
          clock_->WallNow(), "InvalidSpec", "Error"));
    }
    last_status_json_.erase(key);
    return ctrl::ReconcileResult{};
  }
  const std::string fingerprint =
      node_entry.dump() + "|" +
      std::to_string((*key_object)["metadata"].value("generation", int64_t{0}));
  ctrl::ReconcileResult result;
  auto last = last_status_.find(key);
  if (last_status_json_[key] != fingerprint) {
    const auto t = clock_->Now();
    if (last != last_status_.end() && t - last->second < options_.status_interval) {
      result.requeue_after = options_.status_interval - (t - last->second);
    } else {
      STRATA_RETURN_IF_ERROR(WriteStatusFor(key, *key_object, node_entry, Status::Ok()));
      last_status_[key] = t;
      last_status_json_[key] = fingerprint;
    }
  }
  if (!first_error.ok()) return first_error;
  return result;
}

Status BandwidthAgent::WriteStatusFor(const std::string& key, const Json& object,
                                      const Json& node_entry, const Status&) {
  const std::string node = options_.node_name;
  const kube::WallTime now = clock_->WallNow();
  auto desired = [&](const Json& obj) -> Result<Json> {
    Json status = obj.value("status", Json::object());
    if (!status.is_object()) status = Json::object();
    Json nodes = status.value("nodes", Json::object());
    if (node_entry.empty()) {
      nodes.erase(node);
    } else {
      nodes[node] = node_entry;
    }
    if (nodes.empty()) {
      status.erase("nodes");
    } else {
      status["nodes"] = nodes;
    }
    // Conflicting from every node's view, so agents agree on it.
    std::string conflicts;
    int64_t applied = 0;
    for (const auto& [n, entry] : nodes.items()) {
      const Json lost = entry.value("overridden", Json::object());  // items() needs an lvalue
      for (const auto& [pod, winner] : lost.items()) {
        if (!conflicts.empty()) conflicts += ", ";
        conflicts += pod + " (node " + n + ") -> " + winner.get<std::string>();
      }
      applied += static_cast<int64_t>(entry.value("pods", Json::object()).size());
    }
    status["phase"] = "Applied";
    status["appliedPods"] = applied;
    status["observedGeneration"] = obj["metadata"].value("generation", int64_t{0});
    const int64_t generation = obj["metadata"].value("generation", int64_t{0});
    kube::SetCondition(
        status, {"Ready", "True", "Applied", "rates applied by strata-netd", generation, ""}, now);
    if (conflicts.empty()) {
      kube::SetCondition(status, {"Conflicting", "False", "NoConflict", "", generation, ""}, now);
    } else {
      kube::SetCondition(
          status,
          {"Conflicting", "True", "OverriddenByOlderPolicy",
           "pods selected by an older BandwidthPolicy, which wins: " + conflicts, generation, ""},
          now);
    }
    return status;
  };
  auto w = ctrl::WriteStatus(*client_, kube::resources::BandwidthPolicies(), object, desired);
  if (!w.ok()) return w.status().WithContext("status of " + key);
  return Status::Ok();
}

void BandwidthAgent::Sample() {
  std::vector<std::string> requeue;
  {
    std::lock_guard lock(mu_);
    const auto attachments = Attachments();
    auto host = Host();
    if (!host.ok()) {
      spdlog::warn("sample: {}", host.status().ToString());
      return;
    }
    const kube::TimePoint now = clock_->Now();
    const bool usage_due = now - last_usage_ >= std::chrono::seconds(1);
    if (usage_due) last_usage_ = now;
    std::set<std::string> live;
    for (const auto& a : attachments) {
      const std::string id = InterfaceId(a);
      live.insert(id);
      if (a.host_interface.empty()) continue;
      auto it = shaped_.find(id);
      const bool elastic_due =
          it != shaped_.end() && it->second.scaler &&
          (!it->second.sampled || now - it->second.last_sample >= it->second.sample_interval);
      if (!usage_due && !elastic_due) continue;
      auto stats = (*host)->GetLinkStats(a.host_interface);
      if (!stats.ok()) continue;  // the pod is going
      InterfaceUsage& u = usage_[id];
      u.pod_namespace = a.pod_namespace;
      u.pod_name = a.pod_name;
      u.ifname = a.ifname;
      // The host end's rx is what the pod sent.
      u.tx_bytes = stats->rx_bytes;
      u.tx_packets = stats->rx_packets;
      u.rx_bytes = stats->tx_bytes;
      u.rx_packets = stats->tx_packets;
      u.drops = stats->rx_dropped + stats->tx_dropped;

      if (it == shaped_.end()) continue;
      ShapedInterface& st = it->second;
      if (usage_due && st.host_ifindex > 0) {
        if (auto q = (*host)->GetRootQdisc(st.host_ifindex);
            q.ok() && q->handle_major == net::kStrataQdiscMajor) {
          u.drops += q->stats.drops;
        }
      }
      if (!st.scaler) continue;
      const uint64_t bits = stats->rx_bytes * 8;
      if (!st.sampled) {
        st.last_tx_bits = bits;
        st.last_sample = now;
        st.sampled = true;
        continue;
      }
      if (now - st.last_sample < st.sample_interval) continue;
      const uint64_t sent = bits >= st.last_tx_bits ? bits - st.last_tx_bits : 0;
      auto step = st.scaler->Observe(sent, now - st.last_sample, now);
      st.last_tx_bits = bits;
      st.last_sample = now;
      if (!step) continue;
      DirectionLimit egress{step->to_rate_bits, DefaultBurstBits(step->to_rate_bits)};
      bool changed = false;
      Status s = ApplyTo(a, st.ingress, egress, &changed, nullptr);
      if (!s.ok()) {
        spdlog::warn("elastic {}: pod {}/{}: {}", st.policy, a.pod_namespace, a.pod_name,
                     s.ToString());
        continue;
      }
      spdlog::info("elastic {}: pod {}/{} {}: {} -> {} bit/s at {:.0f}% use", st.policy,
                   a.pod_namespace, a.pod_name, a.ifname, step->from_rate_bits, step->to_rate_bits,
                   step->utilization_percent);
      st.egress = egress;
      st.reason = step->direction == ElasticStep::Direction::kUp ? "ElasticUp" : "ElasticDown";
      st.since = Rfc3339(clock_->WallNow());
      requeue.push_back(st.policy);
    }
    bool gone = false;
    for (auto it = usage_.begin(); it != usage_.end();) {
      if (live.count(it->first)) {
        ++it;
      } else {
        it = usage_.erase(it);
      }
    }
    for (auto it = shaped_.begin(); it != shaped_.end();) {
      if (live.count(it->first)) {
        ++it;
      } else {
        requeue.push_back(it->second.policy);
        it = shaped_.erase(it);
        gone = true;
      }
    }
    (void)gone;
  }
  if (requeue_) {
    for (const auto& k : requeue) requeue_(k);
  }
}

void BandwidthAgent::Run(std::stop_token stop, kube::Duration tick) {
  int64_t seen_mtime = -1;
  while (clock_->SleepFor(tick, stop)) {
    Sample();
    // A new or removed record: every policy of that namespace may have pods to shape.
    int64_t mtime;
    {
      std::lock_guard lock(mu_);
      mtime = attachments_mtime_ns_;
    }
    if (mtime != seen_mtime) {
      seen_mtime = mtime;
      if (requeue_) {
        for (const auto& p : policies_->List()) requeue_(kube::ObjectKey(p));
      }
    }
  }
}

std::vector<InterfaceUsage> BandwidthAgent::Usage() const {
  std::lock_guard lock(mu_);
  std::vector<InterfaceUsage> out;
  for (const auto& [id, u] : usage_) out.push_back(u);
  return out;
}

std::map<std::string, DirectionLimit> BandwidthAgent::AppliedEgress() const {
  std::lock_guard lock(mu_);
  std::map<std::string, DirectionLimit> out;
  for (const auto& [id, s] : shaped_) out[id] = s.egress;
  return out;
}

}  // namespace strata::netd
