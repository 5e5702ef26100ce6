#pragma once

// Bandwidth shaping of a pod interface, shared by the strata-bandwidth plugin and the node
// agent's live changes (strata-cni-ctl bandwidth set).
//
// Where the shaping state lives (and why DEL is cheap):
//   ingress (traffic TO the pod)   -> a tbf root qdisc on the HOST side of the pod's veth: that
//                                     device's egress is the pod's ingress;
//   egress  (traffic FROM the pod) -> a tbf root qdisc on the POD side of the veth, inside the
//                                     pod's namespace, where TCP sees back-pressure instead of
//                                     drops.
// No ifb device is created, so nothing has to be torn down but two qdiscs (the reference plugin
// deletes an ifb device on DEL, which is most of its cost). Both qdiscs carry the major handle
// kStrataQdiscMajor, so a DEL removes only qdiscs Strata made. Trade-off: a pod holding
// CAP_NET_ADMIN could remove its own egress qdisc; CHECK reports that.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "strata/common/result.h"
#include "strata/net/netlink.h"

namespace strata::cni {

// Rates in bits per second, bursts in bits: the reference bandwidth plugin's units and names
// (ingressRate, ingressBurst, egressRate, egressBurst). A direction is shaped when its rate is > 0.
struct BandwidthLimits {
  uint64_t ingress_rate = 0, ingress_burst = 0;
  uint64_t egress_rate = 0, egress_burst = 0;
  bool ShapesIngress() const { return ingress_rate > 0; }
  bool ShapesEgress() const { return egress_rate > 0; }
  friend bool operator==(const BandwidthLimits&, const BandwidthLimits&) = default;
};

// tbf's limits as libnl sets them: rate and burst below 2^31 bytes; the burst must drain within
// kMaxBurstSeconds at the rate (tbf keeps it as a 32-bit time).
inline constexpr uint64_t kMaxRateBits = (uint64_t{1} << 31) * 8 - 8;
inline constexpr uint64_t kMaxBurstSeconds = 100;
// The queue a tbf may hold beyond the burst, in time at the rate (the reference plugin's 25 ms).
inline constexpr uint64_t kTbfLatencyMs = 25;

// Reads the four fields from `obj` (absent = 0); `prefix` names where they came from in errors
// ("runtimeConfig.bandwidth."). Checks each direction: rate and burst both or neither, limits.
Result<BandwidthLimits> ParseLimits(const nlohmann::json& obj, std::string_view prefix);
Status ValidateLimits(const BandwidthLimits& limits, std::string_view prefix);

// The tbf for one direction (bytes, limit = burst + kTbfLatencyMs of traffic at the rate).
net::TbfSpec TbfFor(uint64_t rate_bits, uint64_t burst_bits);

// The interface pair one pod attachment is shaped on.
struct ShapingTarget {
  net::NetlinkManager* host = nullptr;  // the host (caller's) namespace
  net::NetlinkManager* pod = nullptr;   // the pod's namespace
  net::LinkInfo pod_link;
  std::optional<net::LinkInfo> host_link;  // the veth peer, when the pod link is a veth whose peer
                                           // is in the host namespace
};

// Finds `ifname` in the pod namespace and its veth peer in the host namespace. NOT_FOUND when the
// pod link does not exist.
Result<ShapingTarget> ResolveShapingTarget(net::NetlinkManager& host, net::NetlinkManager& pod,
                                           const std::string& ifname);

// Makes the kernel match `limits`: creates or changes each shaped direction's tbf in place and
// removes Strata's qdisc from a direction whose rate is 0. Fails without touching anything when a
// direction would need a host peer that does not exist, when a burst is below the link's MTU, or
// when a device already has a root qdisc that Strata did not make. On failure, qdiscs this call
// created are removed again.
Status ApplyLimits(const ShapingTarget& target, const BandwidthLimits& limits);

// Removes Strata's qdiscs from both sides; absent ones are fine.
Status RemoveLimits(const ShapingTarget& target);

// What the kernel holds now (0 for an unshaped direction), in the config's units.
Result<BandwidthLimits> ReadLimits(const ShapingTarget& target);

// True when `actual` (read back) implements `wanted`: rates exact, bursts within the rounding of
// tbf's time-based bucket.
bool LimitsMatch(const BandwidthLimits& wanted, const BandwidthLimits& actual);

// Interface and qdisc counters for usage metering, as JSON:
// {"ifname","netns","hostPeer","rxBytes",..., "egressQdisc":{...}|null, "ingressQdisc":{...}|null}
// (rx/tx from the pod's point of view).
Result<nlohmann::json> ReadCounters(const ShapingTarget& target);

nlohmann::json LimitsToJson(const BandwidthLimits& limits);

}  // namespace strata::cni
