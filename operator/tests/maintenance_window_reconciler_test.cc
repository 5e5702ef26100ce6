#include "strata/operator/maintenance_window_reconciler.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include "strata/device/testing/fake_client.h"
#include "strata/kube/conditions.h"
#include "strata/kube/store.h"
#include "strata/kube/testing/fake_api_client.h"

namespace strata::op {
namespace {

using namespace std::chrono_literals;
using kube::Json;
namespace pb = storage::v1;

constexpr uint64_t kMiB = 1ull << 20;

class Recorder : public kube::EventRecorder {
 public:
  void Record(const Json&, kube::EventType, const std::string& reason,
              const std::string& message) override {
    std::lock_guard g(mu);
    reasons.push_back(reason);
    messages.push_back(message);
  }
  bool Has(const std::string& reason) {
    std::lock_guard g(mu);
    return std::find(reasons.begin(), reasons.end(), reason) != reasons.end();
  }
  std::mutex mu;
  std::vector<std::string> reasons, messages;
};

// Three devices a, b, c (endpoints a:1, b:1, c:1), each with one sata tier; a window selecting
// `rack=r1` (device a). The StorageDevice reconciler is played by Sync(): it carries each
// object's spec.desiredState to the fake device, and the inventory sweeps.
// Counts the GETs of StorageDevices (the live reads the device cache can save).
class CountingApiClient : public kube::testing::FakeApiClient {
 public:
  Result<Json> Get(const kube::Resource& r, std::string_view ns, std::string_view name) override {
    if (r.plural == kube::resources::StorageDevices().plural) ++device_gets;
    return FakeApiClient::Get(r, ns, name);
  }
  int device_gets = 0;
};

class MaintenanceWindowReconcilerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AddDevice("a", "r1", 4096 * kMiB);
    AddDevice("b", "r2", 1024 * kMiB);
    AddDevice("c", "r2", 1024 * kMiB);
  }
  void AddDevice(const std::string& name, const std::string& rack, uint64_t sata_free) {
    api_.Put(kube::resources::StorageDevices(),
             {{"apiVersion", "strata.io/v1alpha1"},
              {"kind", "StorageDevice"},
              {"metadata", {{"name", name}, {"labels", {{"rack", rack}}}}},
              {"spec",
               {{"endpoint", name + ":1"},
                {"desiredState", "Online"},
                {"tiers", Json::array({{{"class", "sata"}, {"capacityBytes", 1 << 30}}})}}}});
    fleet_.Get(name + ":1")->MutateStatus([&](pb::DeviceStatus& s) {
      auto* t = s.add_tiers();
      t->set_class_(pb::TIER_CLASS_SATA);
      t->set_capacity_bytes(8192 * kMiB);
      t->set_used_bytes(8192 * kMiB - sata_free);
      t->set_healthy(true);
    });
  }
  void AddLun(const std::string& device, const std::string& name, uint64_t size) {
    pb::Lun l;
    l.set_name(name);
    l.set_size_bytes(size);
    l.set_tier(pb::TIER_CLASS_SATA);
    fleet_.Get(device + ":1")->PutLun(l);
  }
  void CreateWindow(Json spec_overrides = Json::object()) {
    Json spec = {
        {"deviceSelector", {{"matchLabels", {{"rack", "r1"}}}}},
        {"schedule", {{"start", kube::FormatTime(clock_.WallNow() - 1min)}, {"duration", "1h"}}},
        {"drain", {{"leadTime", "0s"}, {"maxConcurrentMigrations", 2}}}};
    spec.merge_patch(spec_overrides);
    api_.Put(kube::resources::MaintenanceWindows(), {{"apiVersion", "strata.io/v1alpha1"},
                                                     {"kind", "MaintenanceWindow"},
                                                     {"metadata", {{"name", "mw"}}},
                                                     {"spec", spec}});
  }
  void PatchWindow(const Json& patch) {
    ASSERT_TRUE(api_.Patch(kube::resources::MaintenanceWindows(), "", "mw", kube::PatchType::kMerge,
                           patch, false)
                    .ok());
  }
  void Sync() {
    for (const char* name : {"a", "b", "c"}) {
      // Not counted: the fixture's own reads.
      Json d = *api_.FakeApiClient::Get(kube::resources::StorageDevices(), "", name);
      store_.Upsert(d);
      auto client = fleet_.Get(std::string(name) + ":1");
      (void)client->SetDeviceState(d["spec"]["desiredState"] == "Maintenance"
                                       ? pb::DEVICE_STATE_MAINTENANCE
                                       : pb::DEVICE_STATE_ONLINE,
                                   "");
    }
    inventory_.Sweep();
  }
  Result<ctrl::ReconcileResult> Reconcile() {
    Sync();
    MaintenanceWindowReconciler r(
        &api_,
        [this](const std::string& key) -> std::optional<Json> {
          auto o = api_.Get(kube::resources::MaintenanceWindows(), "", key);
          if (!o.ok()) return std::nullopt;
          return *o;
        },
        [this] { return inventory_.Current(); }, fleet_.cache(), &events_, options_, &clock_);
    auto result = r.Reconcile("mw");
    Sync();
    return result;
  }
  // The value of gauge `name` with exactly `labels` in the registry's collected families;
  // nullopt when there is no such series.
  std::optional<double> Gauge(const std::string& name,
                              const std::map<std::string, std::string>& labels) {
    for (const auto& family : registry_->Collect()) {
      if (family.name != name) continue;
      for (const auto& m : family.metric) {
        std::map<std::string, std::string> got;
        for (const auto& l : m.label) got[l.name] = l.value;
        if (got == labels) return m.gauge.value;
      }
    }
    return std::nullopt;
  }
  // The phases whose strata_maintenance_window_phase series reads 1 (and that all seven exist).
  std::string MetricPhase() {
    std::string ones;
    for (const char* p :
         {"Pending", "Draining", "InMaintenance", "Restoring", "Completed", "Failed", "Aborted"}) {
      auto v = Gauge("strata_maintenance_window_phase", {{"window", "mw"}, {"phase", p}});
      if (!v) return std::string("no series for ") + p;
      if (*v == 1) ones += (ones.empty() ? "" : ",") + std::string(p);
    }
    return ones;
  }
  Json Window() { return *api_.Get(kube::resources::MaintenanceWindows(), "", "mw"); }
  std::string Phase() { return Window()["status"].value("phase", ""); }
  std::string VolumePhase(const std::string& lun) {
    const Json w = Window();
    for (const auto& v : w["status"]["volumes"]) {
      if (v["lun"] == lun) return v["phase"];
    }
    return "";
  }
  std::string DesiredState(const std::string& device) {
    return (*api_.Get(kube::resources::StorageDevices(), "", device))["spec"]["desiredState"];
  }
  int Calls(const std::string& device, const std::string& prefix) {
    int n = 0;
    for (const auto& c : fleet_.Get(device + ":1")->Calls()) n += c.starts_with(prefix);
    return n;
  }
  std::string MovingTo(const std::string& device, const std::string& lun) {
    auto l = fleet_.Get(device + ":1")->GetLun(lun);
    if (!l.ok() || l->migration().state() != pb::MIGRATION_STATE_RUNNING) return "";
    return l->migration().to_device();
  }
  // What strata-stored does when a device move switches: the LUN lives on the target, the
  // source keeps a stub with moved_to (a move back replaces the stub).
  void CompleteMove(const std::string& from, const std::string& lun) {
    auto src = fleet_.Get(from + ":1");
    pb::Lun l = *src->GetLun(lun);
    const std::string to = l.migration().to_device();
    ASSERT_FALSE(to.empty()) << lun << " is not moving";
    pb::Lun moved = l;
    moved.clear_migration();
    moved.clear_moved_to();
    fleet_.Get(to)->PutLun(moved);
    l.set_moved_to(to);
    l.mutable_migration()->set_state(pb::MIGRATION_STATE_DONE);
    src->PutLun(l);
  }
  std::string Holder(const std::string& lun) {
    for (const char* d : {"a", "b", "c"}) {
      auto l = fleet_.Get(std::string(d) + ":1")->GetLun(lun);
      if (l.ok() && l->moved_to().empty()) return d;
    }
    return "";
  }

