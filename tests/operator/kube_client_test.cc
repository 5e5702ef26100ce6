// The Kubernetes client, informer, Events and leader election against the real kube-apiserver of
// the test control plane (label controlplane). No fake API server anywhere in this file.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "kube_test_util.h"
#include "strata/common/env.h"
#include "strata/kube/clock.h"
#include "strata/kube/conditions.h"
#include "strata/kube/errors.h"
#include "strata/kube/events.h"
#include "strata/kube/informer.h"
#include "strata/kube/leader_election.h"

namespace strata::kube {
namespace {

using namespace std::chrono_literals;
using testing::ConfigMap;
using testing::ConnectOrDie;
using testing::PartitionableClient;
using testing::StorageDevice;
using testing::UniqueName;

class KubeClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    client_ = ConnectOrDie(&config_);
    ns_ = UniqueName("kct");
    auto created = client_->Create(
        resources::Namespaces(), "",
        {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns_}}}});
    ASSERT_TRUE(created.ok()) << created.status().ToString();
  }
  void TearDown() override {
    (void)client_->Delete(resources::Namespaces(), "", ns_, {});
    for (const auto& name : devices_)
      (void)client_->Delete(resources::StorageDevices(), "", name, {});
  }

  ClientConfig config_;
  std::unique_ptr<ApiClient> client_;
  std::string ns_;
  std::vector<std::string> devices_;
};

TEST_F(KubeClientTest, CreateGetUpdatePatchDelete) {
  const Resource cm = resources::ConfigMaps();
  auto created = client_->Create(cm, ns_, ConfigMap(ns_, "a", {{"k", "v1"}}));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_FALSE(ResourceVersionOf(*created).empty());

  auto again = client_->Create(cm, ns_, ConfigMap(ns_, "a"));
  ASSERT_FALSE(again.ok());
  EXPECT_TRUE(IsAlreadyExists(again.status())) << again.status().ToString();
  EXPECT_EQ(HttpCode(again.status()), 409);

  auto got = client_->Get(cm, ns_, "a");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ((*got)["data"]["k"], "v1");

  Json modified = *got;
  modified["data"]["k"] = "v2";
  auto updated = client_->Update(cm, modified);
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();

  // The same stale object again: optimistic concurrency says no.
  modified["data"]["k"] = "v3";
  auto stale = client_->Update(cm, modified);
  ASSERT_FALSE(stale.ok());
  EXPECT_TRUE(IsConflict(stale.status())) << stale.status().ToString();
  EXPECT_NE(stale.status().message().find("the object has been modified"), std::string::npos)
      << "the API's own message is kept: " << stale.status().message();

  auto merged =
      client_->Patch(cm, ns_, "a", PatchType::kMerge, {{"data", {{"m", "merge"}}}}, false);
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  EXPECT_EQ((*merged)["data"], (Json{{"k", "v2"}, {"m", "merge"}}));
  auto jsonpatched =
      client_->Patch(cm, ns_, "a", PatchType::kJson,
                     Json::array({{{"op", "replace"}, {"path", "/data/k"}, {"value", "jp"}},
                                  {{"op", "remove"}, {"path", "/data/m"}}}),
                     false);
  ASSERT_TRUE(jsonpatched.ok()) << jsonpatched.status().ToString();
  EXPECT_EQ((*jsonpatched)["data"], (Json{{"k", "jp"}}));
  auto bad_patch =
      client_->Patch(cm, ns_, "a", PatchType::kJson,
                     Json::array({{{"op", "test"}, {"path", "/data/k"}, {"value", "x"}}}), false);
  EXPECT_FALSE(bad_patch.ok()) << "a failed JSON-patch test op is an error";

  // Delete preconditions: a wrong UID refuses, the right one deletes.
  DeleteOptions wrong;
  wrong.precondition_uid = "00000000-0000-0000-0000-000000000000";
  Status st = client_->Delete(cm, ns_, "a", wrong);
  EXPECT_TRUE(IsConflict(st)) << st.ToString();
  DeleteOptions right;
  right.precondition_uid = (*jsonpatched)["metadata"]["uid"];
  right.precondition_resource_version = ResourceVersionOf(*jsonpatched);
  st = client_->Delete(cm, ns_, "a", right);
  EXPECT_TRUE(st.ok()) << st.ToString();
  st = client_->Delete(cm, ns_, "a", {});
  EXPECT_TRUE(IsNotFound(st)) << st.ToString();
  EXPECT_TRUE(IsNotFound(client_->Get(cm, ns_, "a").status()));
}

