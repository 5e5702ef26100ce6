// TieringPolicyReconciler on fakes: the real VolumeInventory sweeping fake devices (through
// device::ClientCache's factory), a FakeApiClient, a FakeClock. Each Step advances the clock,
// sweeps, and reconciles the policy once, as the inventory listener does in the operator.

#include "strata/operator/tiering_policy_reconciler.h"

#include <gtest/gtest.h>

#include "strata/device/tier.h"
#include "strata/kube/conditions.h"
#include "strata/kube/store.h"
#include "strata/kube/testing/fake_api_client.h"

namespace strata::op {
namespace {

using kube::Json;
using namespace std::chrono_literals;
namespace pb = storage::v1;

constexpr uint64_t kGiB = 1ull << 30;

class FakeDevice;
using Devices = std::map<std::string, std::shared_ptr<FakeDevice>>;  // by endpoint

// One strata-stored: tiers, LUNs with stats, and moves that run until Finish().
class FakeDevice : public device::Client {
 public:
  FakeDevice(std::string address, Devices* all) : address_(std::move(address)), all_(all) {}

  const std::string& address() const override { return address_; }
  Result<pb::DeviceStatus> GetDeviceStatus() override {
    std::lock_guard g(mu);
    pb::DeviceStatus s;
    s.set_name(address_);
    s.set_state(pb::DEVICE_STATE_ONLINE);
    for (const auto& [cls, cap] : tiers) {
      auto* t = s.add_tiers();
      t->set_class_(*device::ParseTier(cls));
      t->set_capacity_bytes(cap);
      t->set_healthy(true);
      uint64_t used = 0;
      for (const auto& [n, l] : luns) {
        if (l.tier() == t->class_() && l.moved_to().empty()) used += l.size_bytes();
      }
      t->set_used_bytes(used);
    }
    return s;
  }
  Result<std::vector<pb::Lun>> ListLuns(const std::string&) override {
    std::lock_guard g(mu);
    std::vector<pb::Lun> out;
    for (const auto& [n, l] : luns) out.push_back(l);
    return out;
  }
  Result<pb::LunStats> GetLunStats(const std::string& lun) override {
    std::lock_guard g(mu);
    pb::LunStats s;
    s.set_name(lun);
    s.mutable_read()->set_iops(read_iops[lun]);
    s.set_idle_seconds(idle[lun]);
    s.set_tier(luns[lun].tier());
    return s;
  }
  Result<pb::Migration> MigrateLun(const pb::MigrateLunRequest& req) override {
    std::lock_guard g(mu);
    migrations.push_back(req);
    auto& m = *luns[req.name()].mutable_migration();
    if (m.state() == pb::MIGRATION_STATE_RUNNING) {
      return FailedPreconditionError("LUN " + req.name() + " is moving");
    }
    m.set_state(pb::MIGRATION_STATE_RUNNING);
    m.set_to_tier(req.to_tier());
    m.set_to_device(req.to_device());
    return m;
  }
  // Completes the move of `lun`: a new tier here, or the LUN on the target device.
  void Finish(const std::string& lun) {
    pb::Lun moved;
    {
      std::lock_guard g(mu);
      pb::Lun& l = luns[lun];
      l.mutable_migration()->set_state(pb::MIGRATION_STATE_DONE);
      if (l.migration().to_device().empty()) {
        l.set_tier(l.migration().to_tier());
        return;
      }
      l.set_moved_to(l.migration().to_device());
      moved = l;
    }
    auto& target = *all_->at(moved.migration().to_device());
    moved.clear_moved_to();
    moved.set_tier(moved.migration().to_tier());
    moved.clear_migration();
    std::lock_guard g(target.mu);
    target.luns[lun] = moved;
  }
  void AddLun(const std::string& name, const std::string& pvc, const std::string& tier,
              uint64_t size = kGiB) {
    std::lock_guard g(mu);
    pb::Lun l;
    l.set_name(name);
    l.set_size_bytes(size);
    l.set_tier(*device::ParseTier(tier));
    (*l.mutable_metadata())[kPvcNameKey] = pvc;
    (*l.mutable_metadata())[kPvcNamespaceKey] = "db";
    luns[name] = l;
  }