  kube::FakeClock clock_;
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  MaintenanceWindowReconciler::Options options_{.registry = registry_};
  CountingApiClient api_;
  kube::Store store_;
  device::testing::FakeFleet fleet_;
  VolumeInventory inventory_{&store_, fleet_.cache(), {}, &clock_};
  Recorder events_;
};

TEST_F(MaintenanceWindowReconcilerTest, CapacityShortIsRefusedBeforeAnyMove) {
  AddLun("a", "big", 1500 * kMiB);  // b and c have 1 GiB free each
  AddLun("a", "small", 100 * kMiB);
  CreateWindow();
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Phase(), "Pending");
  auto ready = kube::FindCondition(Window()["status"], "Ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, "False");
  EXPECT_EQ(ready->reason, "InsufficientCapacity");
  EXPECT_NE(ready->message.find("big (1.5 GiB sata on a)"), std::string::npos) << ready->message;
  EXPECT_NE(ready->message.find("short by"), std::string::npos) << ready->message;
  EXPECT_EQ(Calls("a", "MigrateLun"), 0) << "no half drain";
  EXPECT_TRUE(events_.Has("InsufficientCapacity"));
  EXPECT_EQ(DesiredState("a"), "Online");
}

TEST_F(MaintenanceWindowReconcilerTest, JurisdictionAndTargetSelectorLimitTheTargets) {
  AddLun("a", "l1", 800 * kMiB);
  AddLun("a", "l2", 800 * kMiB);
  // Only c may take data: the two LUNs do not fit on it alone.
  CreateWindow({{"drain", {{"targetDeviceSelector", {{"matchLabels", {{"rack", "r2"}}}}}}},
                {"allowedRegions", {"eu"}}});
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(kube::FindCondition(Window()["status"], "Ready")->reason, "InsufficientCapacity");
  EXPECT_NE(kube::FindCondition(Window()["status"], "Ready")->message.find("no eligible target"),
            std::string::npos);
  EXPECT_EQ(Calls("a", "MigrateLun"), 0);
}