TEST_F(KubeClientTest, TokenFileIsReReadWhenTheTokenRotates) {
  // In a pod the kubelet rotates the service-account token file; the client must pick up the new
  // token after a 401 without a restart.
  const std::string path = "/tmp/strata-kube-token-" + UniqueName("t");
  ASSERT_TRUE(Env::Default()->WriteFileAtomically(path, "not-a-valid-token\n").ok());
  ClientConfig rotating = config_;
  rotating.token.clear();
  rotating.token_file = path;
  auto client = NewHttpApiClient(rotating, Env::Default());
  ASSERT_TRUE(client.ok());
  auto denied = (*client)->Get(resources::Namespaces(), "", ns_);
  EXPECT_EQ(denied.status().code(), StatusCode::kUnauthenticated) << denied.status().ToString();
  EXPECT_EQ(HttpCode(denied.status()), 401);

  ASSERT_TRUE(Env::Default()->WriteFileAtomically(path, config_.token + "\n").ok());
  auto allowed = (*client)->Get(resources::Namespaces(), "", ns_);
  EXPECT_TRUE(allowed.ok()) << allowed.status().ToString();
  (void)Env::Default()->RemoveFile(path);
}

TEST_F(KubeClientTest, TlsIsVerifiedAgainstTheConfiguredCa) {
  ClientConfig wrong_ca = config_;
  wrong_ca.ca_pem.clear();  // the system's CAs do not know the test control plane's CA
  auto client = NewHttpApiClient(wrong_ca, Env::Default());
  ASSERT_TRUE(client.ok());
  auto r = (*client)->Get(resources::Namespaces(), "", ns_);
  ASSERT_FALSE(r.ok()) << "an unverifiable server certificate must be refused";
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();

  ClientConfig insecure = wrong_ca;
  insecure.insecure_skip_tls_verify = true;
  client = NewHttpApiClient(insecure, Env::Default());
  ASSERT_TRUE(client.ok());
  EXPECT_TRUE((*client)->Get(resources::Namespaces(), "", ns_).ok())
      << "insecure-skip-tls-verify turns verification off";
}

