// DedupPolicyReconciler on fakes: an in-memory API, a fake device behind the ClientCache's
// factory, a fake clock and hand-built inventory snapshots.
#include "strata/operator/dedup_policy_reconciler.h"

#include <gtest/gtest.h>

#include "fake_device.h"
#include "strata/kube/conditions.h"
#include "strata/kube/testing/fake_api_client.h"

namespace strata::op {
namespace {

using kube::Json;
namespace pb = storage::v1;
using testing::FakeDevice;

class FakeRecorder : public kube::EventRecorder {
 public:
  void Record(const Json&, kube::EventType, const std::string& reason,
              const std::string& message) override {
    events.push_back({reason, message});
  }
  std::vector<std::pair<std::string, std::string>> events;
};

constexpr char kNs[] = "team-a";

class DedupPolicyReconcilerTest : public ::testing::Test {
 protected:
  DedupPolicyReconcilerTest()
      : device_(std::make_shared<FakeDevice>("dev-a:9000")),
        clients_([this](const std::string&) { return device_; }),
        reconciler_(
            &api_, &policies_, &pvcs_, [this] { return snapshot_; }, &clients_, &recorder_,
            &clock_) {}

  // A PVC with labels and its LUN on the device.
  void AddVolume(const std::string& pvc, const Json& labels, pb::TierClass tier, bool dedup,
                 uint64_t logical = 0, uint64_t unique = 0) {
    pvcs_.Upsert(
        {{"apiVersion", "v1"},
         {"kind", "PersistentVolumeClaim"},
         {"metadata",
          {{"name", pvc}, {"namespace", kNs}, {"labels", labels}, {"resourceVersion", "1"}}}});
    pb::Lun lun;
    lun.set_name("lun-" + pvc);
    lun.set_tier(tier);
    lun.set_dedup(dedup);
    lun.set_size_bytes(1ull << 30);
    lun.set_owner(kNs);
    lun.mutable_space()->set_logical_bytes(logical);
    lun.mutable_space()->set_unique_bytes(unique);
    (*lun.mutable_metadata())[kPvcNameKey] = pvc;
    (*lun.mutable_metadata())[kPvcNamespaceKey] = kNs;
    device_->PutLun(lun);
    Sweep();
  }
  void SetSpace(const std::string& pvc, uint64_t logical, uint64_t unique) {
    pb::Lun lun = device_->lun("lun-" + pvc);
    lun.mutable_space()->set_logical_bytes(logical);
    lun.mutable_space()->set_unique_bytes(unique);
    device_->PutLun(lun);
    Sweep();
  }
  // A snapshot of the fake device as the inventory would take it.
  void Sweep() {
    auto snap = std::make_shared<InventorySnapshot>();
    snap->sweep = ++sweeps_;
    snap->taken = clock_.WallNow();
    DeviceView d;
    d.name = "dev-a";
    d.endpoint = "dev-a:9000";
    d.reachable = true;
    d.status.set_dedup_enabled(device_dedup_);
    d.luns = *device_->ListLuns();
    for (const auto& l : d.luns) {
      snap->by_pvc[{l.metadata().at(kPvcNamespaceKey), l.metadata().at(kPvcNameKey)}] =
          VolumeRef{"dev-a", l.name()};
    }
    snap->devices["dev-a"] = std::move(d);
    snapshot_ = snap;
  }
  void AddPolicy(const std::string& name, Json spec,
                 const std::string& created = "2026-01-01T00:00:00Z") {
    api_.Put(kube::resources::DedupPolicies(),
             {{"apiVersion", "strata.io/v1alpha1"},
              {"kind", "DedupPolicy"},
              {"metadata", {{"name", name}, {"namespace", kNs}, {"creationTimestamp", created}}},
              {"spec", std::move(spec)}});
    Sync();
  }
  // Edits the spec: a new generation, as the apiserver would give it.
  void EditPolicy(const std::string& name, const Json& patch) {
    Json p = Policy(name);
    p["spec"].merge_patch(patch);
    p["metadata"]["generation"] = p["metadata"].value("generation", 1) + 1;
    api_.Put(kube::resources::DedupPolicies(), p);
    Sync();
  }
  // The informer's view follows the API.
  void Sync() {
    for (const auto& key : policies_.Keys()) policies_.Remove(*policies_.Get(key));
    auto list = api_.List(kube::resources::DedupPolicies(), "", {});
    for (const auto& o : list->items) policies_.Upsert(o);
  }
  Json Policy(const std::string& name) {
    return *api_.Get(kube::resources::DedupPolicies(), kNs, name);
  }
  Status Reconcile(const std::string& name) {
    auto r = reconciler_.Reconcile(std::string(kNs) + "/" + name);
    Sync();
    return r.ok() ? Status::Ok() : r.status();
  }
  Json Volume(const std::string& policy, const std::string& pvc) {
    for (const auto& v : Policy(policy)["status"].value("volumes", Json::array())) {
      if (v["pvc"] == pvc) return v;
    }
    return Json();
  }
  std::optional<kube::Condition> Cond(const std::string& policy, const std::string& type) {
    return kube::FindCondition(Policy(policy)["status"], type);
  }