TEST_F(MaintenanceWindowReconcilerTest, DrainRespectsMaxConcurrentMovesThenHoldsMaintenance) {
  AddLun("a", "l1", 300 * kMiB);
  AddLun("a", "l2", 200 * kMiB);
  AddLun("a", "l3", 100 * kMiB);
  CreateWindow();
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Phase(), "Draining");
  EXPECT_EQ(Calls("a", "MigrateLun"), 2) << "maxConcurrentMigrations 2";
  // Biggest first onto the device with most free space: l1 -> b, l2 -> c.
  EXPECT_EQ(MovingTo("a", "l1"), "b:1");
  EXPECT_EQ(MovingTo("a", "l2"), "c:1");
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Calls("a", "MigrateLun"), 2) << "still two in flight";
  CompleteMove("a", "l1");
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Calls("a", "MigrateLun"), 3);
  EXPECT_EQ(VolumePhase("l1"), "Moved");
  EXPECT_EQ(DesiredState("a"), "Online") << "not before it is drained";
  CompleteMove("a", "l2");
  CompleteMove("a", "l3");
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Phase(), "InMaintenance");
  EXPECT_EQ(DesiredState("a"), "Maintenance");
  EXPECT_EQ(Window()["status"]["progress"], "3/3 LUNs, 100%");
  EXPECT_EQ(Window()["status"]["devices"][0]["phase"], "InMaintenance");
  EXPECT_TRUE(kube::IsConditionTrue(Window()["status"], "Ready"));
  EXPECT_TRUE(events_.Has("Drained"));
  EXPECT_EQ(Holder("l1"), "b");
  EXPECT_EQ(Holder("l3"), "c") << "c has more room left than b";
}

TEST_F(MaintenanceWindowReconcilerTest, EveryMoveInFlightIsWatchedOnItsSourceForTheWindow) {
  // main gives MoveWatcher::Watch: the window is requeued the moment a move ends.
  std::vector<std::string> watched;
  options_.watch_move = [&](const std::string& endpoint, const std::string& lun,
                            const std::string& key) {
    watched.push_back(endpoint + " " + lun + " " + key);
  };
  AddLun("a", "l1", 300 * kMiB);
  AddLun("a", "l2", 200 * kMiB);
  AddLun("a", "l3", 100 * kMiB);
  CreateWindow({{"drain", {{"maxConcurrentMigrations", 1}}}});
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(watched, std::vector<std::string>{"a:1 l1 mw"}) << "the move just started";
  watched.clear();
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(watched, std::vector<std::string>{"a:1 l1 mw"})
      << "still in flight: watched again (after a restart, this is how a watch comes back)";
  watched.clear();
  CompleteMove("a", "l1");
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(watched, std::vector<std::string>{"a:1 l2 mw"}) << "l1 is done: the next one";
  watched.clear();
  CompleteMove("a", "l2");
  ASSERT_TRUE(Reconcile().ok());
  CompleteMove("a", "l3");
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_EQ(Phase(), "InMaintenance");
  watched.clear();
  PatchWindow({{"spec", {{"finish", true}}}});
  ASSERT_TRUE(Reconcile().ok());  // a back Online
  ASSERT_TRUE(Reconcile().ok());  // the first move back starts
  ASSERT_EQ(watched.size(), 1u);
  EXPECT_TRUE(watched[0].ends_with(" l1 mw") || watched[0].ends_with(" l2 mw") ||
              watched[0].ends_with(" l3 mw"))
      << watched[0];
  EXPECT_FALSE(watched[0].starts_with("a:1 "))
      << "a move back's source is its target: " << watched[0];
}