  Result<pb::DeviceStatus> SetDeviceState(pb::DeviceState, const std::string&) override {
    return UnimplementedError("fake");
  }
  Result<pb::Lun> CreateLun(const pb::CreateLunRequest&) override {
    return UnimplementedError("fake");
  }
  Status DeleteLun(const std::string&) override { return UnimplementedError("fake"); }
  Result<pb::Lun> GetLun(const std::string&) override { return UnimplementedError("fake"); }
  Result<pb::Lun> ResizeLun(const std::string&, uint64_t) override {
    return UnimplementedError("fake");
  }
  Result<pb::Lun> SetLunAccess(const std::string&, const std::vector<std::string>&) override {
    return UnimplementedError("fake");
  }
  Result<pb::Lun> SetLunDedup(const std::string&, bool, bool) override {
    return UnimplementedError("fake");
  }
  Result<pb::Migration> GetMigration(const std::string&) override {
    return UnimplementedError("fake");
  }
  Result<pb::Migration> CancelMigration(const std::string&) override {
    return UnimplementedError("fake");
  }

  std::mutex mu;
  std::map<std::string, uint64_t> tiers;  // class -> capacity
  std::map<std::string, pb::Lun> luns;
  std::map<std::string, double> read_iops;
  std::map<std::string, uint64_t> idle;
  std::vector<pb::MigrateLunRequest> migrations;

 private:
  const std::string address_;
  Devices* const all_;
};

struct RecordedEvent {
  std::string type, reason, message;
};
class FakeRecorder : public kube::EventRecorder {
 public:
  void Record(const Json&, kube::EventType type, const std::string& reason,
              const std::string& message) override {
    events.push_back({type == kube::EventType::kNormal ? "Normal" : "Warning", reason, message});
  }
  int Count(const std::string& reason) const {
    return static_cast<int>(std::count_if(events.begin(), events.end(),
                                          [&](const auto& e) { return e.reason == reason; }));
  }
  std::vector<RecordedEvent> events;
};

Json Rule(const std::string& name, const std::string& metric, const std::string& cmp,
          int64_t threshold, const std::string& sustained, const std::string& tier) {
  return {{"name", name},           {"metric", metric},          {"comparison", cmp},
          {"threshold", threshold}, {"sustainedFor", sustained}, {"targetTier", tier}};
}

class TieringPolicyReconcilerTest : public ::testing::Test {
 protected:
  FakeDevice& AddDevice(const std::string& name, std::map<std::string, uint64_t> tiers,
                        const std::string& region, const std::string& jurisdiction,
                        Json labels = Json::object()) {
    const std::string endpoint = name + ".example:7400";
    auto d = std::make_shared<FakeDevice>(endpoint, &devices_);
    d->tiers = tiers;
    devices_[endpoint] = d;
    Json spec_tiers = Json::array();
    for (const auto& [cls, cap] : tiers) {
      spec_tiers.push_back({{"class", cls}, {"capacityBytes", static_cast<int64_t>(cap)}});
    }
    store_.Upsert({{"apiVersion", "strata.io/v1alpha1"},
                   {"kind", "StorageDevice"},
                   {"metadata", {{"name", name}, {"resourceVersion", "1"}, {"labels", labels}}},
                   {"spec",
                    {{"endpoint", endpoint},
                     {"region", region},
                     {"jurisdiction", jurisdiction},
                     {"tiers", spec_tiers}}}});
    return *d;
  }
  void AddPvc(const std::string& name, Json labels = {{"app", "postgres"}}) {
    api_.Put(kube::resources::PersistentVolumeClaims(),
             {{"apiVersion", "v1"},
              {"kind", "PersistentVolumeClaim"},
              {"metadata", {{"name", name}, {"namespace", "db"}, {"labels", labels}}}});
  }
  void PutPolicy(Json spec) {
    if (!spec.contains("selector")) spec["selector"] = {{"matchLabels", {{"app", "postgres"}}}};
    Json object = {{"apiVersion", "strata.io/v1alpha1"},
                   {"kind", "TieringPolicy"},
                   {"metadata", {{"name", "tp"}, {"namespace", "db"}, {"generation", 1}}},
                   {"spec", spec}};
    auto old = api_.Get(kube::resources::TieringPolicies(), "db", "tp");
    if (old.ok()) {
      object["metadata"]["generation"] = (*old)["metadata"].value("generation", 1) + 1;
      if (old->contains("status")) object["status"] = (*old)["status"];
    }
    api_.Put(kube::resources::TieringPolicies(), object);
  }
  // Advances the clock by `d`, sweeps, and reconciles.
  Result<ctrl::ReconcileResult> Step(kube::Duration d = 1s) {
    clock_.Advance(d);
    inventory_.Sweep();
    return reconciler_.Reconcile("db/tp");
  }
  Json Status() { return (*api_.Get(kube::resources::TieringPolicies(), "db", "tp"))["status"]; }
  std::optional<kube::Condition> Cond(const std::string& type) {
    return kube::FindCondition(Status(), type);
  }
  Json Volume(const std::string& pvc) {
    for (const auto& v : Status().value("volumes", Json::array())) {
      if (v.value("pvc", "") == pvc) return v;
    }
    return Json();
  }

