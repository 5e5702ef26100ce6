#include "strata/cni/bandwidth.h"

#include <string>

#include "strata/cni/netconf.h"
#include "strata/cni/scope_guard.h"

namespace strata::cni {
namespace {

using nlohmann::json;

Status ValidateDirection(uint64_t rate, uint64_t burst, std::string_view prefix,
                         std::string_view dir) {
  const std::string rate_f = std::string(prefix) + std::string(dir) + "Rate";
  const std::string burst_f = std::string(prefix) + std::string(dir) + "Burst";
  if (rate == 0 && burst == 0) return Status::Ok();
  if (rate == 0) return InvalidArgumentError(burst_f + ": set without " + rate_f);
  if (burst == 0) return InvalidArgumentError(rate_f + ": set without " + burst_f);
  if (rate > kMaxRateBits) {
    return InvalidArgumentError(rate_f + ": " + std::to_string(rate) + " bit/s is above the " +
                                std::to_string(kMaxRateBits) + " bit/s tbf can hold");
  }
  if (burst > kMaxRateBits) {
    return InvalidArgumentError(burst_f + ": " + std::to_string(burst) + " bits is above the " +
                                std::to_string(kMaxRateBits) + " bits tbf can hold");
  }
  if (burst / rate >= kMaxBurstSeconds) {
    return InvalidArgumentError(burst_f + ": " + std::to_string(burst) + " bits take over " +
                                std::to_string(kMaxBurstSeconds) + " s to send at " + rate_f + " " +
                                std::to_string(rate) + " bit/s");
  }
  if (burst < 8 * 64) {
    return InvalidArgumentError(burst_f + ": " + std::to_string(burst) +
                                " bits is too small for any packet");
  }
  return Status::Ok();
}

// A burst smaller than one full frame would pass nothing: refuse it with the numbers.
Status CheckBurstFitsMtu(uint64_t burst_bits, const net::LinkInfo& link, std::string_view field) {
  const uint64_t frame = static_cast<uint64_t>(link.mtu) + 14;
  if (link.mtu > 0 && burst_bits / 8 < frame) {
    return InvalidArgumentError(std::string(field) + ": " + std::to_string(burst_bits) + " bits (" +
                                std::to_string(burst_bits / 8) +
                                " bytes) is smaller than one frame on " + link.name + " (MTU " +
                                std::to_string(link.mtu) + " + 14 bytes): nothing could pass");
  }
  return Status::Ok();
}

// OK when Strata may put its tbf at the root of `link`: none there, the kernel's default, or ours.
Status CheckRootFree(net::NetlinkManager& nl, const net::LinkInfo& link) {
  auto root = nl.GetRootQdisc(link.index);
  if (!root.ok()) {
    if (root.status().code() == StatusCode::kNotFound) return Status::Ok();
    return root.status();
  }
  if (root->handle_major == 0 || root->handle_major == net::kStrataQdiscMajor) return Status::Ok();
  return AlreadyExistsError(link.name + " already has a root qdisc '" + root->kind + "' (handle " +
                            std::to_string(root->handle_major) +
                            ":) that Strata did not create; not replacing it");
}

bool HasStrataRoot(net::NetlinkManager& nl, int ifindex) {
  auto root = nl.GetRootQdisc(ifindex);
  return root.ok() && root->handle_major == net::kStrataQdiscMajor;
}

Status RemoveOne(net::NetlinkManager& nl, int ifindex) {
  Status s = nl.DeleteRootQdisc(ifindex, net::kStrataQdiscMajor);
  if (s.code() == StatusCode::kNotFound) return Status::Ok();
  return s;
}

json QdiscJson(net::NetlinkManager& nl, const net::LinkInfo& link) {
  auto root = nl.GetRootQdisc(link.index);
  if (!root.ok() || root->handle_major != net::kStrataQdiscMajor) return nullptr;
  json j = {{"device", link.name},
            {"kind", root->kind},
            {"bytes", root->stats.bytes},
            {"packets", root->stats.packets},
            {"drops", root->stats.drops},
            {"overlimits", root->stats.overlimits},
            {"backlogBytes", root->stats.backlog_bytes}};
  if (root->tbf) {
    j["rateBits"] = root->tbf->rate_bytes_per_sec * 8;
    j["burstBits"] = root->tbf->burst_bytes * 8;
  }
  return j;
}

}  // namespace

Result<BandwidthLimits> ParseLimits(const json& obj, std::string_view prefix) {
  BandwidthLimits l;
  STRATA_ASSIGN_OR_RETURN(auto ir, GetUint(obj, "ingressRate", prefix));
  STRATA_ASSIGN_OR_RETURN(auto ib, GetUint(obj, "ingressBurst", prefix));
  STRATA_ASSIGN_OR_RETURN(auto er, GetUint(obj, "egressRate", prefix));
  STRATA_ASSIGN_OR_RETURN(auto eb, GetUint(obj, "egressBurst", prefix));
  l.ingress_rate = ir.value_or(0);
  l.ingress_burst = ib.value_or(0);
  l.egress_rate = er.value_or(0);
  l.egress_burst = eb.value_or(0);
  STRATA_RETURN_IF_ERROR(ValidateLimits(l, prefix));
  return l;
}

Status ValidateLimits(const BandwidthLimits& l, std::string_view prefix) {
  STRATA_RETURN_IF_ERROR(ValidateDirection(l.ingress_rate, l.ingress_burst, prefix, "ingress"));
  return ValidateDirection(l.egress_rate, l.egress_burst, prefix, "egress");
}

net::TbfSpec TbfFor(uint64_t rate_bits, uint64_t burst_bits) {
  net::TbfSpec t;
  t.rate_bytes_per_sec = rate_bits / 8;
  t.burst_bytes = burst_bits / 8;
  t.limit_bytes = t.burst_bytes + t.rate_bytes_per_sec * kTbfLatencyMs / 1000;
  return t;
}

Result<ShapingTarget> ResolveShapingTarget(net::NetlinkManager& host, net::NetlinkManager& pod,
                                           const std::string& ifname) {
  ShapingTarget t;
  t.host = &host;
  t.pod = &pod;
  STRATA_ASSIGN_OR_RETURN(t.pod_link, pod.GetLink(ifname));
  if (t.pod_link.kind == "veth" && t.pod_link.peer_index > 0) {
    // IFLA_LINK is the peer's index in the peer's namespace; it is ours only if that link
    // points back at the pod link (an index can exist in both namespaces by coincidence).
    auto peer = host.GetLinkByIndex(t.pod_link.peer_index);
    if (peer.ok() && peer->kind == "veth" && peer->peer_index == t.pod_link.index) {
      t.host_link = *peer;
    }
  }
  return t;
}

Status ApplyLimits(const ShapingTarget& t, const BandwidthLimits& l) {
  STRATA_RETURN_IF_ERROR(ValidateLimits(l, ""));
  if (l.ShapesIngress() && !t.host_link) {
    return InvalidArgumentError(
        "ingressRate: shaping traffic to the pod needs a host-side veth "
        "peer; " +
        t.pod_link.name + " (" + (t.pod_link.kind.empty() ? "device" : t.pod_link.kind) +
        ") has none in this namespace");
  }
  if (l.ShapesIngress()) {
    STRATA_RETURN_IF_ERROR(CheckBurstFitsMtu(l.ingress_burst, *t.host_link, "ingressBurst"));
    STRATA_RETURN_IF_ERROR(CheckRootFree(*t.host, *t.host_link));
  }
  if (l.ShapesEgress()) {
    STRATA_RETURN_IF_ERROR(CheckBurstFitsMtu(l.egress_burst, t.pod_link, "egressBurst"));
    STRATA_RETURN_IF_ERROR(CheckRootFree(*t.pod, t.pod_link));
  }
  UndoStack undo;
  if (l.ShapesIngress()) {
    const bool existed = HasStrataRoot(*t.host, t.host_link->index);
    STRATA_RETURN_IF_ERROR(t.host->ReplaceRootTbf(t.host_link->index, net::kStrataQdiscMajor,
                                                  TbfFor(l.ingress_rate, l.ingress_burst)));
    if (!existed) {
      undo.Push([&] { (void)t.host->DeleteRootQdisc(t.host_link->index, net::kStrataQdiscMajor); });
    }
  } else if (t.host_link) {
    STRATA_RETURN_IF_ERROR(RemoveOne(*t.host, t.host_link->index));
  }
  if (l.ShapesEgress()) {
    STRATA_RETURN_IF_ERROR(t.pod->ReplaceRootTbf(t.pod_link.index, net::kStrataQdiscMajor,
                                                 TbfFor(l.egress_rate, l.egress_burst)));
  } else {
    STRATA_RETURN_IF_ERROR(RemoveOne(*t.pod, t.pod_link.index));
  }
  undo.Dismiss();
  return Status::Ok();
}

Status RemoveLimits(const ShapingTarget& t) {
  Status pod = RemoveOne(*t.pod, t.pod_link.index);
  Status host = t.host_link ? RemoveOne(*t.host, t.host_link->index) : Status::Ok();
  return pod.ok() ? host : pod;
}

Result<BandwidthLimits> ReadLimits(const ShapingTarget& t) {
  BandwidthLimits l;
  auto read = [](net::NetlinkManager& nl, int ifindex, uint64_t* rate, uint64_t* burst) -> Status {
    auto root = nl.GetRootQdisc(ifindex);
    if (!root.ok()) {
      return root.status().code() == StatusCode::kNotFound ? Status::Ok() : root.status();
    }
    if (root->handle_major != net::kStrataQdiscMajor || !root->tbf) return Status::Ok();
    *rate = root->tbf->rate_bytes_per_sec * 8;
    *burst = root->tbf->burst_bytes * 8;
    return Status::Ok();
  };
  STRATA_RETURN_IF_ERROR(read(*t.pod, t.pod_link.index, &l.egress_rate, &l.egress_burst));
  if (t.host_link) {
    STRATA_RETURN_IF_ERROR(read(*t.host, t.host_link->index, &l.ingress_rate, &l.ingress_burst));
  }
  return l;
}

bool LimitsMatch(const BandwidthLimits& w, const BandwidthLimits& a) {
  // tbf stores the burst as a time at the rate (in 64 ns ticks): allow 1% + 64 bytes of rounding.
  auto near = [](uint64_t want, uint64_t got) {
    uint64_t diff = want > got ? want - got : got - want;
    return diff <= want / 100 + 64 * 8;
  };
  // Rates are compared in whole bytes per second, as the kernel keeps them.
  return w.ingress_rate / 8 == a.ingress_rate / 8 && w.egress_rate / 8 == a.egress_rate / 8 &&
         (w.ingress_rate == 0 || near(w.ingress_burst, a.ingress_burst)) &&
         (w.egress_rate == 0 || near(w.egress_burst, a.egress_burst));
}

Result<json> ReadCounters(const ShapingTarget& t) {
  STRATA_ASSIGN_OR_RETURN(net::LinkStats s, t.pod->GetLinkStats(t.pod_link.name));
  json j = {{"ifname", t.pod_link.name},
            {"netns", t.pod->netns_path()},
            {"hostPeer", t.host_link ? json(t.host_link->name) : json(nullptr)},
            {"rxBytes", s.rx_bytes},
            {"txBytes", s.tx_bytes},
            {"rxPackets", s.rx_packets},
            {"txPackets", s.tx_packets},
            {"rxDropped", s.rx_dropped},
            {"txDropped", s.tx_dropped},
            {"rxErrors", s.rx_errors},
            {"txErrors", s.tx_errors},
            {"egressQdisc", QdiscJson(*t.pod, t.pod_link)},
            {"ingressQdisc", t.host_link ? QdiscJson(*t.host, *t.host_link) : json(nullptr)}};
  return j;
}

json LimitsToJson(const BandwidthLimits& l) {
  return {{"ingressRate", l.ingress_rate},
          {"ingressBurst", l.ingress_burst},
          {"egressRate", l.egress_rate},
          {"egressBurst", l.egress_burst}};
}

}  // namespace strata::cni
