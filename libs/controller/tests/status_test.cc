#include "strata/controller/status.h"

#include <gtest/gtest.h>

#include "strata/kube/conditions.h"
#include "strata/kube/testing/fake_api_client.h"

namespace strata::ctrl {
namespace {

using kube::Json;

class RecordingEvents : public kube::EventRecorder {
 public:
  void Record(const Json&, kube::EventType, const std::string& reason,
              const std::string& message) override {
    reasons.push_back(reason + ": " + message);
  }
  std::vector<std::string> reasons;
};

Json Policy() {
  return {{"kind", "DedupPolicy"},
          {"metadata", {{"namespace", "db"}, {"name", "p"}, {"generation", 3}}},
          {"spec", {{"mode", "Inline"}}}};
}

DesiredStatusFn PhaseFromSpec() {
  return [](const Json& o) -> Result<Json> {
    Json s = o.value("status", Json::object());
    s["phase"] = o["spec"]["mode"] == "Inline" ? "Active" : "Disabled";
    return s;
  };
}

TEST(WriteStatusTest, WritesOnlyWhatChanged) {
  kube::testing::FakeApiClient api;
  const auto r = kube::resources::DedupPolicies();
  api.Put(r, Policy());
  auto object = *api.Get(r, "db", "p");
  auto w = WriteStatus(api, r, object, PhaseFromSpec());
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_TRUE(w->changed);
  EXPECT_EQ(w->object["status"]["phase"], "Active");
  EXPECT_EQ(w->replaced, Json::object());
  EXPECT_EQ(api.status_writes(), 1);
  auto again = WriteStatus(api, r, w->object, PhaseFromSpec());
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->changed);
  EXPECT_EQ(api.status_writes(), 1) << "an unchanged status is not written";
}

TEST(WriteStatusTest, AConflictRecomputesOnTheFreshObject) {
  kube::testing::FakeApiClient api;
  const auto r = kube::resources::DedupPolicies();
  api.Put(r, Policy());
  auto stale = *api.Get(r, "db", "p");
  Json edited = stale;
  edited["spec"]["mode"] = "Disabled";
  ASSERT_TRUE(api.Update(r, edited).ok());  // someone edits the spec behind our cache
  auto w = WriteStatus(api, r, stale, PhaseFromSpec());
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_TRUE(w->changed);
  EXPECT_EQ(w->object["status"]["phase"], "Disabled") << "computed from the fresh spec";
}

TEST(WriteStatusTest, AGoneObjectIsDone) {
  kube::testing::FakeApiClient api;
  const auto r = kube::resources::DedupPolicies();
  api.Put(r, Policy());
  auto object = *api.Get(r, "db", "p");
  ASSERT_TRUE(api.Delete(r, "db", "p", {}).ok());
  auto w = WriteStatus(api, r, object, PhaseFromSpec());
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(w->gone);
  EXPECT_FALSE(w->changed);
}

TEST(WriteStatusTest, ADesiredErrorAborts) {
  kube::testing::FakeApiClient api;
  const auto r = kube::resources::DedupPolicies();
  api.Put(r, Policy());
  auto w = WriteStatus(api, r, *api.Get(r, "db", "p"),
                       [](const Json&) -> Result<Json> { return InvalidArgumentError("no"); });
  EXPECT_EQ(w.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(api.status_writes(), 0);
}

TEST(ReportInvalidObjectTest, OneConditionAndOneEventPerGenerationAndError) {
  kube::testing::FakeApiClient api;
  RecordingEvents events;
  const auto r = kube::resources::DedupPolicies();
  api.Put(r, Policy());
  const Status bad = InvalidArgumentError("spec.tiers[0]: \"nvme\" is not one of ssd, sas, sata");
  const auto now = kube::WallTime(std::chrono::seconds(1'700'000'000));
  ASSERT_TRUE(
      ReportInvalidObject(api, events, r, *api.Get(r, "db", "p"), bad, now, "InvalidSpec", "Error")
          .ok());
  auto stored = *api.Get(r, "db", "p");
  auto ready = kube::FindCondition(stored["status"], "Ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, "False");
  EXPECT_EQ(ready->reason, "InvalidSpec");
  EXPECT_EQ(ready->message, bad.message());
  EXPECT_EQ(ready->observed_generation, 3);
  EXPECT_EQ(stored["status"]["phase"], "Error");
  ASSERT_EQ(events.reasons.size(), 1u);
  // A resync of the same bad object: nothing new.
  ASSERT_TRUE(ReportInvalidObject(api, events, r, stored, bad, now, "InvalidSpec", "Error").ok());
  EXPECT_EQ(events.reasons.size(), 1u);
  EXPECT_EQ(api.status_writes(), 1);
}

TEST(ReportInvalidObjectTest, UnreadableMetadataIsSkipped) {
  kube::testing::FakeApiClient api;
  RecordingEvents events;
  EXPECT_TRUE(ReportInvalidObject(api, events, kube::resources::DedupPolicies(),
                                  Json{{"metadata", 7}}, InvalidArgumentError("metadata: bad"),
                                  kube::WallTime{})
                  .ok());
  EXPECT_TRUE(events.reasons.empty());
}

}  // namespace
}  // namespace strata::ctrl