  kube::FakeClock clock_;
  kube::testing::FakeApiClient api_;
  FakeRecorder events_;
  Devices devices_;
  kube::Store store_;
  device::ClientCache clients_{
      [this](const std::string& a) -> device::ClientPtr { return devices_.at(a); }};
  VolumeInventory inventory_{&store_, &clients_, {1s}, &clock_};
  TieringPolicyReconciler reconciler_{
      &api_,
      [this](const std::string& key) -> std::optional<Json> {
        auto [ns, name] = kube::SplitKey(key);
        auto o = api_.Get(kube::resources::TieringPolicies(), ns, name);
        if (!o.ok()) return std::nullopt;
        return *o;
      },
      [this] { return api_.List(kube::resources::PersistentVolumeClaims(), "", {})->items; },
      [this] { return inventory_.Current(); },
      &clients_,
      &events_,
      {5s},
      &clock_};
};

// One device with ssd and sata; LUN lun-1 of PVC db/data on sata, read at `iops`.
class OneDevice : public TieringPolicyReconcilerTest {
 protected:
  void SetUp() override {
    dev_ = &AddDevice("dev-a", {{"ssd", 10 * kGiB}, {"sata", 100 * kGiB}}, "eu-west-1", "EU");
    dev_->AddLun("lun-1", "data", "sata");
    AddPvc("data");
  }
  void SetIops(double iops) {
    std::lock_guard g(dev_->mu);
    dev_->read_iops["lun-1"] = iops;
  }
  size_t Moves() {
    std::lock_guard g(dev_->mu);
    return dev_->migrations.size();
  }
  FakeDevice* dev_ = nullptr;
};

TEST_F(OneDevice, PendingBeforeTheFirstSweep) {
  PutPolicy({{"rules", {Rule("hot", "ReadIOPS", "Above", 100, "10s", "ssd")}}});
  auto r = reconciler_.Reconcile("db/tp");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Status()["phase"], "Pending");
  EXPECT_EQ(Cond("Ready")->reason, "NotEvaluated");
  EXPECT_EQ(r->requeue_after, std::chrono::nanoseconds(5s));
}

TEST_F(OneDevice, SustainedCrossingMovesOnceAfterSustainedForAndNotBefore) {
  PutPolicy({{"rules", {Rule("hot", "ReadIOPS", "Above", 100, "10s", "ssd")}}, {"cooldown", "1m"}});
  SetIops(500);
  ASSERT_TRUE(Step().ok());
  EXPECT_EQ(Status()["phase"], "Active");
  EXPECT_EQ(Volume("data")["state"], "Sustaining");
  EXPECT_EQ(Volume("data")["readIOPS"], 500);
  EXPECT_EQ(Volume("data")["device"], "dev-a");
  EXPECT_EQ(Volume("data")["tier"], "sata");
  for (int i = 0; i < 9; ++i) ASSERT_TRUE(Step().ok());  // 9 s after the crossing
  EXPECT_EQ(Moves(), 0u) << "not before sustainedFor";
  ASSERT_TRUE(Step().ok());  // 10 s
  ASSERT_EQ(Moves(), 1u);
  EXPECT_EQ(dev_->migrations[0].name(), "lun-1");
  EXPECT_EQ(dev_->migrations[0].to_tier(), pb::TIER_CLASS_SSD);
  EXPECT_EQ(dev_->migrations[0].to_device(), "") << "the device has room: intra-device";
  EXPECT_EQ(events_.Count("MoveStarted"), 1);
  Json s = Status();
  EXPECT_EQ(s["migrationsInProgress"], 1);
  EXPECT_EQ(Volume("data")["state"], "Moving");
  EXPECT_EQ(s["lastMigration"]["volume"], "data");
  EXPECT_EQ(s["lastMigration"]["fromDevice"], "dev-a");
  EXPECT_EQ(s["lastMigration"]["fromTier"], "sata");
  EXPECT_EQ(s["lastMigration"]["toDevice"], "dev-a");
  EXPECT_EQ(s["lastMigration"]["toTier"], "ssd");
  EXPECT_EQ(s["lastMigration"]["rule"], "hot");
  EXPECT_EQ(s["lastMigration"]["reason"], "ReadIOPS 500 Above 100 for 10s");
  EXPECT_EQ(s["history"].size(), 1u);
  EXPECT_EQ(Cond("Progressing")->status, "True");

  // While it runs, and after: never started twice.
  ASSERT_TRUE(Step().ok());
  ASSERT_TRUE(reconciler_.Reconcile("db/tp").ok());  // a reconcile between sweeps
  EXPECT_EQ(Moves(), 1u);
  dev_->Finish("lun-1");
  ASSERT_TRUE(Step().ok());
  EXPECT_EQ(Moves(), 1u);
  EXPECT_EQ(Volume("data")["tier"], "ssd");
  EXPECT_EQ(Volume("data")["state"], "Cooldown");
  EXPECT_EQ(events_.Count("VolumeMoved"), 1);
  EXPECT_EQ(Cond("Progressing")->status, "False");
  ASSERT_TRUE(Step(2min).ok());
  EXPECT_EQ(Moves(), 1u) << "already on the target tier";
  EXPECT_EQ(Volume("data")["state"], "Idle");
}

TEST_F(OneDevice, HysteresisKeepsATimerThroughSmallDipsAndFlappingNeverMoves) {
  PutPolicy({{"rules", {Rule("hot", "ReadIOPS", "Above", 100, "10s", "ssd")}}});
  // Flapping across the band (120 / 80): each drop below 90 restarts the timer.
  for (int i = 0; i < 32; ++i) {  // ends low
    SetIops(i % 4 < 2 ? 120 : 80);
    ASSERT_TRUE(Step(2s).ok());
  }
  EXPECT_EQ(Moves(), 0u);
  // Hovering just under the threshold never starts a timer.
  SetIops(99);
  for (int i = 0; i < 15; ++i) ASSERT_TRUE(Step(2s).ok());
  EXPECT_EQ(Moves(), 0u);
  // Crossing, then dipping inside the band (95 >= 90): the timer keeps running.
  SetIops(150);
  ASSERT_TRUE(Step(2s).ok());
  SetIops(95);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Step(2s).ok());
  EXPECT_EQ(Moves(), 0u) << "8 s held";
  ASSERT_TRUE(Step(2s).ok());
  EXPECT_EQ(Moves(), 1u) << "10 s held, with dips inside the 10% band";
}

