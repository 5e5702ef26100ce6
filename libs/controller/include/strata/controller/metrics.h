#pragma once

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <string>

namespace strata::ctrl {

class LeaderCollectable;

// A controller manager's Prometheus metrics: PREFIX_reconcile_total, _reconcile_errors_total,
// _reconcile_duration_seconds, _workqueue_depth (per controller), _watch_restarts_total and
// _relists_total (per informer), _leader. The prefix names the process ("strata_operator",
// "strata_netd"). Families are created once; label children on first use. Thread-safe
// (prometheus-cpp's metrics are).
class Metrics {
 public:
  explicit Metrics(std::string prefix = "strata_operator");

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // result: "success", "requeue", "error".
  void ObserveReconcile(const std::string& controller, const std::string& result, double seconds);
  void SetQueueDepth(const std::string& queue, double depth);
  // Adds to the counters of one informer (callers pass deltas of the informer's stats).
  void AddWatchRestarts(const std::string& resource, double n);
  void AddRelists(const std::string& resource, double n);
  // strata_operator_leader is evaluated at scrape time from `is_leader` (with leader election,
  // LeaderElector::IsLeader, which also turns false the moment a frozen leader's renew deadline
  // has passed); without it the gauge reads 1.
  void SetLeaderFunction(std::function<bool()> is_leader);
  // The collectable serving strata_operator_leader; register it beside registry().
  std::shared_ptr<prometheus::Collectable> leader_collectable() const;

 private:
  const std::string prefix_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* reconciles_;
  prometheus::Family<prometheus::Counter>* errors_;
  prometheus::Family<prometheus::Histogram>* durations_;
  prometheus::Family<prometheus::Gauge>* depth_;
  prometheus::Family<prometheus::Counter>* watch_restarts_;
  prometheus::Family<prometheus::Counter>* relists_;
  std::shared_ptr<LeaderCollectable> leader_;
};

}  // namespace strata::ctrl