TEST_F(MaintenanceWindowReconcilerTest, TheDeviceCacheSavesALiveReadOncePastTheStateWanted) {
  options_.device_lookup = [this](const std::string& name) -> std::optional<Json> {
    // An up-to-date cache (not counted: no API call).
    auto d = api_.FakeApiClient::Get(kube::resources::StorageDevices(), "", name);
    if (!d.ok()) return std::nullopt;
    return *d;
  };
  AddLun("a", "l1", 300 * kMiB);
  AddLun("a", "l2", 200 * kMiB);
  CreateWindow({{"drain", {{"maxConcurrentMigrations", 1}}}});
  ASSERT_TRUE(Reconcile().ok());
  CompleteMove("a", "l1");
  ASSERT_TRUE(Reconcile().ok());
  CompleteMove("a", "l2");
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_EQ(Phase(), "InMaintenance");
  EXPECT_EQ(DesiredState("a"), "Maintenance");
  PatchWindow({{"spec", {{"finish", true}}}});
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(DesiredState("a"), "Online") << "the cache showed Maintenance: read live, patched";
  ASSERT_TRUE(Reconcile().ok());  // the first move back starts
  ASSERT_EQ(Phase(), "Restoring");
  const int before = api_.device_gets;
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(api_.device_gets - before, 0)
      << "two passes while Restoring, a Online in the cache: no live GET of a";
  options_.device_lookup = nullptr;
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(api_.device_gets - before, 1) << "without the cache, a pass reads a live";
}

TEST_F(MaintenanceWindowReconcilerTest, APassListsADeviceOnceWhenItFollowsManyOfItsLuns) {
  for (int i = 1; i <= 6; ++i) AddLun("a", "l" + std::to_string(i), 10 * kMiB);
  CreateWindow();
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_EQ(Phase(), "Draining");
  auto a = fleet_.Get("a:1");
  // What the fixture's own sweeps read, measured alone, then a pass with them.
  int lists = a->Reads("ListLuns"), gets = a->Reads("GetLun");
  Sync();
  Sync();
  const int sweep_lists = a->Reads("ListLuns") - lists, sweep_gets = a->Reads("GetLun") - gets;
  lists = a->Reads("ListLuns");
  gets = a->Reads("GetLun");
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(a->Reads("GetLun") - gets - sweep_gets, 0) << "6 LUNs followed: no GetLun each";
  EXPECT_EQ(a->Reads("ListLuns") - lists - sweep_lists, 1) << "one listing of a for the pass";
  CompleteMove("a", "l1");
  CompleteMove("a", "l2");
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(VolumePhase("l1"), "Moved") << "read from the listing";
  EXPECT_EQ(Calls("a", "MigrateLun"), 4) << "and the next two started";
}

TEST_F(MaintenanceWindowReconcilerTest, FinishMovesTheLunsBackAndBringsTheDeviceOnline) {
  AddLun("a", "l1", 300 * kMiB);
  CreateWindow();
  ASSERT_TRUE(Reconcile().ok());
  CompleteMove("a", "l1");
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_EQ(Phase(), "InMaintenance");
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Phase(), "InMaintenance") << "holds until the end";
  PatchWindow({{"spec", {{"finish", true}}}});
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(DesiredState("a"), "Online");
  EXPECT_EQ(Phase(), "Restoring");
  EXPECT_EQ(Calls("b", "MigrateLun"), 0) << "not while a is still in maintenance";
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(MovingTo("b", "l1"), "a:1") << "the move back starts once a is Online";
  EXPECT_EQ(VolumePhase("l1"), "Restoring");
  CompleteMove("b", "l1");
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Phase(), "Completed");
  EXPECT_EQ(VolumePhase("l1"), "Restored");
  EXPECT_EQ(Holder("l1"), "a");
  EXPECT_TRUE(events_.Has("LunRestored"));
}