TEST_F(OneDevice, CooldownSpacesTwoMovesOfOneVolumeAndSurvivesARestart) {
  PutPolicy({{"rules",
              {Rule("hot", "ReadIOPS", "Above", 100, "0s", "ssd"),
               Rule("cold", "ReadIOPS", "Below", 10, "0s", "sata")}},
             {"cooldown", "1m"}});
  SetIops(500);
  ASSERT_TRUE(Step().ok());
  ASSERT_EQ(Moves(), 1u);
  dev_->Finish("lun-1");
  SetIops(0);
  // A new reconciler: the operator restarted. The cooldown comes from status.volumes[].lastMove.
  TieringPolicyReconciler restarted(
      &api_,
      [this](const std::string&) -> std::optional<Json> {
        return *api_.Get(kube::resources::TieringPolicies(), "db", "tp");
      },
      [this] { return api_.List(kube::resources::PersistentVolumeClaims(), "", {})->items; },
      [this] { return inventory_.Current(); }, &clients_, &events_, {5s}, &clock_);
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(10s);
    inventory_.Sweep();
    ASSERT_TRUE(restarted.Reconcile("db/tp").ok());
  }
  EXPECT_EQ(Moves(), 1u) << "50 s after the move: cooling down";
  EXPECT_EQ(Volume("data")["state"], "Cooldown");
  clock_.Advance(11s);
  inventory_.Sweep();
  ASSERT_TRUE(restarted.Reconcile("db/tp").ok());
  ASSERT_EQ(Moves(), 2u);
  EXPECT_EQ(dev_->migrations[1].to_tier(), pb::TIER_CLASS_SATA);
  EXPECT_EQ(Status()["history"].size(), 2u);
  EXPECT_EQ(Status()["lastMigration"]["rule"], "cold");
}

