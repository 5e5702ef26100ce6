#include "strata/operator/storage_device_reconciler.h"

#include <gtest/gtest.h>

#include "strata/kube/conditions.h"
#include "strata/kube/testing/fake_api_client.h"

namespace strata::op {
namespace {

using kube::Json;
using namespace std::chrono_literals;
namespace pb = storage::v1;

class FakeDeviceClient : public DeviceClient {
 public:
  Result<pb::DeviceStatus> GetDeviceStatus(const std::string& endpoint,
                                           std::chrono::milliseconds) override {
    std::lock_guard g(mu);
    calls++;
    if (!up)
      return UnavailableError("device " + endpoint + ": GetDeviceStatus: connection refused");
    return status;
  }
  Result<pb::DeviceStatus> SetDeviceState(const std::string&, pb::DeviceState state,
                                          const std::string& reason,
                                          std::chrono::milliseconds) override {
    std::lock_guard g(mu);
    if (!up) return UnavailableError("connection refused");
    status.set_state(state);
    status.set_state_reason(reason);
    set_calls++;
    return status;
  }
  void Forget(const std::string&) override {}

  std::mutex mu;
  int set_calls = 0;
  bool up = true;
  int calls = 0;
  pb::DeviceStatus status;
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
  std::vector<std::string> Reasons() const {
    std::vector<std::string> out;
    for (const auto& e : events) out.push_back(e.reason);
    return out;
  }
  std::vector<RecordedEvent> events;
};

pb::DeviceStatus TwoTierDevice() {
  pb::DeviceStatus d;
  d.set_name("dev-1");
  d.set_device_id("0123456789abcdef");
  d.set_version("0.1.0");
  d.set_state(pb::DEVICE_STATE_ONLINE);
  d.set_capacity_bytes(110ull << 30);
  d.set_used_bytes(1ull << 30);
  d.set_lun_count(2);
  d.mutable_space()->set_dedup_ratio(1.5000000001);
  auto* ssd = d.add_tiers();
  ssd->set_class_(pb::TIER_CLASS_SSD);
  ssd->set_capacity_bytes(10ull << 30);
  ssd->set_used_bytes(1ull << 30);
  ssd->set_healthy(true);
  auto* sata = d.add_tiers();
  sata->set_class_(pb::TIER_CLASS_SATA);
  sata->set_capacity_bytes(100ull << 30);
  sata->set_healthy(true);
  d.add_portals("127.0.0.1:10809");
  return d;
}

class StorageDeviceReconcilerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    devices_.status = TwoTierDevice();
    api_.Put(kube::resources::StorageDevices(),
             {{"apiVersion", "strata.io/v1alpha1"},
              {"kind", "StorageDevice"},
              {"metadata", {{"name", "dev-1"}, {"generation", 3}}},
              {"spec",
               {{"endpoint", "127.0.0.1:7400"},
                {"tiers", Json::array({{{"class", "ssd"}, {"capacityBytes", 1}},
                                       {{"class", "sata"}, {"capacityBytes", 1}}})}}}});
  }
  Result<ReconcileResult> Reconcile() {
    StorageDeviceReconciler r(
        &api_,
        [this](const std::string& key) -> std::optional<Json> {
          auto o = api_.Get(kube::resources::StorageDevices(), "", key);
          if (!o.ok()) return std::nullopt;
          return *o;
        },
        &devices_, &events_, {5s, 2000ms}, &clock_);
    return r.Reconcile("dev-1");
  }
  Json Status() { return (*api_.Get(kube::resources::StorageDevices(), "", "dev-1"))["status"]; }

  kube::FakeClock clock_;
  kube::testing::FakeApiClient api_;
  FakeDeviceClient devices_;
  FakeRecorder events_;
};

TEST_F(StorageDeviceReconcilerTest, ReflectsTheDeviceIntoStatus) {
  auto r = Reconcile();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->requeue_after, std::chrono::nanoseconds(5s)) << "keeps polling the device";
  Json s = Status();
  EXPECT_EQ(s["phase"], "Online");
  EXPECT_EQ(s["observedGeneration"], 3);
  EXPECT_EQ(s["capacityBytes"], int64_t{110} << 30);
  EXPECT_EQ(s["usedBytes"], int64_t{1} << 30);
  EXPECT_EQ(s["dedupRatio"], 1.5);
  EXPECT_EQ(s["lunCount"], 2);
  EXPECT_EQ(s["deviceId"], "0123456789abcdef");
  ASSERT_EQ(s["tiers"].size(), 2u);
  EXPECT_EQ(s["tiers"][1], (Json{{"class", "sata"},
                                 {"capacityBytes", int64_t{100} << 30},
                                 {"usedBytes", 0},
                                 {"healthy", true}}));
  EXPECT_TRUE(kube::IsConditionTrue(s, "Ready"));
  EXPECT_FALSE(kube::IsConditionTrue(s, "Degraded"));
  EXPECT_FALSE(kube::IsConditionTrue(s, "Unreachable"));
  EXPECT_EQ(kube::FindCondition(s, "Ready")->observed_generation, 3);
  EXPECT_EQ(events_.Reasons(), (std::vector<std::string>{"DeviceReady"}));
}

