#include "strata/operator/usage_ledger.h"

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <iterator>
#include <set>
#include <tuple>

#include "strata/device/tier.h"
#include "strata/kube/conditions.h"
#include "strata/kube/errors.h"

namespace strata::op {

namespace {

using api::v1alpha1::DeviceTierUsage;
using api::v1alpha1::IoCounts;
using api::v1alpha1::TierUsage;
using api::v1alpha1::UsageReport;
using api::v1alpha1::UsageReportStatus;
using api::v1alpha1::VolumeUsage;
using kube::Json;

constexpr double kGib = 1024.0 * 1024.0 * 1024.0;

int64_t Delta(uint64_t now, int64_t before) {
  const auto n = static_cast<int64_t>(now);
  return n >= before ? n - before : n;  // a reset counts from zero
}

IoCounts CountersOf(const storage::v1::LunStats& s) {
  return {static_cast<int64_t>(s.read().ops()), static_cast<int64_t>(s.write().ops()),
          static_cast<int64_t>(s.read().bytes()), static_cast<int64_t>(s.write().bytes())};
}

void Add(IoCounts& to, const IoCounts& d) {
  to.read_ops += d.read_ops;
  to.write_ops += d.write_ops;
  to.read_bytes += d.read_bytes;
  to.write_bytes += d.write_bytes;
}

DeviceTierUsage& UsageOf(UsageReportStatus& s, const std::string& device, const std::string& tier) {
  for (auto& u : s.usage) {
    if (u.device == device && u.tier == tier) return u;
  }
  s.usage.push_back({device, tier, 0, 0});
  return s.usage.back();
}

// The totals derived from status.usage and the volume lines.
void Summarize(UsageReportStatus& s) {
  std::map<std::string, TierUsage> tiers;
  double gib_hours = 0, cost = 0;
  for (const auto& u : s.usage) {
    TierUsage& t = tiers[u.tier];
    t.tier = u.tier;
    t.gib_hours += u.gib_hours;
    t.cost += u.cost;
    gib_hours += u.gib_hours;
    cost += u.cost;
  }
  s.gib_hours = gib_hours;
  s.total_cost = cost;
  if (!s.io) s.io = IoCounts{};
  s.tiers.clear();
  for (auto& [_, t] : tiers) s.tiers.push_back(t);
  std::sort(s.usage.begin(), s.usage.end(), [](const DeviceTierUsage& a, const DeviceTierUsage& b) {
    return std::tie(a.device, a.tier) < std::tie(b.device, b.tier);
  });
  s.volume_count = static_cast<int64_t>(s.volumes.size());
  int64_t logical = 0, unique = 0, exclusive = 0, shared = 0;
  for (const auto& v : s.volumes) {
    logical += v.logical_bytes;
    unique += v.unique_bytes;
    exclusive += v.exclusive_bytes;
    shared += v.shared_bytes;
  }
  s.logical_bytes = logical;
  s.unique_bytes = unique;
  s.exclusive_bytes = exclusive;
  s.shared_bytes = shared;
}

}  // namespace

// Reads the ledger's state at scrape time (see the header).
class UsageLedger::Metrics : public prometheus::Collectable {
 public:
  explicit Metrics(const UsageLedger* ledger) : ledger_(ledger) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    auto family = [](const char* name, const char* help, prometheus::MetricType type) {
      prometheus::MetricFamily f;
      f.name = name;
      f.help = help;
      f.type = type;
      return f;
    };
    auto gib = family("strata_usage_gib_hours_total",
                      "Provisioned GiB-hours of a namespace's volumes per device and tier.",
                      prometheus::MetricType::Counter);
    auto cost = family("strata_usage_cost_total",
                       "Cost of those GiB-hours at the StorageDevice's tier price.",
                       prometheus::MetricType::Counter);
    auto logical = family("strata_usage_logical_bytes",
                          "Bytes a namespace's volumes hold as clients see them.",
                          prometheus::MetricType::Gauge);
    auto unique = family("strata_usage_unique_bytes",
                         "Bytes a namespace's volumes take after de-duplication.",
                         prometheus::MetricType::Gauge);
    auto exclusive = family("strata_usage_exclusive_bytes",
                            "Bytes of a namespace's volumes that nothing else holds.",
                            prometheus::MetricType::Gauge);
    auto shared = family("strata_usage_shared_bytes",
                         "Bytes of a namespace's volumes shared with snapshots, clones or dedup.",
                         prometheus::MetricType::Gauge);
    auto snapshot = family("strata_usage_snapshot_bytes",
                           "Bytes only a namespace's snapshots hold (what deleting them frees).",
                           prometheus::MetricType::Gauge);
    auto dev_gib =
        family("strata_device_usage_gib_hours_total",
               "GiB-hours per device and tier, all namespaces.", prometheus::MetricType::Counter);
    auto dev_cost =
        family("strata_device_usage_cost_total", "Cost per device and tier, all namespaces.",
               prometheus::MetricType::Counter);
    auto metric = [](std::vector<prometheus::ClientMetric::Label> labels, double value,
                     bool counter) {
      prometheus::ClientMetric m;
      m.label = std::move(labels);
      if (counter) {
        m.counter.value = value;
      } else {
        m.gauge.value = value;
      }
      return m;
    };
    std::map<std::pair<std::string, std::string>, std::pair<double, double>> devices;
    {
      std::lock_guard g(ledger_->mu_);
      for (const auto& [ns, n] : ledger_->namespaces_) {
        for (const auto& u : n.status.usage) {
          gib.metric.push_back(metric({{"namespace", ns}, {"tier", u.tier}, {"device", u.device}},
                                      u.gib_hours, true));
          cost.metric.push_back(
              metric({{"namespace", ns}, {"tier", u.tier}, {"device", u.device}}, u.cost, true));
          auto& d = devices[{u.device, u.tier}];
          d.first += u.gib_hours;
          d.second += u.cost;
        }
        logical.metric.push_back(metric(
            {{"namespace", ns}}, static_cast<double>(n.status.logical_bytes.value_or(0)), false));
        unique.metric.push_back(metric(
            {{"namespace", ns}}, static_cast<double>(n.status.unique_bytes.value_or(0)), false));
        exclusive.metric.push_back(metric(
            {{"namespace", ns}}, static_cast<double>(n.status.exclusive_bytes.value_or(0)), false));
        shared.metric.push_back(metric(
            {{"namespace", ns}}, static_cast<double>(n.status.shared_bytes.value_or(0)), false));
        snapshot.metric.push_back(metric(
            {{"namespace", ns}}, static_cast<double>(n.status.snapshot_bytes.value_or(0)), false));
      }
    }
    for (const auto& [k, v] : devices) {
      dev_gib.metric.push_back(metric({{"device", k.first}, {"tier", k.second}}, v.first, true));
      dev_cost.metric.push_back(metric({{"device", k.first}, {"tier", k.second}}, v.second, true));
    }
    return {gib, cost, logical, unique, exclusive, shared, snapshot, dev_gib, dev_cost};
  }

