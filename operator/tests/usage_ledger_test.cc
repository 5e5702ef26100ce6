// UsageLedger on hand-built inventory snapshots and an in-memory API: GiB-hours and cost against
// a hand computation across a tier move and a price change, I/O deltas across a counter reset,
// metrics whose sum over namespaces is the device totals, write throttling, and resuming from the
// report after a restart.
#include "strata/operator/usage_ledger.h"

#include <gtest/gtest.h>
#include <prometheus/metric_family.h>

#include "strata/kube/conditions.h"
#include "strata/kube/testing/fake_api_client.h"

namespace strata::op {
namespace {

using api::v1alpha1::UsageReportStatus;
using kube::Json;
namespace pb = storage::v1;
using std::chrono::hours;
using std::chrono::seconds;

struct Vol {
  std::string ns, pvc, device;
  pb::TierClass tier;
  uint64_t size;
  uint64_t reads = 0;
  uint64_t logical = 0, unique = 0;
  uint64_t exclusive = 0, shared = 0, snapshot = 0;
};

const kube::WallTime kT0 = kube::WallTime{} + std::chrono::hours(24 * 365 * 56);

class UsageLedgerTest : public ::testing::Test {
 protected:
  // Prices per device: ssd, sata.
  std::map<std::string, std::pair<double, double>> prices_ = {{"dev-a", {1.0, 0.1}},
                                                              {"dev-b", {2.0, 0.5}}};
  std::set<std::string> unreachable_;
  // Per device: owner -> bytes only that owner's snapshots hold (DeviceStatus.owners).
  std::map<std::string, std::map<std::string, uint64_t>> owner_snapshots_;
  uint64_t sweep_ = 0;

  InventorySnapshot Snap(kube::WallTime taken, const std::vector<Vol>& vols) {
    InventorySnapshot s;
    s.sweep = ++sweep_;
    s.taken = taken;
    for (const auto& [name, p] : prices_) {
      DeviceView d;
      d.name = name;
      d.reachable = !unreachable_.contains(name);
      d.tiers = {{"ssd", 100ull << 30, 0, p.first, true},
                 {"sata", 100ull << 30, 0, p.second, true}};
      for (const auto& [owner, bytes] : owner_snapshots_[name]) {
        auto* o = d.status.add_owners();
        o->set_owner(owner);
        o->mutable_space()->set_snapshot_bytes(bytes);
      }
      s.devices[name] = d;
    }
    for (const auto& v : vols) {
      DeviceView& d = s.devices[v.device];
      if (!d.reachable) continue;
      pb::Lun lun;
      lun.set_name("lun-" + v.ns + "-" + v.pvc);
      lun.set_tier(v.tier);
      lun.set_size_bytes(v.size);
      lun.mutable_space()->set_logical_bytes(v.logical);
      lun.mutable_space()->set_unique_bytes(v.unique);
      lun.mutable_space()->set_exclusive_bytes(v.exclusive);
      lun.mutable_space()->set_shared_bytes(v.shared);
      lun.mutable_space()->set_snapshot_bytes(v.snapshot);
      d.luns.push_back(lun);
      pb::LunStats st;
      st.mutable_read()->set_ops(v.reads);
      st.mutable_read()->set_bytes(v.reads * 4096);
      d.stats[lun.name()] = st;
      s.by_pvc[{v.ns, v.pvc}] = VolumeRef{v.device, lun.name()};
    }
    return s;
  }

  // Feeds `sweeps` to `ledger` in order.
  void Feed(UsageLedger& ledger, const std::vector<InventorySnapshot>& sweeps) {
    InventorySnapshot prev;
    for (const auto& s : sweeps) {
      ledger.OnSweep(prev, s);
      prev = s;
    }
  }

  Json StoredReport(const std::string& ns) {
    auto r = api_.Get(api::v1alpha1::UsageReports(), ns, "usage");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : Json();
  }