TEST_F(KubeClientTest, ListPagesThroughContinueTokens) {
  const Resource cm = resources::ConfigMaps();
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(client_->Create(cm, ns_, ConfigMap(ns_, "p" + std::to_string(i))).ok());
  }
  ListOptions lo;
  lo.limit = 3;
  auto first = client_->List(cm, ns_, lo);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->items.size(), 3u);
  EXPECT_FALSE(first->continue_token.empty());
  EXPECT_EQ(first->items[0]["kind"], "ConfigMap");

  std::string rv;
  auto all = ListAll(*client_, cm, ns_, lo, &rv);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  std::set<std::string> names;
  for (const auto& o : *all) names.insert(o["metadata"]["name"].get<std::string>());
  // The namespace's own kube-root-ca.crt ConfigMap may or may not exist on 1.20: count ours.
  int ours = 0;
  for (int i = 0; i < 7; ++i) ours += names.count("p" + std::to_string(i));
  EXPECT_EQ(ours, 7);
  EXPECT_FALSE(rv.empty());

  lo.label_selector = "no-such-label=1";
  auto none = ListAll(*client_, cm, ns_, lo, nullptr);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(KubeClientTest, UpdateWithRetryRereadsOnConflict) {
  const Resource cm = resources::ConfigMaps();
  ASSERT_TRUE(client_->Create(cm, ns_, ConfigMap(ns_, "c", {{"n", "0"}})).ok());
  int calls = 0;
  auto result = UpdateWithRetry(*client_, cm, ns_, "c", [&](Json& obj) {
    ++calls;
    if (calls == 1) {
      // Someone else writes between our read and our write: our PUT must get 409.
      auto other =
          client_->Patch(cm, ns_, "c", PatchType::kMerge, {{"data", {{"other", "x"}}}}, false);
      EXPECT_TRUE(other.ok()) << other.status().ToString();
    }
    obj["data"]["n"] = std::to_string(calls);
    return Status::Ok();
  });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(calls, 2) << "one conflict, one re-read and retry";
  EXPECT_EQ((*result)["data"], (Json{{"n", "2"}, {"other", "x"}})) << "the other write survived";

  auto aborted = UpdateWithRetry(*client_, cm, ns_, "c",
                                 [](Json&) { return FailedPreconditionError("no thanks"); });
  EXPECT_EQ(aborted.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(KubeClientTest, StatusSubresourceAndInvalidObjects) {
  const Resource sd = resources::StorageDevices();
  const std::string name = UniqueName("sdev");
  devices_.push_back(name);
  auto created = client_->Create(sd, "", StorageDevice(name, "127.0.0.1:1"));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ((*created)["spec"]["desiredState"], "Online") << "defaulted by the schema";

  Json obj = *created;
  obj["status"] = {{"phase", "Online"}, {"usedBytes", 42}};
  obj["spec"]["endpoint"] = "tampered:1";
  auto st = client_->UpdateStatus(sd, obj);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ((*st)["status"]["usedBytes"], 42);
  EXPECT_EQ((*st)["spec"]["endpoint"], "127.0.0.1:1") << "a status write never changes spec";

  auto patched =
      client_->Patch(sd, "", name, PatchType::kMerge, {{"status", {{"usedBytes", 43}}}}, true);
  ASSERT_TRUE(patched.ok()) << patched.status().ToString();
  EXPECT_EQ((*patched)["status"]["usedBytes"], 43);

  Json bad = StorageDevice(UniqueName("sdev-bad"), "no-port");
  auto rejected = client_->Create(sd, "", bad);
  ASSERT_FALSE(rejected.ok());
  EXPECT_TRUE(IsInvalid(rejected.status())) << rejected.status().ToString();
  EXPECT_EQ(HttpCode(rejected.status()), 422);
  EXPECT_NE(rejected.status().message().find("spec.endpoint"), std::string::npos)
      << "the message names the field: " << rejected.status().message();

  auto bad_status = client_->Patch(
      sd, "", name, PatchType::kMerge,
      {{"status", {{"conditions", Json::array({{{"type", "Ready"}, {"status", "Maybe"}}})}}}},
      true);
  ASSERT_FALSE(bad_status.ok());
  EXPECT_NE(bad_status.status().message().find("Unsupported value: \"Maybe\""), std::string::npos)
      << bad_status.status().message();
}

// Collects watch events on a thread until told to stop.
class WatchCollector {
 public:
  WatchCollector(ApiClient* client, Resource r, std::string ns, WatchOptions o)
      : thread_([=, this](std::stop_token stop) {
          result_ = client->Watch(
              r, ns, o,
              [this](WatchEvent&& ev) {
                std::lock_guard g(mu_);
                events_.push_back(std::move(ev));
                cv_.notify_all();
                return true;
              },
              stop);
          std::lock_guard g(mu_);
          done_ = true;
          cv_.notify_all();
        }) {}
  ~WatchCollector() { (void)Stop(); }

  // Waits until `n` non-bookmark events arrived.
  bool WaitFor(size_t n, std::chrono::seconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return Count() >= n || done_; }) && Count() >= n;
  }
  std::vector<WatchEvent> Events() {
    std::lock_guard g(mu_);
    std::vector<WatchEvent> out;
    for (const auto& e : events_)
      if (e.type != WatchEventType::kBookmark) out.push_back(e);
    return out;
  }
  Status Stop() {
    if (thread_.joinable()) {
      thread_.request_stop();
      thread_.join();
    }
    return result_;
  }
  bool WaitDone(std::chrono::seconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return done_; });
  }
  Status result() {
    std::lock_guard g(mu_);
    return result_;
  }

 private:
  size_t Count() const {
    size_t n = 0;
    for (const auto& e : events_) n += e.type != WatchEventType::kBookmark;
    return n;
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<WatchEvent> events_;
  bool done_ = false;
  Status result_;
  std::jthread thread_;
};