  kube::testing::FakeApiClient api_;
  kube::FakeClock clock_;
  kube::Store policies_, pvcs_;
  FakeRecorder recorder_;
  std::shared_ptr<FakeDevice> device_;
  device::ClientCache clients_;
  std::shared_ptr<const InventorySnapshot> snapshot_ = std::make_shared<InventorySnapshot>();
  uint64_t sweeps_ = 0;
  bool device_dedup_ = true;
  DedupPolicyReconciler reconciler_;
};

const Json kDb = {{"app", "db"}};

TEST_F(DedupPolicyReconcilerTest, InlineTurnsDedupOnWithFoldAndRecordsSince) {
  AddVolume("data", kDb, pb::TIER_CLASS_SSD, false, 100, 100);
  AddVolume("other", {{"app", "web"}}, pb::TIER_CLASS_SSD, false);
  AddPolicy("dp", {{"selector", {{"matchLabels", kDb}}}});
  ASSERT_TRUE(Reconcile("dp").ok());

  ASSERT_EQ(device_->calls().size(), 1u);
  EXPECT_EQ(device_->calls()[0].lun, "lun-data");
  EXPECT_TRUE(device_->calls()[0].dedup);
  EXPECT_TRUE(device_->calls()[0].fold) << "blocks already written are folded";
  Json v = Volume("dp", "data");
  EXPECT_EQ(v["dedup"], true);
  EXPECT_EQ(v["state"], "Deduplicating");
  EXPECT_EQ(v["device"], "dev-a");
  EXPECT_EQ(v["tier"], "ssd");
  EXPECT_TRUE(v.contains("since"));
  const Json status = Policy("dp")["status"];
  EXPECT_EQ(status["matchedVolumes"], 1);
  EXPECT_EQ(status["phase"], "Active");
  EXPECT_EQ(status["devices"][0]["name"], "dev-a");
  EXPECT_EQ(status["devices"][0]["volumes"], 1);
  ASSERT_EQ(recorder_.events.size(), 1u);
  EXPECT_EQ(recorder_.events[0].first, "DedupEnabled");
  EXPECT_NE(recorder_.events[0].second.find("folded in the background"), std::string::npos);
  EXPECT_EQ(Cond("dp", "Progressing")->status, "True");

  // The next sweep sees it on, with savings: nothing more to do; the totals follow.
  SetSpace("data", 300, 100);
  const std::string since = v["since"];
  clock_.Advance(std::chrono::minutes(5));
  ASSERT_TRUE(Reconcile("dp").ok());
  EXPECT_EQ(device_->calls().size(), 1u);
  EXPECT_EQ(Volume("dp", "data")["since"], since) << "kept from the status";
  EXPECT_EQ(Policy("dp")["status"]["dedupRatio"], 3.0);
  EXPECT_EQ(Policy("dp")["status"]["savedBytes"], 200);
  EXPECT_EQ(Cond("dp", "Ready")->status, "True");
  EXPECT_EQ(Cond("dp", "Progressing")->status, "False");
}

TEST_F(DedupPolicyReconcilerTest, DisabledTurnsDedupOff) {
  AddVolume("data", kDb, pb::TIER_CLASS_SAS, true);
  AddPolicy("dp", {{"selector", {{"matchLabels", kDb}}}, {"mode", "Disabled"}});
  ASSERT_TRUE(Reconcile("dp").ok());
  ASSERT_EQ(device_->calls().size(), 1u);
  EXPECT_FALSE(device_->calls()[0].dedup);
  EXPECT_EQ(Volume("dp", "data")["state"], "Off");
  EXPECT_FALSE(Volume("dp", "data").contains("since"));
  ASSERT_EQ(recorder_.events.size(), 1u);
  EXPECT_EQ(recorder_.events[0].first, "DedupDisabled");
  Sweep();
  ASSERT_TRUE(Reconcile("dp").ok());
  EXPECT_EQ(device_->calls().size(), 1u) << "idempotent";
}

TEST_F(DedupPolicyReconcilerTest, OnlyTheListedTiers) {
  AddVolume("fast", kDb, pb::TIER_CLASS_SSD, false);
  AddVolume("slow", kDb, pb::TIER_CLASS_SATA, false);
  AddPolicy("dp", {{"selector", {{"matchLabels", kDb}}}, {"tiers", {"sata"}}});
  ASSERT_TRUE(Reconcile("dp").ok());
  ASSERT_EQ(device_->calls().size(), 1u);
  EXPECT_EQ(device_->calls()[0].lun, "lun-slow");
  EXPECT_EQ(Policy("dp")["status"]["matchedVolumes"], 1);
  EXPECT_TRUE(Volume("dp", "fast").is_null());
}

TEST_F(DedupPolicyReconcilerTest, MinSavingsRatioTurnsOffAfterTheWindowNotBefore) {
  AddVolume("data", kDb, pb::TIER_CLASS_SSD, false);
  AddPolicy(
      "dp",
      {{"selector", {{"matchLabels", kDb}}}, {"minSavingsRatio", 1.5}, {"evaluationWindow", "1h"}});
  ASSERT_TRUE(Reconcile("dp").ok());  // on
  SetSpace("data", 120, 100);         // ratio 1.2 < 1.5

  clock_.Advance(std::chrono::minutes(59));
  Sweep();
  ASSERT_TRUE(Reconcile("dp").ok());
  EXPECT_EQ(device_->calls().size(), 1u) << "not before the window is over";
  EXPECT_EQ(Volume("dp", "data")["state"], "Deduplicating");

  clock_.Advance(std::chrono::minutes(2));
  Sweep();
  ASSERT_TRUE(Reconcile("dp").ok());
  ASSERT_EQ(device_->calls().size(), 2u);
  EXPECT_FALSE(device_->calls()[1].dedup);
  Json v = Volume("dp", "data");
  EXPECT_EQ(v["state"], "BelowMinSavings");
  EXPECT_EQ(v["turnedOffGeneration"], 1);
  EXPECT_TRUE(v.contains("turnedOffAt"));
  EXPECT_NE(v.value("message", "").find("below minSavingsRatio 1.50"), std::string::npos);
  EXPECT_EQ(recorder_.events.back().first, "DedupDisabled");
  EXPECT_NE(recorder_.events.back().second.find("below minSavingsRatio"), std::string::npos);

  // Stays off on later sweeps...
  clock_.Advance(std::chrono::hours(5));
  Sweep();
  ASSERT_TRUE(Reconcile("dp").ok());
  EXPECT_EQ(device_->calls().size(), 2u);
  EXPECT_EQ(Volume("dp", "data")["state"], "BelowMinSavings");
  // ... until the policy changes.
  EditPolicy("dp", {{"minSavingsRatio", 1.1}});
  ASSERT_TRUE(Reconcile("dp").ok());
  ASSERT_EQ(device_->calls().size(), 3u);
  EXPECT_TRUE(device_->calls()[2].dedup);
  EXPECT_EQ(Volume("dp", "data")["state"], "Deduplicating");
}

TEST_F(DedupPolicyReconcilerTest, TheOlderPolicyWinsTheYoungerNamesTheConflict) {
  AddVolume("data", kDb, pb::TIER_CLASS_SSD, false);
  AddPolicy("young", {{"selector", {{"matchLabels", kDb}}}, {"mode", "Disabled"}},
            "2026-03-01T00:00:00Z");
  AddPolicy("old", {{"selector", {{"matchLabels", kDb}}}}, "2026-01-01T00:00:00Z");
  ASSERT_TRUE(Reconcile("young").ok());
  EXPECT_TRUE(device_->calls().empty());
  auto conflict = Cond("young", "Conflict");
  ASSERT_TRUE(conflict);
  EXPECT_EQ(conflict->status, "True");
  EXPECT_NE(conflict->message.find("old"), std::string::npos);
  EXPECT_NE(conflict->message.find("data"), std::string::npos);
  EXPECT_EQ(Volume("young", "data")["state"], "Conflict");
  EXPECT_EQ(Policy("young")["status"]["matchedVolumes"], 0);

  ASSERT_TRUE(Reconcile("old").ok());
  ASSERT_EQ(device_->calls().size(), 1u);
  EXPECT_TRUE(device_->calls()[0].dedup);
  EXPECT_EQ(Cond("old", "Conflict")->status, "False");
}

TEST_F(DedupPolicyReconcilerTest, DeviceWithDedupDisabledIsNamedAndNotAskedAgain) {
  device_dedup_ = false;
  AddVolume("data", kDb, pb::TIER_CLASS_SSD, false);
  AddPolicy("dp", {{"selector", {{"matchLabels", kDb}}}});
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(Reconcile("dp").ok()) << "no error: no backoff retries";
    Sweep();
  }
  EXPECT_TRUE(device_->calls().empty());
  EXPECT_EQ(Volume("dp", "data")["state"], "DeviceDedupDisabled");
  auto ready = Cond("dp", "Ready");
  EXPECT_EQ(ready->status, "False");
  EXPECT_EQ(ready->reason, "DeviceDedupDisabled");
  EXPECT_NE(ready->message.find("dev-a"), std::string::npos);
  EXPECT_EQ(Policy("dp")["status"]["devices"][0]["dedupEnabled"], false);