TEST_F(StorageDeviceReconcilerTest, WritesOnlyWhenSomethingChanged) {
  ASSERT_TRUE(Reconcile().ok());
  ASSERT_TRUE(Reconcile().ok());
  clock_.Advance(1h);
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(api_.status_writes(), 1) << "an unchanged device costs no API write";
  devices_.status.set_used_bytes(2ull << 30);
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(api_.status_writes(), 2);
  EXPECT_EQ(Status()["usedBytes"], int64_t{2} << 30);
  EXPECT_EQ(events_.events.size(), 1u) << "no event for a routine number change";
}

TEST_F(StorageDeviceReconcilerTest, UnreachableThenBack) {
  ASSERT_TRUE(Reconcile().ok());
  const std::string ready_since = kube::FindCondition(Status(), "Ready")->last_transition_time;
  clock_.Advance(10s);
  devices_.up = false;
  auto r = Reconcile();
  ASSERT_TRUE(r.ok()) << "an unreachable device is a state to report, not a reconcile error";
  EXPECT_EQ(r->requeue_after, std::chrono::nanoseconds(5s));
  Json s = Status();
  EXPECT_EQ(s["phase"], "Offline");
  EXPECT_TRUE(kube::IsConditionTrue(s, "Unreachable"));
  EXPECT_NE(kube::FindCondition(s, "Unreachable")->message.find("connection refused"),
            std::string::npos);
  EXPECT_FALSE(kube::IsConditionTrue(s, "Ready"));
  EXPECT_EQ(s["capacityBytes"], int64_t{110} << 30) << "last known numbers stay";
  EXPECT_NE(kube::FindCondition(s, "Ready")->last_transition_time, ready_since);

  clock_.Advance(10s);
  devices_.up = true;
  ASSERT_TRUE(Reconcile().ok());
  s = Status();
  EXPECT_EQ(s["phase"], "Online");
  EXPECT_TRUE(kube::IsConditionTrue(s, "Ready"));
  EXPECT_FALSE(kube::IsConditionTrue(s, "Unreachable"));
  EXPECT_EQ(events_.Reasons(),
            (std::vector<std::string>{"DeviceReady", "DeviceUnreachable", "PhaseChanged",
                                      "DeviceReady", "PhaseChanged"}));
  EXPECT_EQ(events_.events[1].type, "Warning");
}

TEST_F(StorageDeviceReconcilerTest, DegradedOnAnUnhealthyOrMissingTier) {
  devices_.status.mutable_tiers(1)->set_healthy(false);
  devices_.status.mutable_tiers(1)->set_message("I/O error on /data/sata");
  ASSERT_TRUE(Reconcile().ok());
  Json s = Status();
  EXPECT_EQ(s["phase"], "Degraded");
  EXPECT_TRUE(kube::IsConditionTrue(s, "Degraded"));
  EXPECT_EQ(kube::FindCondition(s, "Degraded")->reason, "TierUnhealthy");
  EXPECT_NE(kube::FindCondition(s, "Degraded")->message.find("I/O error on /data/sata"),
            std::string::npos);
  EXPECT_FALSE(kube::IsConditionTrue(s, "Ready"));

  devices_.status.mutable_tiers(1)->set_healthy(true);
  devices_.status.mutable_tiers()->RemoveLast();  // sata gone, but spec lists it
  ASSERT_TRUE(Reconcile().ok());
  s = Status();
  EXPECT_EQ(kube::FindCondition(s, "Degraded")->reason, "TierMissing");
  EXPECT_NE(kube::FindCondition(s, "Degraded")->message.find("sata"), std::string::npos);
}

TEST_F(StorageDeviceReconcilerTest, MaintenanceIsReadyButNotOnline) {
  devices_.status.set_state(pb::DEVICE_STATE_MAINTENANCE);
  ASSERT_TRUE(api_.Patch(kube::resources::StorageDevices(), "", "dev-1", kube::PatchType::kMerge,
                         {{"spec", {{"desiredState", "Maintenance"}}}}, false)
                  .ok());
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(devices_.set_calls, 0);
  EXPECT_EQ(Status()["phase"], "Maintenance");
  EXPECT_TRUE(kube::IsConditionTrue(Status(), "Ready"));
}