TEST_F(KubeClientTest, WatchStreamsChangesInOrderAndStopsOnRequest) {
  const Resource cm = resources::ConfigMaps();
  std::string rv;
  ASSERT_TRUE(ListAll(*client_, cm, ns_, {}, &rv).ok());
  WatchOptions wo;
  wo.resource_version = rv;
  WatchCollector watch(client_.get(), cm, ns_, wo);

  ASSERT_TRUE(client_->Create(cm, ns_, ConfigMap(ns_, "w", {{"v", "1"}})).ok());
  ASSERT_TRUE(
      client_->Patch(cm, ns_, "w", PatchType::kMerge, {{"data", {{"v", "2"}}}}, false).ok());
  ASSERT_TRUE(client_->Delete(cm, ns_, "w", {}).ok());
  ASSERT_TRUE(watch.WaitFor(3, 20s)) << watch.result().ToString();
  auto events = watch.Events();
  ASSERT_GE(events.size(), 3u);
  // kube-root-ca.crt may show up on newer apiservers; keep ours.
  std::vector<WatchEvent> ours;
  for (auto& e : events)
    if (e.object["metadata"]["name"] == "w") ours.push_back(e);
  ASSERT_EQ(ours.size(), 3u);
  EXPECT_EQ(ours[0].type, WatchEventType::kAdded);
  EXPECT_EQ(ours[1].type, WatchEventType::kModified);
  EXPECT_EQ(ours[1].object["data"]["v"], "2");
  EXPECT_EQ(ours[2].type, WatchEventType::kDeleted);

  const auto t0 = std::chrono::steady_clock::now();
  Status st = watch.Stop();
  EXPECT_EQ(st.code(), StatusCode::kCancelled) << st.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s)
      << "stopping a watch does not wait for the server";
}

TEST_F(KubeClientTest, WatchEndsCleanlyAtTheServerTimeout) {
  WatchOptions wo;
  wo.timeout_seconds = 1;
  WatchCollector watch(client_.get(), resources::ConfigMaps(), ns_, wo);
  ASSERT_TRUE(watch.WaitDone(15s));
  EXPECT_TRUE(watch.result().ok()) << watch.result().ToString();
}

// A CRD of our own whose watch cache starts now: resourceVersions from before it are too old for
// it, which is how a real 410 is had without waiting for the cache to roll over.
Json ProbeCrd(const std::string& hex) {
  const std::string plural = "p" + hex + "s";
  return {
      {"apiVersion", "apiextensions.k8s.io/v1"},
      {"kind", "CustomResourceDefinition"},
      {"metadata", {{"name", plural + ".test.strata.io"}}},
      {"spec",
       {{"group", "test.strata.io"},
        {"scope", "Namespaced"},
        {"names",
         {{"plural", plural},
          {"singular", "p" + hex},
          {"kind", "P" + hex},
          {"listKind", "P" + hex + "List"}}},
        {"versions", Json::array({{{"name", "v1"},
                                   {"served", true},
                                   {"storage", true},
                                   {"schema",
                                    {{"openAPIV3Schema",
                                      {{"type", "object"},
                                       {"x-kubernetes-preserve-unknown-fields", true}}}}}}})}}}};
}

TEST_F(KubeClientTest, WatchFromAnExpiredVersionIsGone) {
  const Resource cm = resources::ConfigMaps();
  auto before = client_->Create(cm, ns_, ConfigMap(ns_, "before-crd"));
  ASSERT_TRUE(before.ok());
  const std::string hex = UniqueName("x").substr(2);
  const std::string lower = "p" + hex + "s";
  const Resource crds{"apiextensions.k8s.io", "v1", "customresourcedefinitions",
                      "CustomResourceDefinition", false};
  auto crd = client_->Create(crds, "", ProbeCrd(hex));
  ASSERT_TRUE(crd.ok()) << crd.status().ToString();
  const Resource probes{"test.strata.io", "v1", lower, "P" + hex, true};
  // Wait until served, then make sure the cache has started after `before`.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!client_->List(probes, ns_, {}).ok() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(client_->Create(cm, ns_, ConfigMap(ns_, "after-crd")).ok());

  WatchOptions wo;
  wo.resource_version = ResourceVersionOf(*before);
  WatchCollector watch(client_.get(), probes, ns_, wo);
  ASSERT_TRUE(watch.WaitDone(20s));
  EXPECT_TRUE(IsGone(watch.result())) << watch.result().ToString();
  EXPECT_EQ(watch.result().code(), StatusCode::kOutOfRange);
  EXPECT_NE(watch.result().message().find("too old resource version"), std::string::npos)
      << watch.result().message();
  (void)client_->Delete(crds, "", lower + ".test.strata.io", {});
}