TEST_F(OneDevice, ARestartDuringAMoveResumesWithoutStartingItAgain) {
  PutPolicy({{"rules", {Rule("hot", "ReadIOPS", "Above", 100, "0s", "ssd")}}, {"cooldown", "1h"}});
  SetIops(500);
  ASSERT_TRUE(Step().ok());
  ASSERT_EQ(Moves(), 1u);
  // A new process: no memory of the move; the device reports it RUNNING.
  TieringPolicyReconciler restarted(
      &api_,
      [this](const std::string&) -> std::optional<Json> {
        return *api_.Get(kube::resources::TieringPolicies(), "db", "tp");
      },
      [this] { return api_.List(kube::resources::PersistentVolumeClaims(), "", {})->items; },
      [this] { return inventory_.Current(); }, &clients_, &events_, {5s}, &clock_);
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(1s);
    inventory_.Sweep();
    ASSERT_TRUE(restarted.Reconcile("db/tp").ok());
  }
  EXPECT_EQ(Moves(), 1u) << "never started twice";
  EXPECT_EQ(Volume("data")["state"], "Moving");
  EXPECT_EQ(Status()["migrationsInProgress"], 1);
  dev_->Finish("lun-1");
  clock_.Advance(1s);
  inventory_.Sweep();
  ASSERT_TRUE(restarted.Reconcile("db/tp").ok());
  EXPECT_EQ(Volume("data")["tier"], "ssd") << "the next snapshot shows the finished move";
  EXPECT_EQ(Volume("data")["state"], "Cooldown") << "lastMove kept in status";
  EXPECT_EQ(Status()["migrationsInProgress"], 0);
  EXPECT_EQ(Status()["history"].size(), 1u);
}

TEST_F(OneDevice, PausedEvaluatesButMovesNothing) {
  PutPolicy({{"rules", {Rule("hot", "ReadIOPS", "Above", 100, "0s", "ssd")}}, {"paused", true}});
  SetIops(500);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Step().ok());
  EXPECT_EQ(Moves(), 0u);
  EXPECT_EQ(Status()["phase"], "Paused");
  EXPECT_EQ(Volume("data")["readIOPS"], 500);
  EXPECT_NE(Volume("data").value("message", "").find("paused"), std::string::npos);
}

TEST_F(OneDevice, NoStatusWriteWhenNothingChanged) {
  PutPolicy({{"rules", {Rule("hot", "ReadIOPS", "Above", 100, "0s", "ssd")}}});
  SetIops(5);
  ASSERT_TRUE(Step().ok());
  const int writes = api_.status_writes();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Step().ok());
  EXPECT_EQ(api_.status_writes(), writes) << "same metrics, lastEvaluationTime < 1 min old";
  ASSERT_TRUE(Step(1min).ok());
  EXPECT_EQ(api_.status_writes(), writes + 1) << "lastEvaluationTime refreshed";
}

