#pragma once

// The network half of pay-per-use: per pod and per namespace bytes and packets in and out and
// drops, from each pod interface's host-side veth counters (and Strata's qdisc drops), as the
// agent's last sample saw them. Built at scrape time from the current attachments, so the series
// of a deleted pod disappear with it (bounded cardinality: labels namespace, pod).
//
//   strata_netd_pod_{receive,transmit}_{bytes,packets}_total{namespace,pod}   (the pod's view)
//   strata_netd_pod_drops_total{namespace,pod}
//   strata_netd_namespace_{receive,transmit}_{bytes,packets}_total{namespace}
//   strata_netd_namespace_drops_total{namespace}
//
// Thread-safe (Collect runs on the exposer's thread).

#include <prometheus/collectable.h>

#include <functional>
#include <memory>
#include <vector>

#include "strata/netd/bandwidth_agent.h"

namespace strata::netd {

std::shared_ptr<prometheus::Collectable> NewUsageCollectable(
    std::function<std::vector<InterfaceUsage>()> usage);

}  // namespace strata::netd
