#pragma once

// The BandwidthPolicy reconciler of strata-netd: pods on THIS node (its node-scoped Pod cache),
// found through their attachment records (strata/net/attachment.h), selected by a policy's
// podSelector get the policy's rates on their shaping (cni's bandwidth.h: the code
// `strata-cni-ctl bandwidth set` uses), live, no pod restart.
//
// - Reconcile(policy key) recomputes the policy's whole namespace (which policy wins each pod:
//   bandwidth_policy.h) and applies what differs from the kernel, read back first: after an agent
//   restart nothing is rewritten when the qdiscs already carry the rates (no flap to defaults),
//   and an elastic rate in force is the scaler's starting point.
// - Sample() (every sampleInterval, from a runnable) reads each shaped interface's counters (the
//   host-side veth: its rx is the pod's egress) and feeds the ElasticScaler; a step is applied at
//   once and requeues the policy for its status.
// - Status: status.nodes[<node>] = {pods: {POD: {ingressRateBitsPerSecond,
//   egressRateBitsPerSecond, reason, since}}, overridden: {POD: WINNER}}, merged into the object
//   read back (each agent writes only its node's entry; 409 -> re-read), conditions Ready
//   (InvalidSpec with the field) and Conflicting; written only when it changed and at most once
//   per `status_interval` per policy (500 pods stepping do not flood the apiserver).
// - A pod no policy selects any more loses the qdiscs this agent put there (back to unshaped).
//
// Thread-safety: Reconcile is called by the controller's workers (never twice for one key);
// Sample by one runnable; all shared state behind mu_.

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "strata/cni/bandwidth.h"
#include "strata/controller/reconciler.h"
#include "strata/kube/client.h"
#include "strata/kube/clock.h"
#include "strata/kube/events.h"
#include "strata/kube/store.h"
#include "strata/net/attachment.h"
#include "strata/net/netlink.h"
#include "strata/netd/bandwidth_policy.h"
#include "strata/netd/elastic_scaler.h"

namespace strata::netd {

// What the agent knows of one shaped pod interface.
struct ShapedInterface {
  net::Attachment attachment;
  std::string policy;  // key of the policy in force
  DirectionLimit ingress, egress;
  std::string reason;  // "Policy", "ElasticUp", "ElasticDown", "Restored"
  std::string since;   // RFC 3339
  std::unique_ptr<ElasticScaler> scaler;
  ElasticConfig elastic_config;
  uint64_t last_tx_bits = 0;  // host veth rx = the pod's egress
  kube::TimePoint last_sample{};
  kube::Duration sample_interval{};
  bool sampled = false;
  int host_ifindex = 0;  // the host veth (its qdisc drops)
};

// Counters of one pod interface at the last sample (usage metrics).
struct InterfaceUsage {
  std::string pod_namespace, pod_name, ifname;
  uint64_t rx_bytes = 0, tx_bytes = 0, rx_packets = 0, tx_packets = 0;  // the pod's view
  uint64_t drops = 0;  // link drops both ways + Strata's qdisc drops
};

class BandwidthAgent : public ctrl::Reconciler {
 public:
  struct Options {
    std::string node_name;
    std::string attachments_dir = net::kDefaultAttachmentsDir;
    kube::Duration status_interval = std::chrono::seconds(2);
  };

  // Everything must outlive the agent. `requeue` adds a policy key to the controller's queue.
  BandwidthAgent(kube::ApiClient* client, const kube::Store* policies, const kube::Store* pods,
                 net::NetlinkFactory* netlink, kube::EventRecorder* events, kube::Clock* clock,
                 Options options);

  void SetRequeue(std::function<void(const std::string& key)> requeue) {
    requeue_ = std::move(requeue);
  }

  Result<ctrl::ReconcileResult> Reconcile(const std::string& key) override;

  // One sampling pass (elastic steps, usage); rescans the attachments when the dir changed.
  void Sample();
  // Sample() every `tick` until `stop`.
  void Run(std::stop_token stop, kube::Duration tick = std::chrono::milliseconds(250));

  // The policy keys of `namespace_` (for the Pod watch mapper).
  std::vector<std::string> PolicyKeysIn(const std::string& namespace_) const;
  std::vector<InterfaceUsage> Usage() const;
  // For tests: the interface state by "containerId/ifname".
  std::map<std::string, DirectionLimit> AppliedEgress() const;

 private:
  std::vector<net::Attachment> Attachments();
  Result<net::NetlinkManager*> Host();
  Result<cni::BandwidthLimits> ReadKernel(const net::Attachment& a);
  Status ApplyTo(const net::Attachment& a, const DirectionLimit& ingress,
                 const DirectionLimit& egress, bool* changed, uint64_t* kernel_egress);
  Status RemoveFrom(const net::Attachment& a);
  Status WriteStatusFor(const std::string& key, const kube::Json& object,
                        const kube::Json& node_entry, const Status& invalid);

  kube::ApiClient* const client_;
  const kube::Store* const policies_;
  const kube::Store* const pods_;
  net::NetlinkFactory* const netlink_;
  kube::EventRecorder* const events_;
  kube::Clock* const clock_;
  const Options options_;
  std::function<void(const std::string&)> requeue_;

  mutable std::mutex mu_;
  std::map<std::string, ShapedInterface> shaped_;        // guarded by mu_
  std::vector<net::Attachment> attachments_;             // guarded by mu_
  int64_t attachments_mtime_ns_ = -1;                    // guarded by mu_
  std::map<std::string, kube::TimePoint> last_status_;   // guarded by mu_
  std::map<std::string, std::string> last_status_json_;  // guarded by mu_
  std::set<std::string> conflict_events_;                // guarded by mu_
  std::map<std::string, InterfaceUsage> usage_;          // guarded by mu_
  net::NetlinkManagerPtr host_;                          // guarded by mu_
  kube::TimePoint last_usage_{};                         // guarded by mu_
};

}  // namespace strata::netd