 private:
  const UsageLedger* const ledger_;
};

UsageLedger::UsageLedger(kube::ApiClient* client, Options options, kube::Clock* clock)
    : client_(client),
      options_(options),
      clock_(clock),
      collectable_(std::make_shared<Metrics>(this)) {}

std::optional<UsageReportStatus> UsageLedger::Report(const std::string& ns) const {
  std::lock_guard g(mu_);
  auto it = namespaces_.find(ns);
  if (it == namespaces_.end()) return std::nullopt;
  return it->second.status;
}

bool UsageLedger::Load(const std::string& ns, kube::WallTime taken) {
  {
    std::lock_guard g(mu_);
    if (namespaces_.contains(ns)) return true;
  }
  Namespace n;
  Json object;
  auto got = client_->Get(api::v1alpha1::UsageReports(), ns, api::v1alpha1::kUsageReportName);
  if (got.ok()) {
    auto report = api::v1alpha1::UsageReportFromJson(*got);
    if (report.ok() && report->status.last_update) {
      n.status = report->status;  // resume: the lines are the previous observation
      spdlog::info("usage ledger: {} resumes from its report ({} GiB-h up to {})", ns,
                   n.status.gib_hours.value_or(0), *n.status.last_update);
    } else if (!report.ok()) {
      spdlog::warn("usage ledger: {}/usage does not parse ({}); starting a new window", ns,
                   report.status().message());
    }
    object = *got;
  } else if (!kube::IsNotFound(got.status())) {
    spdlog::warn("usage ledger: reading {}/usage: {}; retried on the next sweep", ns,
                 got.status().message());
    return false;
  }
  if (!n.status.window_start) n.status.window_start = kube::FormatMicroTime(taken);
  n.urgent = true;
  written_[ns].object = std::move(object);
  std::lock_guard g(mu_);
  namespaces_.emplace(ns, std::move(n));
  return true;
}

