#include "strata/controller/metrics.h"

#include <prometheus/collectable.h>

#include <mutex>

namespace strata::ctrl {

class LeaderCollectable : public prometheus::Collectable {
 public:
  explicit LeaderCollectable(std::string name) : name_(std::move(name)) {}
  void Set(std::function<bool()> f) {
    std::lock_guard g(mu_);
    is_leader_ = std::move(f);
  }
  std::vector<prometheus::MetricFamily> Collect() const override {
    bool leader = true;
    {
      std::lock_guard g(mu_);
      if (is_leader_) leader = is_leader_();
    }
    prometheus::MetricFamily family;
    family.name = name_;
    family.help = "1 while this process holds the leader lease and may run the controllers.";
    family.type = prometheus::MetricType::Gauge;
    prometheus::ClientMetric m;
    m.gauge.value = leader ? 1 : 0;
    family.metric.push_back(std::move(m));
    return {std::move(family)};
  }

 private:
  const std::string name_;
  mutable std::mutex mu_;
  std::function<bool()> is_leader_;  // guarded by mu_
};

Metrics::Metrics(std::string prefix)
    : prefix_(std::move(prefix)), registry_(std::make_shared<prometheus::Registry>()) {
  reconciles_ = &prometheus::BuildCounter()
                     .Name(prefix_ + "_reconcile_total")
                     .Help("Reconciles by controller and result (success, requeue, error).")
                     .Register(*registry_);
  errors_ = &prometheus::BuildCounter()
                 .Name(prefix_ + "_reconcile_errors_total")
                 .Help("Reconciles that returned an error and were requeued with backoff.")
                 .Register(*registry_);
  durations_ = &prometheus::BuildHistogram()
                    .Name(prefix_ + "_reconcile_duration_seconds")
                    .Help("Time spent in one reconcile.")
                    .Register(*registry_);
  depth_ = &prometheus::BuildGauge()
                .Name(prefix_ + "_workqueue_depth")
                .Help("Keys waiting in a controller's work queue (ready plus delayed).")
                .Register(*registry_);
  watch_restarts_ = &prometheus::BuildCounter()
                         .Name(prefix_ + "_watch_restarts_total")
                         .Help("Watches re-established after they ended or failed.")
                         .Register(*registry_);
  relists_ = &prometheus::BuildCounter()
                  .Name(prefix_ + "_relists_total")
                  .Help("Full relists forced by 410 Gone.")
                  .Register(*registry_);
  leader_ = std::make_shared<LeaderCollectable>(prefix_ + "_leader");
}

void Metrics::ObserveReconcile(const std::string& controller, const std::string& result,
                               double seconds) {
  reconciles_->Add({{"controller", controller}, {"result", result}}).Increment();
  if (result == "error") errors_->Add({{"controller", controller}}).Increment();
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  durations_->Add({{"controller", controller}}, kBuckets).Observe(seconds);
}

void Metrics::SetQueueDepth(const std::string& queue, double depth) {
  depth_->Add({{"name", queue}}).Set(depth);
}

void Metrics::AddWatchRestarts(const std::string& resource, double n) {
  watch_restarts_->Add({{"resource", resource}}).Increment(n);
}

void Metrics::AddRelists(const std::string& resource, double n) {
  relists_->Add({{"resource", resource}}).Increment(n);
}

std::shared_ptr<prometheus::Collectable> Metrics::leader_collectable() const { return leader_; }

void Metrics::SetLeaderFunction(std::function<bool()> is_leader) {
  leader_->Set(std::move(is_leader));
}

}  // namespace strata::ctrl