TEST_F(MaintenanceWindowReconcilerTest, TheWindowsEndWithoutRestoreLeavesTheLunsOnTheTargets) {
  AddLun("a", "l1", 300 * kMiB);
  CreateWindow({{"restore", false}});
  ASSERT_TRUE(Reconcile().ok());
  CompleteMove("a", "l1");
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_EQ(Phase(), "InMaintenance");
  clock_.Advance(2h);
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Phase(), "Completed");
  EXPECT_EQ(DesiredState("a"), "Online");
  EXPECT_EQ(Holder("l1"), "b");
  EXPECT_EQ(Calls("b", "MigrateLun"), 0);
  EXPECT_FALSE(Window()["status"].contains("nextStart")) << "a one-off window has no next";
  clock_.Advance(48h);
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Phase(), "Completed") << "and runs once";
}

TEST_F(MaintenanceWindowReconcilerTest, AbortMidDrainCancelsInFlightAndBringsBackWhatMoved) {
  AddLun("a", "l1", 300 * kMiB);
  AddLun("a", "l2", 200 * kMiB);
  AddLun("a", "l3", 100 * kMiB);
  CreateWindow({{"drain", {{"maxConcurrentMigrations", 1}}}});
  ASSERT_TRUE(Reconcile().ok());
  CompleteMove("a", "l1");
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_EQ(MovingTo("a", "l2"), "c:1");
  PatchWindow({{"spec", {{"abort", true}}}});
  ASSERT_TRUE(Reconcile().ok());
  auto l2 = fleet_.Get("a:1")->GetLun("l2");
  EXPECT_EQ(l2->migration().state(), pb::MIGRATION_STATE_CANCELLED);
  EXPECT_EQ(Holder("l2"), "a") << "whole on its source";
  EXPECT_EQ(VolumePhase("l2"), "Cancelled");
  EXPECT_EQ(VolumePhase("l3"), "Cancelled") << "never started";
  EXPECT_EQ(Phase(), "Restoring");
  EXPECT_EQ(MovingTo("b", "l1"), "a:1");
  CompleteMove("b", "l1");
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Phase(), "Aborted");
  EXPECT_EQ(Holder("l1"), "a");
  EXPECT_EQ(DesiredState("a"), "Online");
  EXPECT_TRUE(events_.Has("MoveCancelled"));
}

TEST_F(MaintenanceWindowReconcilerTest, RestartResumesWithoutASecondMove) {
  AddLun("a", "l1", 300 * kMiB);
  AddLun("a", "l2", 200 * kMiB);
  CreateWindow();
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_EQ(Calls("a", "MigrateLun"), 2);
  // The status write after the moves started was lost (the operator died): the plan says
  // Pending, the devices say the moves run. A fresh reconciler must not start them again.
  Json w = Window();
  for (auto& v : w["status"]["volumes"]) v["phase"] = "Pending";
  ASSERT_TRUE(api_.UpdateStatus(kube::resources::MaintenanceWindows(), w).ok());
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Calls("a", "MigrateLun"), 2);
  EXPECT_EQ(VolumePhase("l1"), "Moving");
  CompleteMove("a", "l1");
  CompleteMove("a", "l2");
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Phase(), "InMaintenance");
  EXPECT_EQ(Calls("a", "MigrateLun"), 2);
}

TEST_F(MaintenanceWindowReconcilerTest, PendingUntilTheLeadTimeAndDeletionRunsTheFinalizer) {
  AddLun("a", "l1", 300 * kMiB);
  CreateWindow({{"schedule", {{"start", kube::FormatTime(clock_.WallNow() + 3h)}}},
                {"drain", {{"leadTime", "1h"}}}});
  auto r = Reconcile();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Phase(), "Pending");
  EXPECT_EQ(kube::FindCondition(Window()["status"], "Ready")->reason, "Scheduled");
  EXPECT_TRUE(kube::HasFinalizer(Window(), MaintenanceWindowReconciler::kFinalizer));
  EXPECT_EQ(Calls("a", "MigrateLun"), 0);
  clock_.Advance(2h + 1s);
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Phase(), "Draining");
  // Deleted mid-drain: the finalizer cancels the move and lets the object go.
  PatchWindow({{"metadata", {{"deletionTimestamp", kube::FormatTime(clock_.WallNow())}}}});
  // The cleanup's status write moves the resourceVersion past the one the finalizer's removal is
  // conditional on: that pass ends ABORTED (the controller retries it), the next one removes it.
  auto deleted = Reconcile();
  if (!deleted.ok()) {
    EXPECT_EQ(deleted.status().code(), StatusCode::kAborted) << deleted.status().ToString();
    deleted = Reconcile();
  }
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  EXPECT_EQ(Phase(), "Aborted");
  EXPECT_EQ(Holder("l1"), "a");
  EXPECT_EQ(fleet_.Get("a:1")->GetLun("l1")->migration().state(), pb::MIGRATION_STATE_CANCELLED);
  EXPECT_FALSE(kube::HasFinalizer(Window(), MaintenanceWindowReconciler::kFinalizer));
}