TEST_F(OneDevice, StatusShowsRoundedMetricsSoASteadyLoadDoesNotRewriteIt) {
  PutPolicy({{"rules", {Rule("hot", "ReadIOPS", "Above", 100000, "0s", "ssd")}}});
  SetIops(40123);
  {
    std::lock_guard g(dev_->mu);
    dev_->idle["lun-1"] = 7322;
  }
  ASSERT_TRUE(Step().ok());
  EXPECT_EQ(Volume("data")["readIOPS"], 40000);
  EXPECT_EQ(Volume("data")["idleSeconds"], 7200) << "whole hours after the first hour";
  const int writes = api_.status_writes();
  SetIops(39871);
  ASSERT_TRUE(Step().ok());
  EXPECT_EQ(api_.status_writes(), writes) << "40123 and 39871 both show as 40000";
  SetIops(57);
  ASSERT_TRUE(Step().ok());
  EXPECT_EQ(Volume("data")["readIOPS"], 57) << "exact below 100";
}

TEST_F(OneDevice, MalformedPolicyIsReportedNeverThrown) {
  Json rule = Rule("hot", "ReadIOPS", "bigger", 100, "0s", "ssd");
  PutPolicy({{"rules", {rule}}});
  auto r = Step();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->requeue_after, std::nullopt) << "only an edit fixes it";
  EXPECT_EQ(Status()["phase"], "Error");
  EXPECT_EQ(Cond("Ready")->reason, "InvalidSpec");
  EXPECT_NE(Cond("Ready")->message.find("spec.rules[0].comparison"), std::string::npos);
  EXPECT_EQ(events_.Count("InvalidSpec"), 1);
  // A selector expression that makes no sense (In without values) too.
  PutPolicy({{"rules", {Rule("hot", "ReadIOPS", "Above", 100, "0s", "ssd")}},
             {"selector", {{"matchExpressions", {{{"key", "app"}, {"operator", "In"}}}}}}});
  ASSERT_TRUE(Step().ok());
  EXPECT_EQ(Status()["phase"], "Error");
  EXPECT_NE(Cond("Ready")->message.find("spec.selector"), std::string::npos);
  EXPECT_EQ(Moves(), 0u);
}

TEST_F(OneDevice, AMalformedStatusIsRewrittenNotReportedAsASpecError) {
  PutPolicy({{"rules", {Rule("hot", "ReadIOPS", "Above", 100, "0s", "ssd")}}});
  Json object = *api_.Get(kube::resources::TieringPolicies(), "db", "tp");
  object["status"] = {{"volumes", {{{"pvc", "data"}, {"state", "Hot"}}}}};
  api_.Put(kube::resources::TieringPolicies(), object);
  ASSERT_TRUE(Step().ok());
  EXPECT_EQ(Status()["phase"], "Active");
  EXPECT_EQ(Volume("data")["state"], "Idle");
  EXPECT_EQ(events_.Count("InvalidSpec"), 0);
}

TEST_F(TieringPolicyReconcilerTest, TargetTierUnavailableNamesRuleAndTier) {
  auto& dev = AddDevice("dev-a", {{"sata", 100 * kGiB}}, "eu-west-1", "EU");
  dev.AddLun("lun-1", "data", "sata");
  dev.read_iops["lun-1"] = 500;
  AddPvc("data");
  PutPolicy({{"rules",
              {Rule("hot", "ReadIOPS", "Above", 100, "0s", "ssd"),
               Rule("cold", "ReadIOPS", "Below", 10, "0s", "sata")}}});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Step().ok());
  auto ready = Cond("Ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, "False");
  EXPECT_EQ(ready->reason, "TargetTierUnavailable");
  EXPECT_NE(ready->message.find("rule hot"), std::string::npos) << ready->message;
  EXPECT_NE(ready->message.find("tier ssd"), std::string::npos) << ready->message;
  EXPECT_EQ(events_.Count("TargetTierUnavailable"), 1) << "once per generation";
  EXPECT_TRUE(dev.migrations.empty());
  EXPECT_EQ(Status()["phase"], "Active");
}