// Counts handler calls per object name.
struct Recorder {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, int> adds, updates, deletes;
  EventHandlers Handlers() {
    auto name = [](const Json& o) { return o["metadata"]["name"].get<std::string>(); };
    return {[this, name](const Json& o) { Bump(adds, name(o)); },
            [this, name](const Json&, const Json& o) { Bump(updates, name(o)); },
            [this, name](const Json& o) { Bump(deletes, name(o)); }};
  }
  void Bump(std::map<std::string, int>& m, const std::string& n) {
    std::lock_guard g(mu);
    m[n]++;
    cv.notify_all();
  }
  template <typename Pred>
  bool WaitUntil(Pred pred, std::chrono::seconds timeout = 20s) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [&] { return pred(); });
  }
};

TEST_F(KubeClientTest, InformerListsThenFollowsTheWatch) {
  const Resource cm = resources::ConfigMaps();
  ASSERT_TRUE(client_->Create(cm, ns_, ConfigMap(ns_, "before")).ok());
  Informer::Options io;
  io.namespace_ = ns_;
  io.page_size = 2;
  Informer informer(client_.get(), cm, io);
  Recorder rec;
  informer.AddHandlers(rec.Handlers());
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(20s));
  EXPECT_TRUE(informer.store().Get(ns_ + "/before").has_value());

  ASSERT_TRUE(client_->Create(cm, ns_, ConfigMap(ns_, "after")).ok());
  ASSERT_TRUE(
      client_->Patch(cm, ns_, "before", PatchType::kMerge, {{"data", {{"x", "1"}}}}, false).ok());
  ASSERT_TRUE(client_->Delete(cm, ns_, "after", {}).ok());
  ASSERT_TRUE(rec.WaitUntil([&] {
    return rec.adds["after"] == 1 && rec.updates["before"] == 1 && rec.deletes["after"] == 1;
  }));
  EXPECT_EQ(rec.adds["before"], 1);
  EXPECT_EQ((*informer.store().Get(ns_ + "/before"))["data"]["x"], "1");
  EXPECT_FALSE(informer.store().Get(ns_ + "/after").has_value());
  EXPECT_EQ(informer.stats().lists, 1u);
}

TEST_F(KubeClientTest, InformerResumesAfterAPartitionFromItsResourceVersion) {
  const Resource cm = resources::ConfigMaps();
  ASSERT_TRUE(client_->Create(cm, ns_, ConfigMap(ns_, "stays")).ok());
  ASSERT_TRUE(client_->Create(cm, ns_, ConfigMap(ns_, "goes")).ok());
  PartitionableClient net(client_.get());
  Informer::Options io;
  io.namespace_ = ns_;
  io.min_backoff = 50ms;
  io.max_backoff = 200ms;
  Informer informer(&net, cm, io);
  Recorder rec;
  informer.AddHandlers(rec.Handlers());
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(20s));

  // 1. A short partition with a change the watch cache still holds: the watch resumes from the
  //    last resourceVersion, no relist, and nothing is reported twice.
  net.Partition();
  ASSERT_TRUE(
      client_->Patch(cm, ns_, "stays", PatchType::kMerge, {{"data", {{"x", "1"}}}}, false).ok());
  const std::string rv_before = informer.last_resource_version();
  net.Heal();
  ASSERT_TRUE(rec.WaitUntil([&] { return rec.updates["stays"] == 1; }));
  EXPECT_EQ(informer.stats().lists, 1u) << "resumed, not relisted";
  EXPECT_GE(informer.stats().watch_restarts, 1u);
  auto rvs = net.watch_rvs();
  EXPECT_EQ(rvs.back(), rv_before) << "the new watch started where the old one stopped";
  EXPECT_EQ(rec.adds["stays"], 1);

  // 2. And it keeps following the watch afterwards.
  ASSERT_TRUE(client_->Create(cm, ns_, ConfigMap(ns_, "later")).ok());
  ASSERT_TRUE(rec.WaitUntil([&] { return rec.adds["later"] == 1; }));
}