TEST_F(MaintenanceWindowReconcilerTest, MetricsFollowTheMovesBytesAndPhase) {
  AddLun("a", "l1", 300 * kMiB);
  AddLun("a", "l2", 200 * kMiB);
  AddLun("a", "l3", 100 * kMiB);
  CreateWindow({{"drain", {{"maxConcurrentMigrations", 2}}}});
  const std::map<std::string, std::string> mw = {{"window", "mw"}};
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_EQ(Phase(), "Draining");
  EXPECT_EQ(MetricPhase(), "Draining");
  EXPECT_EQ(Gauge("strata_maintenance_luns_draining", mw), 2);
  EXPECT_EQ(Gauge("strata_maintenance_bytes_left", mw), 600.0 * kMiB) << "nothing copied yet";
  // l1 half copied: its progress comes from the source's migration state.
  pb::Lun l1 = *fleet_.Get("a:1")->GetLun("l1");
  l1.mutable_migration()->set_bytes_total(300 * kMiB);
  l1.mutable_migration()->set_bytes_copied(100 * kMiB);
  fleet_.Get("a:1")->PutLun(l1);
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Gauge("strata_maintenance_bytes_left", mw), 500.0 * kMiB);
  CompleteMove("a", "l1");
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Gauge("strata_maintenance_luns_draining", mw), 2) << "l2 and now l3";
  EXPECT_EQ(Gauge("strata_maintenance_bytes_left", mw), 300.0 * kMiB);
  CompleteMove("a", "l2");
  CompleteMove("a", "l3");
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_EQ(Phase(), "InMaintenance");
  EXPECT_EQ(MetricPhase(), "InMaintenance");
  EXPECT_EQ(Gauge("strata_maintenance_luns_draining", mw), 0);
  EXPECT_EQ(Gauge("strata_maintenance_bytes_left", mw), 0);
  PatchWindow({{"spec", {{"finish", true}}}});
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_EQ(Phase(), "Restoring");
  EXPECT_EQ(MetricPhase(), "Restoring");
  EXPECT_EQ(Gauge("strata_maintenance_luns_draining", mw), 2) << "maxConcurrentMigrations back";
  EXPECT_EQ(Gauge("strata_maintenance_bytes_left", mw), 600.0 * kMiB)
      << "l3, still to start back, counts whole";
  for (const char* l : {"l1", "l2"}) CompleteMove(Holder(l), l);
  ASSERT_TRUE(Reconcile().ok());
  CompleteMove(Holder("l3"), "l3");
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_EQ(Phase(), "Completed");
  EXPECT_EQ(MetricPhase(), "Completed");
  EXPECT_EQ(Gauge("strata_maintenance_luns_draining", mw), 0);
  EXPECT_EQ(Gauge("strata_maintenance_bytes_left", mw), 0);
  // The window is gone: its series go with it.
  ASSERT_TRUE(api_.Delete(kube::resources::MaintenanceWindows(), "", "mw", {}).ok());
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_FALSE(Gauge("strata_maintenance_bytes_left", mw));
  EXPECT_FALSE(
      Gauge("strata_maintenance_window_phase", {{"window", "mw"}, {"phase", "Completed"}}));
}

