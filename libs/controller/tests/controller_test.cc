#include "strata/controller/controller.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "strata/kube/testing/fake_api_client.h"

namespace strata::ctrl {
namespace {

using kube::Json;
using namespace std::chrono_literals;

class ScriptedReconciler : public Reconciler {
 public:
  Result<ReconcileResult> Reconcile(const std::string& key) override {
    {
      std::lock_guard g(mu);
      if (!active.insert(key).second) overlap = true;
      calls[key]++;
    }
    std::this_thread::sleep_for(1ms);
    std::lock_guard g(mu);
    active.erase(key);
    cv.notify_all();
    if (fail_first && calls[key] == 1) return UnavailableError("device down");
    return ReconcileResult{};
  }
  bool WaitCalls(const std::string& key, int n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 10s, [&] { return calls[key] >= n; });
  }
  std::mutex mu;
  std::condition_variable cv;
  std::set<std::string> active;
  std::map<std::string, int> calls;
  bool overlap = false;
  bool fail_first = false;
};

Json Device(const std::string& name) {
  return {
      {"kind", "StorageDevice"}, {"metadata", {{"name", name}}}, {"spec", {{"endpoint", "x:1"}}}};
}

TEST(ControllerTest, ReconcilesListedObjectsAndRetriesErrorsWithBackoff) {
  kube::testing::FakeApiClient api;
  api.Put(kube::resources::StorageDevices(), Device("a"));
  api.Put(kube::resources::StorageDevices(), Device("b"));
  kube::Informer informer(&api, kube::resources::StorageDevices(), {});
  ScriptedReconciler rec;
  rec.fail_first = true;
  Metrics metrics;
  Controller::Options o;
  o.workers = 3;
  o.queue.backoff.base = 1ms;
  Controller c("storagedevice", &informer, &rec, &metrics, o);
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(5s));
  std::jthread run([&](std::stop_token s) { c.Run(s); });
  EXPECT_TRUE(rec.WaitCalls("a", 2)) << "an error is retried";
  EXPECT_TRUE(rec.WaitCalls("b", 2));
  run.request_stop();
  run.join();
  informer.Stop();
  EXPECT_FALSE(rec.overlap);
}

// A reconciler that throws on one object (as nlohmann::json does on a field of the wrong type)
// costs that object a retry with backoff, never the worker: the other objects keep reconciling.
class ThrowingReconciler : public ScriptedReconciler {
 public:
  Result<ReconcileResult> Reconcile(const std::string& key) override {
    auto r = ScriptedReconciler::Reconcile(key);
    if (key == "bad") static_cast<void>(Json::parse("{}").at("spec"));  // throws out_of_range
    return r;
  }
};

TEST(ControllerTest, AThrowingReconcileIsAnErrorNotACrash) {
  kube::testing::FakeApiClient api;
  api.Put(kube::resources::StorageDevices(), Device("bad"));
  api.Put(kube::resources::StorageDevices(), Device("good"));
  kube::Informer informer(&api, kube::resources::StorageDevices(), {});
  ThrowingReconciler rec;
  Metrics metrics;
  Controller::Options o;
  o.workers = 1;  // one worker: it must survive the throw to reconcile anything else
  o.queue.backoff.base = 1ms;
  Controller c("storagedevice", &informer, &rec, &metrics, o);
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(5s));
  std::jthread run([&](std::stop_token s) { c.Run(s); });
  EXPECT_TRUE(rec.WaitCalls("bad", 3)) << "the throwing key is retried";
  EXPECT_TRUE(rec.WaitCalls("good", 1)) << "and the worker goes on with the others";
  run.request_stop();
  run.join();
  informer.Stop();
}

TEST(ControllerTest, DoesNothingWhileItMayNotAct) {
  kube::testing::FakeApiClient api;
  api.Put(kube::resources::StorageDevices(), Device("a"));
  kube::Informer informer(&api, kube::resources::StorageDevices(), {});
  ScriptedReconciler rec;
  std::atomic<bool> leader{false};
  Controller::Options o;
  o.may_act = [&] { return leader.load(); };
  Controller c("storagedevice", &informer, &rec, nullptr, o);
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(5s));
  std::jthread run([&](std::stop_token s) { c.Run(s); });
  std::this_thread::sleep_for(100ms);
  {
    std::lock_guard g(rec.mu);
    EXPECT_EQ(rec.calls["a"], 0) << "no reconcile without the lease";
  }
  leader = true;
  EXPECT_TRUE(rec.WaitCalls("a", 1)) << "the key was kept for later";
  run.request_stop();
  run.join();
  informer.Stop();
}

}  // namespace
}  // namespace strata::ctrl
