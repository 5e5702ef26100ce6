#pragma once

// The NBD server's limit counters as Prometheus counters, read at every scrape.

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <string>
#include <utility>
#include <vector>

#include "strata/nbd/server.h"

namespace strata::storage {

// REQUIRES: the server outlives the collector's registration (remove it from the
// Exposer before the server goes away).
class NbdCollector final : public prometheus::Collectable {
 public:
  NbdCollector(const nbd::NbdServer* server, std::string device)
      : server_(server), device_(std::move(device)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    nbd::NbdServerCounters c = server_->counters();
    prometheus::MetricFamily refused{"strata_nbd_connections_refused_total",
                                     "NBD connections refused or closed by a limit, by limit",
                                     prometheus::MetricType::Counter,
                                     {}};
    auto add = [&](const char* limit, uint64_t v) {
      prometheus::ClientMetric m;
      m.label = {{"device", device_}, {"limit", limit}};
      m.counter.value = static_cast<double>(v);
      refused.metric.push_back(std::move(m));
    };
    add("max_connections", c.refused_server_full);
    add("per_client", c.refused_client_limit);
    add("per_export", c.refused_export_limit);
    add("handshake_timeout", c.handshake_timeouts);
    add("idle_timeout", c.idle_timeouts);
    add("send_timeout", c.send_timeouts);
    prometheus::MetricFamily open{"strata_nbd_connections",
                                  "NBD connections open (handshake or transmission)",
                                  prometheus::MetricType::Gauge,
                                  {}};
    prometheus::ClientMetric m;
    m.label = {{"device", device_}};
    m.gauge.value = server_->connection_count();
    open.metric.push_back(std::move(m));
    return {refused, open};
  }

 private:
  const nbd::NbdServer* const server_;
  const std::string device_;
};

}  // namespace strata::storage