TEST_F(StorageDeviceReconcilerTest, DrivesTheDeviceToTheDesiredState) {
  ASSERT_TRUE(api_.Patch(kube::resources::StorageDevices(), "", "dev-1", kube::PatchType::kMerge,
                         {{"spec", {{"desiredState", "Maintenance"}}}}, false)
                  .ok());
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(devices_.set_calls, 1);
  EXPECT_EQ(devices_.status.state(), pb::DEVICE_STATE_MAINTENANCE);
  EXPECT_EQ(Status()["phase"], "Maintenance");
  EXPECT_EQ(Status()["stateReason"], "StorageDevice dev-1 spec.desiredState=Maintenance");
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(devices_.set_calls, 1) << "already there: no call";

  ASSERT_TRUE(api_.Patch(kube::resources::StorageDevices(), "", "dev-1", kube::PatchType::kMerge,
                         {{"spec", {{"desiredState", "Online"}}}}, false)
                  .ok());
  devices_.status.set_state_reason("");
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(devices_.status.state(), pb::DEVICE_STATE_ONLINE);
  EXPECT_EQ(Status()["phase"], "Online");
  EXPECT_EQ(events_.Reasons()[0], "DeviceStateChanged");
}

// The apiserver's schema keeps such objects out, but the reconciler does not depend on it: a
// field of the wrong type is a condition and an Event on the object, not an exception or a retry.
TEST_F(StorageDeviceReconcilerTest, AMalformedObjectGetsAConditionAndAnEventNotARetry) {
  ASSERT_TRUE(
      api_.Patch(
              kube::resources::StorageDevices(), "", "dev-1", kube::PatchType::kMerge,
              {{"spec", {{"tiers", Json::array({{{"class", "ssd"}, {"capacityBytes", "lots"}}})}}}},
              false)
          .ok());
  const std::string error = "spec.tiers[0].capacityBytes: must be an integer, not string \"lots\"";
  auto r = Reconcile();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->requeue_after.has_value()) << "no retry: an edit triggers the next reconcile";
  EXPECT_EQ(devices_.calls, 0);
  Json s = Status();
  auto ready = kube::FindCondition(s, "Ready");
  ASSERT_TRUE(ready.has_value());
  EXPECT_EQ(ready->status, "False");
  EXPECT_EQ(ready->reason, "InvalidSpec");
  EXPECT_EQ(ready->message, error);
  ASSERT_EQ(events_.events.size(), 1u);
  EXPECT_EQ(events_.events[0].type, "Warning");
  EXPECT_EQ(events_.events[0].reason, "InvalidSpec");
  EXPECT_EQ(events_.events[0].message, error);

  const int writes = api_.status_writes();
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_EQ(api_.status_writes(), writes) << "the same bad object again: no write";
  EXPECT_EQ(events_.events.size(), 1u) << "and no second Event";

  ASSERT_TRUE(
      api_.Patch(kube::resources::StorageDevices(), "", "dev-1", kube::PatchType::kMerge,
                 {{"spec", {{"tiers", Json::array({{{"class", "ssd"}, {"capacityBytes", 1}}})}}}},
                 false)
          .ok());
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_TRUE(kube::IsConditionTrue(Status(), "Ready")) << "fixed: reconciled as usual";
}

TEST_F(StorageDeviceReconcilerTest, AMalformedStatusIsRewritten) {
  Json object = *api_.Get(kube::resources::StorageDevices(), "", "dev-1");
  object["status"] = {{"conditions", "not a list"}};
  api_.Put(kube::resources::StorageDevices(), object);
  auto r = Reconcile();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(kube::FindCondition(Status(), "Ready")->message,
            "status.conditions: must be an array, not string \"not a list\"");
  ASSERT_TRUE(Reconcile().ok());
  EXPECT_TRUE(kube::IsConditionTrue(Status(), "Ready")) << "the rewritten status parses";
}

TEST_F(StorageDeviceReconcilerTest, DeletedObjectIsDone) {
  ASSERT_TRUE(api_.Delete(kube::resources::StorageDevices(), "", "dev-1", {}).ok());
  auto r = Reconcile();
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->requeue_after.has_value());
  EXPECT_EQ(devices_.calls, 0);
}

}  // namespace
}  // namespace strata::op
