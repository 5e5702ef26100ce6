#include "strata/netd/usage_metrics.h"

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>

#include <array>
#include <map>

namespace strata::netd {
namespace {

struct Sums {
  double rx_bytes = 0, tx_bytes = 0, rx_packets = 0, tx_packets = 0, drops = 0;
  void Add(const InterfaceUsage& u) {
    rx_bytes += static_cast<double>(u.rx_bytes);
    tx_bytes += static_cast<double>(u.tx_bytes);
    rx_packets += static_cast<double>(u.rx_packets);
    tx_packets += static_cast<double>(u.tx_packets);
    drops += static_cast<double>(u.drops);
  }
};

class UsageCollectable : public prometheus::Collectable {
 public:
  explicit UsageCollectable(std::function<std::vector<InterfaceUsage>()> usage)
      : usage_(std::move(usage)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::map<std::pair<std::string, std::string>, Sums> pods;
    std::map<std::string, Sums> namespaces;
    for (const auto& u : usage_()) {
      if (u.pod_name.empty()) continue;
      pods[{u.pod_namespace, u.pod_name}].Add(u);
      namespaces[u.pod_namespace].Add(u);
    }
    struct Field {
      const char* name;
      const char* help;
      double Sums::*value;
    };
    const std::array<Field, 5> fields = {{
        {"receive_bytes_total", "bytes received by the pod", &Sums::rx_bytes},
        {"transmit_bytes_total", "bytes sent by the pod", &Sums::tx_bytes},
        {"receive_packets_total", "packets received by the pod", &Sums::rx_packets},
        {"transmit_packets_total", "packets sent by the pod", &Sums::tx_packets},
        {"drops_total", "packets dropped on the pod's interfaces and their shaping", &Sums::drops},
    }};
    std::vector<prometheus::MetricFamily> out;
    for (const auto& f : fields) {
      prometheus::MetricFamily pod;
      pod.name = std::string("strata_netd_pod_") + f.name;
      pod.help = std::string("Per pod on this node: ") + f.help;
      pod.type = prometheus::MetricType::Counter;
      for (const auto& [k, s] : pods) {
        prometheus::ClientMetric m;
        m.label = {{"namespace", k.first}, {"pod", k.second}};
        m.counter.value = s.*(f.value);
        pod.metric.push_back(std::move(m));
      }
      out.push_back(std::move(pod));
      prometheus::MetricFamily ns;
      ns.name = std::string("strata_netd_namespace_") + f.name;
      ns.help = std::string("Per namespace, pods on this node: ") + f.help;
      ns.type = prometheus::MetricType::Counter;
      for (const auto& [n, s] : namespaces) {
        prometheus::ClientMetric m;
        m.label = {{"namespace", n}};
        m.counter.value = s.*(f.value);
        ns.metric.push_back(std::move(m));
      }
      out.push_back(std::move(ns));
    }
    return out;
  }

 private:
  std::function<std::vector<InterfaceUsage>()> usage_;
};

}  // namespace

std::shared_ptr<prometheus::Collectable> NewUsageCollectable(
    std::function<std::vector<InterfaceUsage>()> usage) {
  return std::make_shared<UsageCollectable>(std::move(usage));
}

}  // namespace strata::netd