  kube::testing::FakeApiClient api_;
  kube::FakeClock clock_;
};

double Tier(const UsageReportStatus& s, const std::string& tier, bool cost) {
  for (const auto& t : s.tiers) {
    if (t.tier == tier) return cost ? t.cost : t.gib_hours;
  }
  return -1;
}

TEST_F(UsageLedgerTest, MatchesAHandComputationAcrossATierMoveAndAPriceChange) {
  UsageLedger ledger(&api_, {seconds(30)}, &clock_);
  const uint64_t two_gib = 2ull << 30;
  auto vol = [&](pb::TierClass t, uint64_t reads) {
    return std::vector<Vol>{{"a", "v", "dev-a", t, two_gib, reads, 300, 100}};
  };
  std::vector<InventorySnapshot> sweeps;
  sweeps.push_back(Snap(kT0, vol(pb::TIER_CLASS_SSD, 10)));              // first seen: nothing
  sweeps.push_back(Snap(kT0 + hours(1), vol(pb::TIER_CLASS_SSD, 30)));   // +2 GiB-h ssd @1.0
  sweeps.push_back(Snap(kT0 + hours(2), vol(pb::TIER_CLASS_SATA, 5)));   // moved: billed ssd
  prices_["dev-a"].second = 0.2;                                         // sata price change
  sweeps.push_back(Snap(kT0 + hours(3), vol(pb::TIER_CLASS_SATA, 15)));  // sata @0.1 (old price)
  sweeps.push_back(Snap(kT0 + hours(4), vol(pb::TIER_CLASS_SATA, 15)));  // sata @0.2
  Feed(ledger, sweeps);

  auto s = ledger.Report("a");
  ASSERT_TRUE(s);
  EXPECT_DOUBLE_EQ(Tier(*s, "ssd", false), 4.0);
  EXPECT_DOUBLE_EQ(Tier(*s, "ssd", true), 4.0);
  EXPECT_DOUBLE_EQ(Tier(*s, "sata", false), 4.0);
  EXPECT_DOUBLE_EQ(Tier(*s, "sata", true), 2 * 0.1 + 2 * 0.2);
  EXPECT_DOUBLE_EQ(*s->total_cost, 4.6);
  EXPECT_DOUBLE_EQ(*s->gib_hours, 8.0);
  // Reads: +20, then a reset (5 counts from zero), +10, +0.
  EXPECT_EQ(s->io->read_ops, 35);
  EXPECT_EQ(s->io->read_bytes, 35 * 4096);
  EXPECT_EQ(*s->logical_bytes, 300);
  EXPECT_EQ(*s->unique_bytes, 100);
  ASSERT_EQ(s->volumes.size(), 1u);
  EXPECT_EQ(s->volumes[0].tier, "sata");
  EXPECT_DOUBLE_EQ(s->volumes[0].gib_hours, 8.0);
  EXPECT_EQ(s->window_start, kube::FormatMicroTime(kT0));
  EXPECT_EQ(s->last_update, kube::FormatMicroTime(kT0 + hours(4)));

  // The report in the API holds the same (written when the tier changed, then due or flushed).
  ASSERT_TRUE(ledger.Flush().ok());
  Json stored = StoredReport("a");
  EXPECT_EQ(stored["kind"], "UsageReport");
  EXPECT_DOUBLE_EQ(stored["status"]["totalCost"].get<double>(), 4.6);
  EXPECT_EQ(stored["status"]["volumeCount"], 1);
  EXPECT_EQ(stored["status"]["io"]["readOps"], 35);
}

TEST_F(UsageLedgerTest, SnapshotAndCloneSpacePerVolumeAndPerNamespace) {
  UsageLedger ledger(&api_, {seconds(30)}, &clock_);
  const uint64_t gib = 1ull << 30;
  // a/v1 on dev-a: 40 exclusive, 60 shared, 30 only its snapshots hold; a/v2 on dev-b: a clone
  // sharing everything. Owner space: a's snapshots hold 30 on dev-a and 5 on dev-b (a snapshot
  // of a volume since deleted); b's 7 on dev-a.
  owner_snapshots_["dev-a"] = {{"a", 30}, {"b", 7}};
  owner_snapshots_["dev-b"] = {{"a", 5}};
  std::vector<Vol> vols = {{"a", "v1", "dev-a", pb::TIER_CLASS_SSD, gib, 0, 100, 70, 40, 60, 30},
                           {"a", "v2", "dev-b", pb::TIER_CLASS_SSD, gib, 0, 100, 30, 0, 100, 0}};
  Feed(ledger, {Snap(kT0, vols)});
  auto s = ledger.Report("a");
  ASSERT_TRUE(s);
  ASSERT_EQ(s->volumes.size(), 2u);
  EXPECT_EQ(s->volumes[0].exclusive_bytes, 40);
  EXPECT_EQ(s->volumes[0].shared_bytes, 60);
  EXPECT_EQ(s->volumes[0].snapshot_bytes, 30);
  EXPECT_EQ(s->volumes[1].shared_bytes, 100);
  EXPECT_EQ(*s->exclusive_bytes, 40);
  EXPECT_EQ(*s->shared_bytes, 160);
  EXPECT_EQ(*s->snapshot_bytes, 35);  // both devices' owner space, not b's

  // dev-b stops answering: its last figure stays. Then v1 is deleted, its snapshots kept.
  unreachable_ = {"dev-b"};
  owner_snapshots_["dev-a"]["a"] = 100;
  InventorySnapshot second = Snap(kT0 + seconds(10), {vols[0]});
  vols.erase(vols.begin());
  ledger.OnSweep(Snap(kT0, {}), second);
  s = ledger.Report("a");
  EXPECT_EQ(*s->snapshot_bytes, 105);
  unreachable_.clear();
  owner_snapshots_["dev-b"].clear();
  ledger.OnSweep(second, Snap(kT0 + seconds(20), vols));
  s = ledger.Report("a");
  EXPECT_EQ(*s->snapshot_bytes, 100);
  ASSERT_EQ(s->volumes.size(), 1u);
  EXPECT_EQ(*s->exclusive_bytes, 0);
  EXPECT_EQ(*s->shared_bytes, 100);

  // The report and the metrics carry them.
  ASSERT_TRUE(ledger.Flush().ok());
  Json stored = StoredReport("a");
  EXPECT_EQ(stored["status"]["snapshotBytes"], 100);
  EXPECT_EQ(stored["status"]["sharedBytes"], 100);
  EXPECT_EQ(stored["status"]["volumes"][0]["sharedBytes"], 100);
  double metric = -1;
  for (const auto& f : ledger.Collectable()->Collect()) {
    if (f.name != "strata_usage_snapshot_bytes") continue;
    for (const auto& m : f.metric) {
      if (m.label.size() == 1 && m.label[0].value == "a") metric = m.gauge.value;
    }
  }
  EXPECT_DOUBLE_EQ(metric, 100);
}

TEST_F(UsageLedgerTest, NamespaceSeriesSumToTheDeviceTotals) {
  UsageLedger ledger(&api_, {seconds(30)}, &clock_);
  std::vector<Vol> vols = {
      {"a", "v1", "dev-a", pb::TIER_CLASS_SSD, 1ull << 30},
      {"a", "v2", "dev-b", pb::TIER_CLASS_SATA, 3ull << 30},
      {"b", "v1", "dev-a", pb::TIER_CLASS_SSD, 5ull << 30},
      {"b", "v2", "dev-a", pb::TIER_CLASS_SATA, 7ull << 30},
      {"c", "v1", "dev-b", pb::TIER_CLASS_SATA, 11ull << 30},
  };
  std::vector<InventorySnapshot> sweeps;
  for (int i = 0; i < 5; ++i) sweeps.push_back(Snap(kT0 + seconds(37 * i), vols));
  Feed(ledger, sweeps);

  std::map<std::string, double> ns_sum, device_total, ns_cost_sum, device_cost;
  for (const auto& f : ledger.Collectable()->Collect()) {
    for (const auto& m : f.metric) {
      std::map<std::string, std::string> l;
      for (const auto& lab : m.label) l[lab.name] = lab.value;
      const std::string k = l["device"] + "/" + l["tier"];
      if (f.name == "strata_usage_gib_hours_total") ns_sum[k] += m.counter.value;
      if (f.name == "strata_device_usage_gib_hours_total") device_total[k] = m.counter.value;
      if (f.name == "strata_usage_cost_total") ns_cost_sum[k] += m.counter.value;
      if (f.name == "strata_device_usage_cost_total") device_cost[k] = m.counter.value;
    }
  }
  ASSERT_EQ(device_total.size(), 3u);  // dev-a/ssd, dev-a/sata, dev-b/sata
  for (const auto& [k, v] : device_total) {
    EXPECT_NEAR(ns_sum[k], v, 1e-12) << k;
    EXPECT_NEAR(ns_cost_sum[k], device_cost[k], 1e-12) << k;
    EXPECT_GT(v, 0) << k;
  }
  // dev-a/ssd: (1 + 5) GiB for 4 x 37 s.
  EXPECT_NEAR(device_total["dev-a/ssd"], 6.0 * 4 * 37 / 3600, 1e-12);
  EXPECT_NEAR(device_cost["dev-b/sata"], (3 + 11) * 4 * 37 / 3600.0 * 0.5, 1e-12);
}

TEST_F(UsageLedgerTest, ResumesFromTheReportAfterARestart) {
  std::vector<Vol> vols = {{"a", "v", "dev-a", pb::TIER_CLASS_SSD, 1ull << 30, 100}};
  auto more = vols;
  more[0].reads = 250;
  const auto s0 = Snap(kT0, vols);
  const auto s1 = Snap(kT0 + hours(1), vols);
  const auto s2 = Snap(kT0 + hours(3), more);

  UsageLedger straight(&api_, {seconds(30)}, &clock_);
  Feed(straight, {s0, s1, s2});
  const auto expected = *straight.Report("a");
  ASSERT_TRUE(api_.Delete(api::v1alpha1::UsageReports(), "a", "usage", {}).ok());

  {
    UsageLedger before(&api_, {seconds(30)}, &clock_);
    Feed(before, {s0, s1});
    ASSERT_TRUE(before.Flush().ok());
  }
  UsageLedger after(&api_, {seconds(30)}, &clock_);  // a new process: reads the report
  Feed(after, {s2});
  auto got = after.Report("a");
  ASSERT_TRUE(got);
  EXPECT_DOUBLE_EQ(*got->gib_hours, 3.0) << "the 2 h since the report's lastUpdate are billed";
  EXPECT_DOUBLE_EQ(*got->gib_hours, *expected.gib_hours);
  EXPECT_DOUBLE_EQ(*got->total_cost, *expected.total_cost);
  EXPECT_EQ(got->io->read_ops, 150);
  EXPECT_EQ(got->io->read_ops, expected.io->read_ops);
  EXPECT_EQ(got->window_start, expected.window_start);
}

TEST_F(UsageLedgerTest, WritesOnChangeElseAtMostEveryInterval) {
  UsageLedger ledger(&api_, {seconds(30)}, &clock_);
  std::vector<Vol> vols = {{"a", "v", "dev-a", pb::TIER_CLASS_SSD, 1ull << 30}};
  InventorySnapshot prev;
  auto sweep = [&](const std::vector<Vol>& v) {
    auto s = Snap(clock_.WallNow(), v);
    ledger.OnSweep(prev, s);
    prev = s;
    clock_.Advance(seconds(1));
  };
  sweep(vols);
  EXPECT_EQ(api_.status_writes(), 1) << "a new namespace and volume: written at once";
  for (int i = 0; i < 20; ++i) sweep(vols);
  EXPECT_EQ(api_.status_writes(), 1) << "nothing changed within 30 s";
  vols.push_back({"a", "w", "dev-a", pb::TIER_CLASS_SATA, 1ull << 30});
  sweep(vols);
  EXPECT_EQ(api_.status_writes(), 2) << "a volume appeared";
  for (int i = 0; i < 40; ++i) sweep(vols);
  EXPECT_EQ(api_.status_writes(), 3) << "due after 30 s";
}

TEST_F(UsageLedgerTest, AFailedWriteIsRetriedOnTheNextSweep) {
  UsageLedger ledger(&api_, {seconds(30)}, &clock_);
  std::vector<Vol> vols = {{"a", "v", "dev-a", pb::TIER_CLASS_SSD, 1ull << 30}};
  InventorySnapshot prev;
  auto sweep = [&] {
    auto s = Snap(clock_.WallNow(), vols);
    ledger.OnSweep(prev, s);
    prev = s;
    clock_.Advance(seconds(1));
  };
  sweep();
  ASSERT_EQ(api_.status_writes(), 1);
  vols[0].tier = pb::TIER_CLASS_SATA;  // a change: due at once...
  api_.SetUnreachable(true);           // ... but the apiserver is away
  sweep();
  api_.SetUnreachable(false);
  sweep();
  EXPECT_EQ(api_.status_writes(), 2) << "written on the next sweep, not 30 s later";
  EXPECT_EQ(StoredReport("a")["status"]["volumes"][0]["tier"], "sata");
}

TEST_F(UsageLedgerTest, AnUnreachableDeviceIsNotBilledAndItsVolumesAreKept) {
  UsageLedger ledger(&api_, {seconds(30)}, &clock_);
  std::vector<Vol> vols = {{"a", "v", "dev-a", pb::TIER_CLASS_SSD, 1ull << 30}};
  auto s0 = Snap(kT0, vols);
  unreachable_ = {"dev-a"};
  auto s1 = Snap(kT0 + hours(1), vols);
  unreachable_.clear();
  auto s2 = Snap(kT0 + hours(2), vols);
  Feed(ledger, {s0, s1});
  EXPECT_EQ(*ledger.Report("a")->volume_count, 1);
  EXPECT_DOUBLE_EQ(*ledger.Report("a")->gib_hours, 0.0);
  Feed(ledger, {s2});
  EXPECT_DOUBLE_EQ(*ledger.Report("a")->gib_hours, 1.0) << "only the hour since it answered";
}

TEST_F(UsageLedgerTest, AnUnreadableReportIsRetriedNotReset) {
  api_.SetUnreachable(true);
  UsageLedger ledger(&api_, {seconds(30)}, &clock_);
  std::vector<Vol> vols = {{"a", "v", "dev-a", pb::TIER_CLASS_SSD, 1ull << 30}};
  Feed(ledger, {Snap(kT0, vols)});
  EXPECT_FALSE(ledger.Report("a")) << "not started from zero while the report cannot be read";
  api_.SetUnreachable(false);
  Feed(ledger, {Snap(kT0 + hours(1), vols)});
  EXPECT_TRUE(ledger.Report("a"));
}

}  // namespace
}  // namespace strata::op