void UsageLedger::Integrate(Namespace& n, const std::string& ns, const InventorySnapshot& current) {
  UsageReportStatus& s = n.status;
  std::optional<kube::WallTime> last;
  if (s.last_update) last = kube::ParseTime(*s.last_update);
  const double hours = last && current.taken > *last
                           ? std::chrono::duration<double>(current.taken - *last).count() / 3600.0
                           : 0.0;

  std::map<std::string, VolumeUsage> before;
  for (auto& v : s.volumes) before.emplace(v.pvc, std::move(v));
  std::vector<VolumeUsage> after;
  std::set<std::string> seen;
  for (const auto& [key, ref] : current.by_pvc) {
    if (key.first != ns) continue;
    const storage::v1::Lun* lun = current.Lun(ref);
    const DeviceView* device = current.Device(ref.device);
    if (lun == nullptr || device == nullptr) continue;
    const std::string tier(device::TierName(lun->tier()));
    const DeviceView::Tier* t = device->FindTier(tier);
    const storage::v1::LunStats* stats = current.Stats(ref);
    seen.insert(key.second);

    VolumeUsage v;
    auto prev = before.find(key.second);
    const bool known = prev != before.end();
    if (known) {
      v = prev->second;
      // The interval since the previous observation, billed as things were then.
      const double gib_hours = static_cast<double>(v.size_bytes) / kGib * hours;
      const double cost = gib_hours * v.price_per_gib_hour;
      DeviceTierUsage& u = UsageOf(s, v.device, v.tier);
      u.gib_hours += gib_hours;
      u.cost += cost;
      v.gib_hours += gib_hours;
      v.cost += cost;
      if (stats) {
        const IoCounts now = CountersOf(*stats);
        const bool moved = v.device != ref.device || v.lun != lun->name();
        IoCounts d;
        d.read_ops = moved ? now.read_ops : Delta(now.read_ops, v.counters.read_ops);
        d.write_ops = moved ? now.write_ops : Delta(now.write_ops, v.counters.write_ops);
        d.read_bytes = moved ? now.read_bytes : Delta(now.read_bytes, v.counters.read_bytes);
        d.write_bytes = moved ? now.write_bytes : Delta(now.write_bytes, v.counters.write_bytes);
        Add(v.io, d);
        if (!s.io) s.io = IoCounts{};
        Add(*s.io, d);
        v.counters = now;
      }
      if (v.tier != tier || v.device != ref.device) n.urgent = true;
    } else {
      v.pvc = key.second;
      v.first_seen = kube::FormatMicroTime(current.taken);
      if (stats) v.counters = CountersOf(*stats);  // counted from here
      n.urgent = true;
    }
    v.device = ref.device;
    v.lun = lun->name();
    v.tier = tier;
    v.size_bytes = static_cast<int64_t>(lun->size_bytes());
    v.price_per_gib_hour = t ? t->price_per_gib_hour : 0;
    v.logical_bytes = static_cast<int64_t>(lun->space().logical_bytes());
    v.unique_bytes = static_cast<int64_t>(lun->space().unique_bytes());
    v.exclusive_bytes = static_cast<int64_t>(lun->space().exclusive_bytes());
    v.shared_bytes = static_cast<int64_t>(lun->space().shared_bytes());
    v.snapshot_bytes = static_cast<int64_t>(lun->space().snapshot_bytes());
    after.push_back(std::move(v));
  }
  // Volumes on a device that does not answer now: kept as they were, not billed meanwhile.
  for (auto& [pvc, v] : before) {
    if (seen.contains(pvc)) continue;
    const DeviceView* device = current.Device(v.device);
    if (device && !device->reachable) {
      after.push_back(std::move(v));
    } else {
      n.urgent = true;  // gone
    }
  }
  std::sort(after.begin(), after.end(),
            [](const VolumeUsage& a, const VolumeUsage& b) { return a.pvc < b.pvc; });
  s.volumes = std::move(after);
  // Snapshot space by owner (the namespace), snapshots of deleted volumes included; a device
  // that does not answer keeps its last figure.
  for (const auto& [name, device] : current.devices) {
    if (!device.reachable) continue;
    int64_t bytes = 0;
    for (const auto& o : device.status.owners()) {
      if (o.owner() == ns) bytes += static_cast<int64_t>(o.space().snapshot_bytes());
    }
    if (bytes > 0) {
      n.snapshot_bytes[name] = bytes;
    } else {
      n.snapshot_bytes.erase(name);
    }
  }
  for (auto it = n.snapshot_bytes.begin(); it != n.snapshot_bytes.end();) {
    it = current.devices.contains(it->first) ? std::next(it) : n.snapshot_bytes.erase(it);
  }
  int64_t snapshot_bytes = 0;
  for (const auto& [_, b] : n.snapshot_bytes) snapshot_bytes += b;
  s.snapshot_bytes = snapshot_bytes;
  s.last_update = kube::FormatMicroTime(current.taken);
  Summarize(s);
}