  // The device refusing (its switch went off after the sweep) is the same.
  device_dedup_ = true;
  Sweep();
  device_->FailSetLunDedup(
      FailedPreconditionError("SetLunDedup lun-data: dedup is disabled on this device"));
  EXPECT_TRUE(Reconcile("dp").ok());
  EXPECT_EQ(Volume("dp", "data")["state"], "DeviceDedupDisabled");
}

TEST_F(DedupPolicyReconcilerTest, UnreachableDeviceIsRetriedWithBackoff) {
  AddVolume("data", kDb, pb::TIER_CLASS_SSD, false);
  AddPolicy("dp", {{"selector", {{"matchLabels", kDb}}}});
  device_->FailSetLunDedup(UnavailableError("dev-a:9000: connection refused"));
  EXPECT_FALSE(Reconcile("dp").ok());
  EXPECT_EQ(Volume("dp", "data")["state"], "Error");
  EXPECT_EQ(Cond("dp", "Ready")->reason, "ApplyFailed");
}

TEST_F(DedupPolicyReconcilerTest, MalformedPolicyIsReportedNeverThrown) {
  AddVolume("data", kDb, pb::TIER_CLASS_SSD, false);
  for (const Json& spec :
       {Json{{"selector", {{"matchLabels", kDb}}}, {"mode", "Sometimes"}},
        Json{{"selector", "app=db"}},
        Json{{"selector", {{"matchExpressions", {{{"key", "a"}, {"operator", "In"}}}}}}},
        Json{{"selector", {{"matchLabels", kDb}}}, {"minSavingsRatio", 0.5}}}) {
    SCOPED_TRACE(spec.dump());
    AddPolicy("bad", spec);
    EXPECT_TRUE(Reconcile("bad").ok());
    EXPECT_EQ(Policy("bad")["status"]["phase"], "Error");
    EXPECT_EQ(Cond("bad", "Ready")->reason, "InvalidSpec");
    ASSERT_TRUE(api_.Delete(kube::resources::DedupPolicies(), kNs, "bad", {}).ok());
  }
  EXPECT_TRUE(device_->calls().empty());
  // Malformed JSON at the top level too.
  api_.Put(kube::resources::DedupPolicies(), {{"kind", "DedupPolicy"},
                                              {"metadata", {{"name", "worse"}, {"namespace", kNs}}},
                                              {"spec", 7}});
  Sync();
  EXPECT_TRUE(Reconcile("worse").ok());
  EXPECT_EQ(Policy("worse")["status"]["phase"], "Error");
}

TEST_F(DedupPolicyReconcilerTest, MappersFindThePoliciesOfANamespace) {
  AddPolicy("dp", {{"selector", Json::object()}});
  EXPECT_EQ(reconciler_.PolicyKeysIn(kNs), std::vector<std::string>{"team-a/dp"});
  EXPECT_TRUE(reconciler_.PolicyKeysIn("team-b").empty());
  EXPECT_EQ(reconciler_.AllPolicyKeys().size(), 1u);
}

}  // namespace
}  // namespace strata::op
