#pragma once

// BandwidthPolicy as strata-netd acts on it: the spec checked beyond what the CRD schema can say,
// and the rule that picks one policy when several select a pod. Pure functions.
//
// Conflict rule: when two or more BandwidthPolicies of a namespace select the same pod, the
// OLDEST wins (metadata.creationTimestamp; equal timestamps: the lexically smaller name), as
// Istio resolves conflicting configs. It is deterministic on every node and across restarts, and a
// new policy never silently takes pods away from one already in force. The losers get a
// Conflicting condition and an Event naming the pod and the winner.

#include <optional>
#include <string>
#include <vector>

#include "strata/common/result.h"
#include "strata/kube/client.h"
#include "strata/kube/labels.h"
#include "strata/netd/elastic_scaler.h"

namespace strata::netd {

struct DirectionLimit {
  uint64_t rate_bits = 0;   // 0: the direction is not shaped
  uint64_t burst_bits = 0;  // set whenever rate_bits is
};

struct PolicySpec {
  std::string namespace_;
  std::string name;
  std::string creation_timestamp;  // RFC 3339 (compares as text)
  int64_t generation = 0;
  kube::LabelSelector selector;
  std::vector<std::string> interfaces;  // empty: every recorded attachment of the pod
  DirectionLimit ingress;
  DirectionLimit egress;  // with elastic: the starting rate (0: minRate)
  std::optional<ElasticConfig> elastic;
  kube::Duration sample_interval = std::chrono::seconds(1);

  std::string Key() const { return namespace_ + "/" + name; }
  bool AppliesTo(const std::string& ifname) const;
};

// The default burst for a rate with none given: 20 ms of traffic, at least 64 KiB (a burst below
// a few frames makes tbf under-run its rate; a large one lets short measurements overshoot).
uint64_t DefaultBurstBits(uint64_t rate_bits);

// Parses and checks a BandwidthPolicy. INVALID_ARGUMENT naming the field (e.g.
// "spec.elastic.minRateBitsPerSecond: 9000000 is above spec.elastic.maxRateBitsPerSecond
// 1000000") for anything the agent cannot apply: schema violations, min > max, lowWater >=
// highWater, a rate above what tbf can hold, neither ingress, egress nor elastic given.
Result<PolicySpec> ParsePolicy(const kube::Json& object);

// The index in `candidates` of the policy that wins a pod (see the rule above). REQUIRES: not
// empty.
size_t ChooseWinner(const std::vector<const PolicySpec*>& candidates);

}  // namespace strata::netd