void UsageLedger::OnSweep(const InventorySnapshot&, const InventorySnapshot& current) {
  std::lock_guard work(work_mu_);
  std::set<std::string> owners;
  for (const auto& [key, _] : current.by_pvc) owners.insert(key.first);
  for (const auto& ns : owners) Load(ns, current.taken);
  const auto now = clock_->Now();
  std::vector<std::pair<std::string, UsageReportStatus>> due;
  {
    std::lock_guard g(mu_);
    for (auto& [ns, n] : namespaces_) {
      Integrate(n, ns, current);
      const Written& w = written_[ns];
      if (!n.urgent && w.at && now - *w.at < options_.write_interval) continue;
      due.emplace_back(ns, n.status);
      n.urgent = false;
    }
  }
  for (const auto& [ns, status] : due) {
    if (Status st = Write(ns, status); !st.ok()) {
      spdlog::warn("usage ledger: writing {}/usage: {}; retried on the next sweep", ns,
                   st.message());
      std::lock_guard g(mu_);
      namespaces_[ns].urgent = true;
    }
  }
}

Status UsageLedger::Flush() {
  std::lock_guard work(work_mu_);
  std::vector<std::pair<std::string, UsageReportStatus>> all;
  {
    std::lock_guard g(mu_);
    for (const auto& [ns, n] : namespaces_) all.emplace_back(ns, n.status);
  }
  Status first;
  for (const auto& [ns, status] : all) {
    if (Status st = Write(ns, status); !st.ok() && first.ok()) first = st;
  }
  return first;
}

Status UsageLedger::Write(const std::string& ns, const UsageReportStatus& status_in) {
  const auto& resource = api::v1alpha1::UsageReports();
  Written& w = written_[ns];
  if (w.object.is_null()) {
    UsageReport report;
    report.metadata.name = std::string(api::v1alpha1::kUsageReportName);
    report.metadata.namespace_ = ns;
    report.metadata.labels["app.kubernetes.io/managed-by"] = "strata-operator";
    auto created = client_->Create(resource, ns, api::v1alpha1::ToJson(report));
    if (!created.ok() && kube::IsAlreadyExists(created.status())) {
      created = client_->Get(resource, ns, api::v1alpha1::kUsageReportName);
    }
    if (!created.ok()) return created.status();
    w.object = *created;
  }
  UsageReport desired;
  desired.status = status_in;
  const Json status = api::v1alpha1::ToJson(desired).value("status", Json::object());
  // We are the only writer: on a conflict, re-read and write our state again.
  for (int attempt = 0;; ++attempt) {
    Json object = w.object;
    object["status"] = status;
    auto written = client_->UpdateStatus(resource, object);
    if (written.ok()) {
      w.object = *written;
      break;
    }
    if (kube::IsNotFound(written.status())) {
      w.object = Json();  // deleted under us: created again on the next write
      return written.status();
    }
    if (!kube::IsConflict(written.status()) || attempt >= 3) return written.status();
    auto fresh = client_->Get(resource, ns, api::v1alpha1::kUsageReportName);
    if (!fresh.ok()) return fresh.status();
    w.object = *fresh;
  }
  w.at = clock_->Now();
  return Status::Ok();
}

}  // namespace strata::op