TEST_F(TieringPolicyReconcilerTest, MaxConcurrentMigrationsPerDeviceCountsRunningMoves) {
  auto& dev = AddDevice("dev-a", {{"ssd", 100 * kGiB}, {"sata", 100 * kGiB}}, "r", "EU");
  for (int i = 1; i <= 4; ++i) {
    dev.AddLun("lun-" + std::to_string(i), "vol-" + std::to_string(i), "sata");
    dev.read_iops["lun-" + std::to_string(i)] = 500;
    AddPvc("vol-" + std::to_string(i));
  }
  // A move the device already runs (started before an operator restart) counts.
  dev.luns["lun-4"].mutable_migration()->set_state(pb::MIGRATION_STATE_RUNNING);
  PutPolicy({{"rules", {Rule("hot", "ReadIOPS", "Above", 100, "0s", "ssd")}},
             {"maxConcurrentMigrations", 2}});
  ASSERT_TRUE(Step().ok());
  EXPECT_EQ(dev.migrations.size(), 1u) << "one running + one started = 2";
  EXPECT_EQ(Status()["migrationsInProgress"], 2);
  EXPECT_EQ(Volume("vol-4")["state"], "Moving");
  ASSERT_TRUE(Step().ok());
  ASSERT_TRUE(reconciler_.Reconcile("db/tp").ok());
  EXPECT_EQ(dev.migrations.size(), 1u);
  EXPECT_NE(Volume("vol-2").value("message", "").find("maxConcurrentMigrations 2"),
            std::string::npos);
  dev.Finish("lun-1");
  ASSERT_TRUE(Step().ok());
  EXPECT_EQ(dev.migrations.size(), 2u);
  for (const auto& m : dev.migrations) EXPECT_NE(m.name(), "lun-4") << "never started twice";
}

// eu-a: sata only; eu-b: ssd (20 GiB); eu-c: ssd (40 GiB, label pool=slow); us-c: ssd (1 TiB), US.
class Fleet : public TieringPolicyReconcilerTest {
 protected:
  void SetUp() override {
    eu_a_ = &AddDevice("eu-a", {{"sata", 100 * kGiB}}, "eu-west-1", "EU");
    eu_b_ = &AddDevice("eu-b", {{"ssd", 20 * kGiB}, {"sata", 100 * kGiB}}, "eu-west-1", "EU");
    eu_c_ = &AddDevice("eu-c", {{"ssd", 40 * kGiB}}, "eu-central-1", "EU", {{"pool", "slow"}});
    us_c_ = &AddDevice("us-c", {{"ssd", 1024 * kGiB}}, "us-east-1", "US");
    eu_a_->AddLun("lun-1", "data", "sata");
    eu_a_->read_iops["lun-1"] = 900;
    AddPvc("data");
  }
  Json Spec() {
    return {{"scope", "CrossDevice"},
            {"rules", {Rule("hot", "ReadIOPS", "Above", 100, "0s", "ssd")}},
            {"allowedJurisdictions", {"EU"}}};
  }
  FakeDevice *eu_a_, *eu_b_, *eu_c_, *us_c_;
};