TEST_F(MaintenanceWindowReconcilerTest, AbortShowsAbortedAndNothingLeft) {
  AddLun("a", "l1", 300 * kMiB);
  CreateWindow();
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_EQ(Gauge("strata_maintenance_luns_draining", {{"window", "mw"}}), 1);
  PatchWindow({{"spec", {{"abort", true}}}});
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_EQ(Phase(), "Aborted");
  EXPECT_EQ(MetricPhase(), "Aborted");
  EXPECT_EQ(Gauge("strata_maintenance_luns_draining", {{"window", "mw"}}), 0);
  EXPECT_EQ(Gauge("strata_maintenance_bytes_left", {{"window", "mw"}}), 0) << "l1 Cancelled";
}

// ---- Recurring windows: each occurrence drains, holds and restores; the window then waits,
// Pending, for the next one (status.nextStart), with the occurrence in status.history.

TEST_F(MaintenanceWindowReconcilerTest, DailyWindowRunsASecondOccurrence) {
  AddLun("a", "l1", 300 * kMiB);
  const kube::WallTime start = clock_.WallNow() - 1min;
  CreateWindow({{"schedule", {{"start", kube::FormatTime(start)}, {"recurrence", "Daily"}}}});
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_EQ(Phase(), "Draining");
  EXPECT_EQ(Window()["status"]["nextStart"], kube::FormatTime(start)) << "the occurrence under way";
  CompleteMove("a", "l1");
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_EQ(Phase(), "InMaintenance");
  // The occurrence's duration passes: back Online, l1 moves back, and the window waits.
  clock_.Advance(1h);
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_EQ(Phase(), "Restoring");
  ASSERT_TRUE(Reconcile().ok());
  CompleteMove("b", "l1");
  ASSERT_TRUE(Reconcile().ok());
  Json st = Window()["status"];
  EXPECT_EQ(st["phase"], "Pending");
  EXPECT_EQ(st["nextStart"], kube::FormatTime(start + 24h));
  EXPECT_EQ(st["occurrences"], 1);
  EXPECT_EQ(st["lastCompleted"], kube::FormatTime(clock_.WallNow()));
  ASSERT_EQ(st["history"].size(), 1u);
  EXPECT_EQ(st["history"][0]["start"], kube::FormatTime(start));
  EXPECT_EQ(st["history"][0]["result"], "Completed");
  EXPECT_FALSE(st.contains("volumes")) << "the next occurrence plans afresh";
  EXPECT_EQ(kube::FindCondition(st, "Ready")->reason, "Scheduled");
  EXPECT_TRUE(events_.Has("OccurrenceCompleted"));
  EXPECT_EQ(Holder("l1"), "a");
  EXPECT_EQ(DesiredState("a"), "Online");
  EXPECT_EQ(MetricPhase(), "Pending");
  // Until the next start minus the lead time (0s), nothing moves.
  clock_.Advance(22h);
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Phase(), "Pending");
  EXPECT_EQ(Calls("a", "MigrateLun"), 1);
  // The second occurrence: drained again, ended early by finish, which is then set back.
  clock_.Advance(1h);
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_EQ(Phase(), "Draining");
  EXPECT_EQ(Calls("a", "MigrateLun"), 2);
  CompleteMove("a", "l1");
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_EQ(Phase(), "InMaintenance");
  EXPECT_EQ(DesiredState("a"), "Maintenance");
  PatchWindow({{"spec", {{"finish", true}}}});
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_TRUE(Reconcile().ok());
  CompleteMove(Holder("l1"), "l1");
  ASSERT_TRUE(Reconcile().ok());
  st = Window()["status"];
  EXPECT_EQ(st["phase"], "Pending");
  EXPECT_EQ(st["nextStart"], kube::FormatTime(start + 48h));
  EXPECT_EQ(st["occurrences"], 2);
  ASSERT_EQ(st["history"].size(), 2u);
  EXPECT_EQ(st["history"][0]["start"], kube::FormatTime(start + 24h)) << "newest first";
  EXPECT_EQ(Window()["spec"]["finish"], false) << "finish ends one occurrence, not the next";
  EXPECT_TRUE(events_.Has("FinishCleared"));
  EXPECT_EQ(Holder("l1"), "a");
  EXPECT_EQ(DesiredState("a"), "Online");
}