TEST_F(KubeClientTest, EventsAreRecordedAndRepeatsAggregated) {
  const Resource cm = resources::ConfigMaps();
  auto obj = client_->Create(cm, ns_, ConfigMap(ns_, "ev"));
  ASSERT_TRUE(obj.ok());
  ApiEventRecorder recorder(client_.get(), "strata-operator", "test");
  recorder.Record(*obj, EventType::kWarning, "DeviceUnreachable", "connect failed");
  recorder.Record(*obj, EventType::kWarning, "DeviceUnreachable", "connect failed");
  recorder.Record(*obj, EventType::kNormal, "DeviceOnline", "back");
  ListOptions lo;
  lo.field_selector = "involvedObject.name=ev";
  auto events = ListAll(*client_, resources::Events(), ns_, lo, nullptr);
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), 2u);
  std::map<std::string, Json> by_reason;
  for (auto& e : *events) by_reason[e["reason"]] = e;
  EXPECT_EQ(by_reason["DeviceUnreachable"]["count"], 2);
  EXPECT_EQ(by_reason["DeviceUnreachable"]["type"], "Warning");
  EXPECT_EQ(by_reason["DeviceOnline"]["count"], 1);
  EXPECT_EQ(by_reason["DeviceOnline"]["involvedObject"]["uid"], (*obj)["metadata"]["uid"]);
  EXPECT_EQ(by_reason["DeviceOnline"]["source"]["component"], "strata-operator");
}

// The elections run on a fake clock stepped in lockstep with the candidates (after each step
// both are asleep on it again, their calls to the real apiserver done): what the test asserts
// is decided in fake time, however slow the apiserver or the host.
TEST_F(KubeClientTest, LeaderElectionOneLeaderAndHandOverOnRelease) {
  LeaderElectionConfig base;
  base.lease_namespace = ns_;
  base.lease_name = "election";
  base.lease_duration = 6s;
  base.renew_deadline = 4s;
  base.retry_period = 200ms;
  FakeClock clock;

  std::atomic<int> leading{0};
  std::atomic<int> max_leading{0};
  struct Candidate {
    std::unique_ptr<LeaderElector> elector;
    std::atomic<bool> done{false};
    std::jthread thread;
  };
  auto start = [&](Candidate& c, const std::string& id) {
    LeaderElectionConfig config = base;
    config.identity = id;
    LeaderElector::Callbacks cb;
    cb.on_started_leading = [&](std::stop_token stop) {
      int now = ++leading;
      max_leading = std::max(max_leading.load(), now);
      std::mutex mu;
      std::condition_variable_any cv;
      std::unique_lock lock(mu);
      cv.wait(lock, stop, [] { return false; });  // leads until told to stop
      --leading;
    };
    c.elector = std::make_unique<LeaderElector>(client_.get(), config, cb, &clock);
    c.thread = std::jthread([&c](std::stop_token s) {
      c.elector->Run(s);
      c.done = true;
    });
  };
  // Real time only bounds a hang: 30 s for what takes milliseconds.
  auto eventually = [](auto pred) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!pred() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
    return pred();
  };
  Candidate a, b;
  // Fake time forward in retry-period steps, each once both candidates sleep again.
  auto advance = [&](Duration total) {
    ASSERT_TRUE(clock.AdvanceInLockstep(total, base.retry_period, [&] {
      return size_t{!a.done.load()} + size_t{b.elector && !b.done.load()};
    })) << "a candidate did not go back to sleep after a step";
  };

  start(a, "a");
  ASSERT_TRUE(eventually([&] { return a.elector->IsLeader(); }));
  start(b, "b");
  advance(7s);  // longer than the lease: a's renewals keep b out
  EXPECT_TRUE(a.elector->IsLeader());
  EXPECT_FALSE(b.elector->IsLeader());
  EXPECT_EQ(b.elector->observed_leader(), "a");

  a.thread.request_stop();
  a.thread.join();  // releases the lease
  // Taken at b's next try, one retry period (and its jitter) on: well under the lease
  // duration, which a takeover that waited for expiry would need.
  advance(2 * base.retry_period);
  EXPECT_TRUE(b.elector->IsLeader()) << "a released lease is taken at once";
  EXPECT_EQ(max_leading.load(), 1) << "never two leaders at once";
  auto lease = client_->Get(resources::Leases(), ns_, "election");
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ((*lease)["spec"]["holderIdentity"], "b");
  EXPECT_EQ((*lease)["spec"]["leaseTransitions"], 1);
  b.thread.request_stop();
  b.thread.join();
}

}  // namespace
}  // namespace strata::kube
