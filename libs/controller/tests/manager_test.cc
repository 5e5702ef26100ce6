#include "strata/controller/manager.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "strata/kube/testing/fake_api_client.h"

namespace strata::ctrl {
namespace {

using kube::Json;
using namespace std::chrono_literals;

class CountingReconciler : public Reconciler {
 public:
  Result<ReconcileResult> Reconcile(const std::string& key) override {
    std::lock_guard g(mu);
    calls[key]++;
    cv.notify_all();
    return ReconcileResult{};
  }
  bool WaitCalls(const std::string& key, int n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 10s, [&] { return calls[key] >= n; });
  }
  int Calls(const std::string& key) {
    std::lock_guard g(mu);
    return calls[key];
  }
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, int> calls;
};

Json Policy(const std::string& ns, const std::string& name, Json labels = Json::object()) {
  return {{"kind", "TieringPolicy"},
          {"metadata", {{"namespace", ns}, {"name", name}, {"labels", labels}}},
          {"spec", Json::object()}};
}

Json Pvc(const std::string& ns, const std::string& name, const std::string& app) {
  return {{"kind", "PersistentVolumeClaim"},
          {"metadata", {{"namespace", ns}, {"name", name}, {"labels", {{"app", app}}}}}};
}

TEST(ManagerTest, OneInformerPerResourceHoweverManyAskForIt) {
  kube::testing::FakeApiClient api;
  Manager mgr(&api, {}, nullptr);
  auto* a = mgr.Informer(kube::resources::PersistentVolumeClaims());
  auto* b = mgr.Informer(kube::resources::PersistentVolumeClaims());
  EXPECT_EQ(a, b);
  EXPECT_NE(a, mgr.Informer(kube::resources::StorageDevices()));
}

TEST(ManagerTest, WatchesRequeueThePrimaryKeysTheMapperNames) {
  kube::testing::FakeApiClient api;
  api.Put(kube::resources::TieringPolicies(), Policy("db", "hot"));
  api.Put(kube::resources::PersistentVolumeClaims(), Pvc("db", "data-0", "postgres"));
  Metrics metrics("strata_test");
  Manager mgr(&api, {}, &metrics);
  CountingReconciler rec;
  auto* pvcs = mgr.Informer(kube::resources::PersistentVolumeClaims());
  mgr.AddController("tieringpolicy", kube::resources::TieringPolicies(), &rec)
      .Watches(pvcs, [](const Json& pvc) {
        return std::vector<std::string>{pvc["metadata"].value("namespace", "") + "/hot",
                                        "other/ghost"};
      });
  EXPECT_FALSE(mgr.Ready());
  std::stop_source stop;
  std::jthread run([&] { EXPECT_TRUE(mgr.Run(stop.get_token()).ok()); });
  EXPECT_TRUE(rec.WaitCalls("db/hot", 1));
  EXPECT_TRUE(rec.WaitCalls("other/ghost", 1)) << "a mapped key is reconciled even if unknown";
  EXPECT_TRUE(mgr.Ready());
  EXPECT_TRUE(mgr.IsLeader()) << "without leader election every replica acts";
  stop.request_stop();
}

TEST(ManagerTest, LabelSelectorShardsThePrimaryObjects) {
  kube::testing::FakeApiClient api;
  api.Put(kube::resources::TieringPolicies(), Policy("db", "mine", {{"strata.io/shard", "a"}}));
  api.Put(kube::resources::TieringPolicies(), Policy("db", "theirs", {{"strata.io/shard", "b"}}));
  Manager::Options o;
  o.label_selector = *kube::ParseLabelSelector("strata.io/shard=a");
  Manager mgr(&api, o, nullptr);
  CountingReconciler rec;
  auto* pvcs = mgr.Informer(kube::resources::PersistentVolumeClaims());
  api.Put(kube::resources::PersistentVolumeClaims(), Pvc("db", "x", "y"));
  // A watched object mapping to the other shard's policy must not reach the reconciler. One
  // worker and a FIFO queue: once the sentinel after it is reconciled, "db/theirs" was handled.
  mgr.AddController("tieringpolicy", kube::resources::TieringPolicies(), &rec, /*workers=*/1)
      .Watches(pvcs, [](const Json&) {
        return std::vector<std::string>{"db/theirs", "zz/sentinel"};
      });
  std::stop_source stop;
  std::jthread run([&] { EXPECT_TRUE(mgr.Run(stop.get_token()).ok()); });
  EXPECT_TRUE(rec.WaitCalls("db/mine", 1));
  EXPECT_TRUE(rec.WaitCalls("zz/sentinel", 1)) << "a key of no object is not filtered";
  stop.request_stop();
  run.join();
  EXPECT_EQ(rec.Calls("db/theirs"), 0);
}

TEST(ManagerTest, WatchNamespaceScopesNamespacedInformersOnly) {
  kube::testing::FakeApiClient api;
  api.Put(kube::resources::TieringPolicies(), Policy("db", "in"));
  api.Put(kube::resources::TieringPolicies(), Policy("web", "out"));
  Manager::Options o;
  o.watch_namespace = "db";
  Manager mgr(&api, o, nullptr);
  CountingReconciler rec;
  mgr.AddController("tieringpolicy", kube::resources::TieringPolicies(), &rec);
  std::stop_source stop;
  std::jthread run([&] { EXPECT_TRUE(mgr.Run(stop.get_token()).ok()); });
  EXPECT_TRUE(rec.WaitCalls("db/in", 1));
  stop.request_stop();
  run.join();
  EXPECT_EQ(rec.Calls("web/out"), 0);
}

TEST(ManagerTest, RunnablesStartAfterTheCachesSyncAndStopWithTheManager) {
  kube::testing::FakeApiClient api;
  api.Put(kube::resources::StorageDevices(),
          {{"kind", "StorageDevice"}, {"metadata", {{"name", "a"}}}});
  Manager mgr(&api, {}, nullptr);
  auto* devices = mgr.Informer(kube::resources::StorageDevices());
  std::mutex mu;
  std::condition_variable cv;
  bool started = false, saw_synced = false, stopped = false;
  mgr.AddRunnable("poller", [&](std::stop_token stop) {
    {
      std::lock_guard g(mu);
      started = true;
      saw_synced = devices->HasSynced() && devices->store().Size() == 1;
    }
    cv.notify_all();
    std::condition_variable_any wait;
    std::mutex m;
    std::unique_lock l(m);
    wait.wait(l, stop, [] { return false; });
    std::lock_guard g(mu);
    stopped = true;
  });
  std::stop_source stop;
  std::jthread run([&] { EXPECT_TRUE(mgr.Run(stop.get_token()).ok()); });
  {
    std::unique_lock l(mu);
    ASSERT_TRUE(cv.wait_for(l, 10s, [&] { return started; }));
    EXPECT_TRUE(saw_synced);
  }
  stop.request_stop();
  run.join();
  EXPECT_TRUE(stopped);
}

TEST(OwnerKeysTest, NamesOwnersOfThePrimaryKind) {
  Json owned = {
      {"metadata",
       {{"namespace", "db"},
        {"ownerReferences",
         {{{"apiVersion", "strata.io/v1alpha1"}, {"kind", "TieringPolicy"}, {"name", "hot"}},
          {{"apiVersion", "apps/v1"}, {"kind", "TieringPolicy"}, {"name", "x"}},
          {{"apiVersion", "v1"}, {"kind", "Pod"}, {"name", "p"}}}}}}};
  EXPECT_EQ(OwnerKeys(owned, kube::resources::TieringPolicies()),
            std::vector<std::string>{"db/hot"});
  EXPECT_TRUE(OwnerKeys(Json::object(), kube::resources::TieringPolicies()).empty());
}

}  // namespace
}  // namespace strata::ctrl