TEST_F(MaintenanceWindowReconcilerTest, MissedOccurrencesAreSkippedUnlessStillInsideTheirDuration) {
  AddLun("a", "l1", 300 * kMiB);
  const kube::WallTime start = clock_.WallNow() + 1h;
  CreateWindow({{"schedule", {{"start", kube::FormatTime(start)}, {"recurrence", "Daily"}}}});
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_EQ(Phase(), "Pending");
  EXPECT_EQ(Window()["status"]["nextStart"], kube::FormatTime(start));
  // The operator is down for three days: the occurrences at +1h, +25h and +49h came and went.
  clock_.Advance(72h);
  ASSERT_TRUE(Reconcile().ok());
  Json st = Window()["status"];
  EXPECT_EQ(st["phase"], "Pending");
  EXPECT_EQ(st["nextStart"], kube::FormatTime(start + 72h));
  EXPECT_EQ(st["missedOccurrences"], 3);
  ASSERT_EQ(st["history"].size(), 3u);
  EXPECT_EQ(st["history"][0]["result"], "Missed");
  EXPECT_EQ(st["history"][0]["start"], kube::FormatTime(start + 48h));
  ASSERT_TRUE(events_.Has("OccurrenceMissed"));
  const auto& msgs = events_.messages;
  EXPECT_NE(std::find_if(msgs.begin(), msgs.end(),
                         [](const std::string& m) {
                           return m.find("3 occurrences from") != std::string::npos;
                         }),
            msgs.end());
  EXPECT_EQ(Calls("a", "MigrateLun"), 0);
  // Back half-way into the next occurrence: still inside its duration, so it runs, late.
  clock_.Advance(1h + 30min);
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Phase(), "Draining");
  EXPECT_EQ(Window()["status"]["nextStart"], kube::FormatTime(start + 72h));
  EXPECT_EQ(Window()["status"]["missedOccurrences"], 3) << "no second report";
}

TEST_F(MaintenanceWindowReconcilerTest, SuspendSkipsOccurrencesAndAbortEndsTheSeries) {
  AddLun("a", "l1", 300 * kMiB);
  const kube::WallTime start = clock_.WallNow() - 1min;
  CreateWindow({{"schedule", {{"start", kube::FormatTime(start)}, {"recurrence", "Weekly"}}},
                {"suspend", true}});
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Phase(), "Pending");
  EXPECT_EQ(kube::FindCondition(Window()["status"], "Ready")->reason, "Suspended");
  clock_.Advance(2h);
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Window()["status"]["nextStart"], kube::FormatTime(start + 7 * 24h));
  EXPECT_EQ(Window()["status"]["history"][0]["message"], "spec.suspend is true");
  EXPECT_EQ(Calls("a", "MigrateLun"), 0);
  PatchWindow({{"spec", {{"suspend", false}}}});
  clock_.Advance(7 * 24h - 2h + 1s);
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_EQ(Phase(), "Draining");
  // abort stops the whole series (a one-shot "skip this occurrence" is finish; pausing is
  // suspend): Aborted for good, the LUN whole on a.
  PatchWindow({{"spec", {{"abort", true}}}});
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Phase(), "Aborted");
  EXPECT_EQ(Window()["status"]["history"][0]["result"], "Aborted");
  clock_.Advance(7 * 24h);
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(Phase(), "Aborted");
  EXPECT_EQ(Calls("a", "MigrateLun"), 1);
  EXPECT_EQ(Holder("l1"), "a");
}

TEST_F(MaintenanceWindowReconcilerTest, OverlappingOccurrencesAreRefusedNamingTheFields) {
  CreateWindow({{"schedule", {{"recurrence", "Daily"}, {"duration", "23h"}}},
                {"drain", {{"leadTime", "1h"}}}});
  ASSERT_TRUE(Reconcile().ok());
  auto ready = kube::FindCondition(Window()["status"], "Ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->reason, "InvalidSpec");
  EXPECT_NE(ready->message.find("spec.schedule.duration (23h) plus spec.drain.leadTime (1h)"),
            std::string::npos)
      << ready->message;
  EXPECT_NE(ready->message.find("Daily period (24h)"), std::string::npos) << ready->message;
}

TEST_F(MaintenanceWindowReconcilerTest, WindowsForMapsADeviceToTheWindowsSelectingIt) {
  CreateWindow();
  kube::Store windows;
  windows.Upsert(Window());
  EXPECT_EQ(MaintenanceWindowReconciler::WindowsFor(
                windows, *api_.Get(kube::resources::StorageDevices(), "", "a")),
            std::vector<std::string>{"mw"});
  EXPECT_TRUE(MaintenanceWindowReconciler::WindowsFor(
                  windows, *api_.Get(kube::resources::StorageDevices(), "", "b"))
                  .empty());
}

}  // namespace
}  // namespace strata::op