TEST_F(Fleet, CrossDeviceMoveGoesToTheAllowedDeviceWithMostRoomNeverARefusedOne) {
  PutPolicy(Spec());
  ASSERT_TRUE(Step().ok());
  ASSERT_EQ(eu_a_->migrations.size(), 1u);
  EXPECT_EQ(eu_a_->migrations[0].to_device(), "eu-c.example:7400") << "most free ssd in the EU";
  EXPECT_EQ(eu_a_->migrations[0].to_tier(), pb::TIER_CLASS_SSD);
  EXPECT_EQ(Status()["lastMigration"]["toDevice"], "eu-c");
  // The audit: us-c refused, once per generation, and named in status.
  ASSERT_TRUE(Step().ok());
  EXPECT_EQ(events_.Count("DeviceRefused"), 1);
  const auto& e = *std::find_if(events_.events.begin(), events_.events.end(),
                                [](const auto& x) { return x.reason == "DeviceRefused"; });
  EXPECT_EQ(e.type, "Warning");
  EXPECT_NE(e.message.find("us-c"), std::string::npos);
  EXPECT_NE(e.message.find("'US'"), std::string::npos);
  EXPECT_NE(e.message.find("us-east-1"), std::string::npos);
  EXPECT_NE(e.message.find("[EU]"), std::string::npos);
  ASSERT_EQ(Status()["refusedDevices"].size(), 1u);
  EXPECT_NE(Status()["refusedDevices"][0].get<std::string>().find("us-c"), std::string::npos);
  // Done: the volume is on eu-c now.
  eu_a_->Finish("lun-1");
  ASSERT_TRUE(Step().ok());
  EXPECT_EQ(Volume("data")["device"], "eu-c");
  EXPECT_EQ(Volume("data")["tier"], "ssd");
  EXPECT_EQ(events_.Count("VolumeMoved"), 1);
  EXPECT_TRUE(us_c_->migrations.empty() && eu_c_->migrations.empty());
}

TEST_F(Fleet, TargetDeviceSelectorAndRoomNarrowTheChoice) {
  Json spec = Spec();
  spec["targetDeviceSelector"] = {
      {"matchExpressions", {{{"key", "pool"}, {"operator", "DoesNotExist"}}}}};
  PutPolicy(spec);
  ASSERT_TRUE(Step().ok());
  ASSERT_EQ(eu_a_->migrations.size(), 1u);
  EXPECT_EQ(eu_a_->migrations[0].to_device(), "eu-b.example:7400");
}

TEST_F(Fleet, MovesInOneReconcileDoNotOversubscribeATarget) {
  // Two 15 GiB volumes: eu-c (40 GiB ssd) takes the first; then it has 25 GiB free, still more
  // than eu-b's 20, so it takes the second; a third finds eu-b (20 GiB) roomier than eu-c (10).
  eu_a_->luns["lun-1"].set_size_bytes(15 * kGiB);
  for (const char* n : {"2", "3"}) {
    eu_a_->AddLun(std::string("lun-") + n, std::string("data-") + n, "sata", 15 * kGiB);
    eu_a_->read_iops[std::string("lun-") + n] = 900;
    AddPvc(std::string("data-") + n);
  }
  Json spec = Spec();
  spec["maxConcurrentMigrations"] = 8;
  PutPolicy(spec);
  ASSERT_TRUE(Step().ok());
  ASSERT_EQ(eu_a_->migrations.size(), 3u);
  EXPECT_EQ(eu_a_->migrations[0].to_device(), "eu-c.example:7400");
  EXPECT_EQ(eu_a_->migrations[1].to_device(), "eu-c.example:7400");
  EXPECT_EQ(eu_a_->migrations[2].to_device(), "eu-b.example:7400");
}

TEST_F(Fleet, NoAllowedDeviceWithRoomMeansNoMove) {
  eu_a_->luns["lun-1"].set_size_bytes(50 * kGiB);  // more than eu-b's ssd; eu-c excluded below
  Json spec = Spec();
  spec["allowedRegions"] = {"eu-west-1"};
  PutPolicy(spec);
  ASSERT_TRUE(Step().ok());
  EXPECT_TRUE(eu_a_->migrations.empty());
  EXPECT_EQ(Volume("data")["state"], "Sustaining");
  EXPECT_NE(Volume("data").value("message", "").find("no allowed device"), std::string::npos);
  EXPECT_EQ(Status()["refusedDevices"].size(), 2u) << "eu-c (region) and us-c";
}

TEST_F(Fleet, IntraDeviceScopeNeverLeavesTheDevice) {
  Json spec = Spec();
  spec["scope"] = "IntraDevice";
  PutPolicy(spec);
  ASSERT_TRUE(Step().ok());
  EXPECT_TRUE(eu_a_->migrations.empty());
  EXPECT_EQ(Cond("Ready")->reason, "TargetTierUnavailable") << "eu-a has no ssd";
}

}  // namespace
}  // namespace strata::op
