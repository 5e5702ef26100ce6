#include "strata/controller/finalizer.h"

#include <gtest/gtest.h>

#include "strata/kube/conditions.h"
#include "strata/kube/testing/fake_api_client.h"

namespace strata::ctrl {
namespace {

using kube::Json;
constexpr std::string_view kFinalizer = "strata.io/maintenance";

struct Steps {
  int applies = 0, cleanups = 0;
  bool cleanup_fails = false;
  FinalizerStep apply() {
    return [this](const Json& o) -> Result<ReconcileResult> {
      EXPECT_TRUE(kube::HasFinalizer(o, kFinalizer)) << "apply runs with the finalizer on";
      ++applies;
      return ReconcileResult{};
    };
  }
  FinalizerStep cleanup() {
    return [this](const Json&) -> Result<ReconcileResult> {
      ++cleanups;
      if (cleanup_fails) return UnavailableError("device down");
      return ReconcileResult{};
    };
  }
};

Json Window() {
  return {{"kind", "MaintenanceWindow"}, {"metadata", {{"name", "w"}}}, {"spec", Json::object()}};
}

TEST(FinalizeTest, AddsTheFinalizerThenApplies) {
  kube::testing::FakeApiClient api;
  const auto r = kube::resources::MaintenanceWindows();
  api.Put(r, Window());
  Steps s;
  auto res = Finalize(api, r, *api.Get(r, "", "w"), kFinalizer, s.apply(), s.cleanup());
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(s.applies, 1);
  EXPECT_TRUE(kube::HasFinalizer(*api.Get(r, "", "w"), kFinalizer));
  // Again: no second write, just apply.
  ASSERT_TRUE(Finalize(api, r, *api.Get(r, "", "w"), kFinalizer, s.apply(), s.cleanup()).ok());
  EXPECT_EQ(s.applies, 2);
  EXPECT_EQ(s.cleanups, 0);
}

TEST(FinalizeTest, CleanupBeforeTheFinalizerGoes) {
  kube::testing::FakeApiClient api;
  const auto r = kube::resources::MaintenanceWindows();
  Json w = Window();
  w["metadata"]["finalizers"] = {std::string(kFinalizer)};
  w["metadata"]["deletionTimestamp"] = "2026-12-06T00:00:00Z";
  api.Put(r, w);
  Steps s;
  s.cleanup_fails = true;
  auto res = Finalize(api, r, *api.Get(r, "", "w"), kFinalizer, s.apply(), s.cleanup());
  EXPECT_EQ(res.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(kube::HasFinalizer(*api.Get(r, "", "w"), kFinalizer)) << "kept until cleanup works";
  s.cleanup_fails = false;
  ASSERT_TRUE(Finalize(api, r, *api.Get(r, "", "w"), kFinalizer, s.apply(), s.cleanup()).ok());
  EXPECT_FALSE(kube::HasFinalizer(*api.Get(r, "", "w"), kFinalizer));
  EXPECT_EQ(s.cleanups, 2);
  EXPECT_EQ(s.applies, 0);
}

TEST(FinalizeTest, DeletedWithoutOurFinalizerIsNothingToDo) {
  kube::testing::FakeApiClient api;
  const auto r = kube::resources::MaintenanceWindows();
  Json w = Window();
  w["metadata"]["deletionTimestamp"] = "2026-12-06T00:00:00Z";
  w["metadata"]["finalizers"] = {"someone.else/x"};
  api.Put(r, w);
  Steps s;
  ASSERT_TRUE(Finalize(api, r, *api.Get(r, "", "w"), kFinalizer, s.apply(), s.cleanup()).ok());
  EXPECT_EQ(s.applies + s.cleanups, 0);
}

}  // namespace
}  // namespace strata::ctrl
