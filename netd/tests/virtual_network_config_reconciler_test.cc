#include "strata/netd/virtual_network_config_reconciler.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "strata/kube/conditions.h"
#include "strata/kube/testing/fake_api_client.h"
#include "strata/netd/pod_index_reconciler.h"
#include "temp_dir.h"

namespace strata::netd {
namespace {

using kube::Json;

class FakeRecorder : public kube::EventRecorder {
 public:
  void Record(const Json&, kube::EventType, const std::string& reason,
              const std::string& message) override {
    events.push_back({reason, message});
  }
  std::vector<std::pair<std::string, std::string>> events;
};

const kube::Resource kVncs = kube::resources::VirtualNetworkConfigs();

Json Vnc(const std::string& name, const std::string& vm, const std::string& created,
         const std::string& address = "10.120.0.15/24") {
  return {{"apiVersion", "strata.io/v1alpha1"},
          {"kind", "VirtualNetworkConfig"},
          {"metadata", {{"name", name}, {"namespace", "db"}, {"creationTimestamp", created}}},
          {"spec",
           {{"workload", {{"kind", "VirtualMachine"}, {"name", vm}}},
            {"interfaces",
             {{{"name", "net1"},
               {"type", "sriov"},
               {"mac", "02:5e:10:00:00:15"},
               {"mtu", 9000},
               {"vlan", 120},
               {"addresses", {address}}}}},
            {"routes", {{{"destination", "10.0.0.0/8"}, {"gateway", "10.120.0.1"}}}}}}};
}

// One agent: its own store directory and reconciler, sharing the fake apiserver.
struct Agent {
  Agent(kube::ApiClient* client, const kube::Store* cache, std::string node, FakeRecorder* events)
      : store(dir.path()), reconciler(client, cache, &store, std::move(node), events) {
    EXPECT_TRUE(store.Init().ok());
  }
  strata::testing::TempDir dir{"netd-vnc"};
  vnc::NodeStore store;
  VirtualNetworkConfigReconciler reconciler;
};

class VncReconcilerTest : public ::testing::Test {
 protected:
  // Creates (or updates) the object on the fake apiserver and in the cache, as a watch would.
  Json Apply(Json object) {
    auto existing = client_.Get(kVncs, "db", object["metadata"]["name"].get<std::string>());
    if (existing.ok()) {
      object["metadata"]["uid"] = (*existing)["metadata"]["uid"];
      object["metadata"]["resourceVersion"] = (*existing)["metadata"]["resourceVersion"];
      object["metadata"]["generation"] = (*existing)["metadata"].value("generation", 1) + 1;
      auto updated = client_.Update(kVncs, object);
      EXPECT_TRUE(updated.ok());
      cache_.Upsert(*updated);
      return *updated;
    }
    auto created = client_.Create(kVncs, "db", object);
    EXPECT_TRUE(created.ok());
    cache_.Upsert(*created);
    return *created;
  }
  Json Status(const std::string& name) {
    return client_.Get(kVncs, "db", name)->value("status", Json::object());
  }
  void Reconcile(Agent& a, const std::string& key) {
    auto r = a.reconciler.Reconcile(key);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    cache_.Upsert(*client_.Get(kVncs, "db", key.substr(3)));  // status writes reach the cache
  }
  vnc::AppliedRecord Applied(const Json& object, const std::string& cid, const std::string& at) {
    vnc::AppliedRecord r;
    r.container_id = cid;
    r.ifname = "net1";
    r.pod_namespace = "db";
    r.pod_name = "virt-launcher-db-vm-" + cid;
    r.pod_uid = "pod-" + cid;
    r.workload = {"db", "VirtualMachine", "db-vm"};
    r.source = {"db", object["metadata"]["name"], object["metadata"]["uid"],
                object["metadata"]["resourceVersion"], 1};
    r.interface = "net1";
    r.mac = "02:5e:10:00:00:15";
    r.applied_at = at;
    return r;
  }

  kube::testing::FakeApiClient client_;
  kube::Store cache_;
  FakeRecorder events_;
  Agent a_{&client_, &cache_, "node-a", &events_};
  Agent b_{&client_, &cache_, "node-b", &events_};
  const vnc::WorkloadKey vm_{"db", "VirtualMachine", "db-vm"};
};

TEST_F(VncReconcilerTest, ReplicatesToEveryAgentsStore) {
  Json obj = Apply(Vnc("db-vm-net", "db-vm", "2026-12-01T00:00:00Z"));
  Reconcile(a_, "db/db-vm-net");
  Reconcile(b_, "db/db-vm-net");
  for (Agent* agent : {&a_, &b_}) {
    auto record = agent->store.Get(vm_);
    ASSERT_TRUE(record.ok()) << record.status().ToString();
    EXPECT_EQ(record->interfaces[0].mac, "02:5e:10:00:00:15");
    EXPECT_EQ(record->interfaces[0].vlan, 120);
    EXPECT_EQ(record->source.uid, obj["metadata"]["uid"]);
  }
  Json status = Status("db-vm-net");
  EXPECT_EQ(status["phase"], "Pending");
  EXPECT_TRUE(kube::IsConditionTrue(status, "Ready"));
  EXPECT_EQ(status["observedGeneration"], 1);
}

TEST_F(VncReconcilerTest, EachAgentOwnsItsNodesEntry) {
  Json obj = Apply(Vnc("db-vm-net", "db-vm", "2026-12-01T00:00:00Z"));
  Reconcile(a_, "db/db-vm-net");
  Reconcile(b_, "db/db-vm-net");
  ASSERT_TRUE(a_.store.PutApplied(Applied(obj, "aaaa", "2026-12-06T10:00:00Z")).ok());
  std::vector<std::string> requeued;
  a_.reconciler.SyncStore(nullptr, [&](const std::string& k) { requeued.push_back(k); });
  ASSERT_EQ(requeued, std::vector<std::string>{"db/db-vm-net"});
  Reconcile(a_, "db/db-vm-net");
  Json status = Status("db-vm-net");
  EXPECT_EQ(status["phase"], "Applied");
  EXPECT_EQ(status["node"], "node-a");
  ASSERT_EQ(status["nodes"].size(), 1u);
  EXPECT_EQ(status["nodes"][0]["pod"], "virt-launcher-db-vm-aaaa");
  EXPECT_EQ(status["interfaces"][0]["mac"], "02:5e:10:00:00:15");

  // The VM moves: A's pod goes, B's comes. B's write keeps A's entry until A drops it.
  ASSERT_TRUE(b_.store.PutApplied(Applied(obj, "bbbb", "2026-12-06T10:05:00Z")).ok());
  Reconcile(b_, "db/db-vm-net");
  status = Status("db-vm-net");
  ASSERT_EQ(status["nodes"].size(), 2u);
  EXPECT_EQ(status["node"], "node-b");
  ASSERT_TRUE(a_.store.RemoveApplied("aaaa", "net1").ok());
  requeued.clear();
  a_.reconciler.SyncStore(nullptr, [&](const std::string& k) { requeued.push_back(k); });
  EXPECT_EQ(requeued, std::vector<std::string>{"db/db-vm-net"});
  Reconcile(a_, "db/db-vm-net");
  status = Status("db-vm-net");
  ASSERT_EQ(status["nodes"].size(), 1u);
  EXPECT_EQ(status["nodes"][0]["node"], "node-b");
  EXPECT_EQ(status["phase"], "Applied");
  // A resync with nothing new writes nothing.
  int writes = client_.status_writes();
  Reconcile(a_, "db/db-vm-net");
  Reconcile(b_, "db/db-vm-net");
  EXPECT_EQ(client_.status_writes(), writes);
}

TEST_F(VncReconcilerTest, InvalidSpecNamesTheFieldAndKeepsTheLastValidRecord) {
  Apply(Vnc("db-vm-net", "db-vm", "2026-12-01T00:00:00Z"));
  Reconcile(a_, "db/db-vm-net");
  Apply(Vnc("db-vm-net", "db-vm", "2026-12-01T00:00:00Z", "10.120.0.300/24"));
  Reconcile(a_, "db/db-vm-net");
  Json status = Status("db-vm-net");
  auto ready = kube::FindCondition(status, "Ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, "False");
  EXPECT_EQ(ready->reason, "InvalidSpec");
  EXPECT_NE(ready->message.find("spec.interfaces[0].addresses[0]"), std::string::npos)
      << ready->message;
  EXPECT_EQ(status["phase"], "Error");
  EXPECT_EQ(a_.store.Get(vm_)->interfaces[0].addresses[0], "10.120.0.15/24");
  ASSERT_FALSE(events_.events.empty());
  EXPECT_EQ(events_.events.back().first, "InvalidSpec");
}

TEST_F(VncReconcilerTest, TwoObjectsForOneWorkloadTheOlderGoverns) {
  Apply(Vnc("older", "db-vm", "2026-12-01T00:00:00Z", "10.120.0.1/24"));
  Apply(Vnc("younger", "db-vm", "2026-12-02T00:00:00Z", "10.120.0.2/24"));
  Reconcile(a_, "db/younger");
  Reconcile(a_, "db/older");
  EXPECT_EQ(a_.store.Get(vm_)->source.name, "older");
  auto ready = kube::FindCondition(Status("younger"), "Ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->reason, "WorkloadConflict");
  EXPECT_NE(ready->message.find("db/older"), std::string::npos);
  // The older one is deleted: the younger governs.
  cache_.Remove(*client_.Get(kVncs, "db", "older"));
  ASSERT_TRUE(client_.Delete(kVncs, "db", "older", {}).ok());
  Reconcile(a_, "db/younger");
  EXPECT_EQ(a_.store.Get(vm_)->source.name, "younger");
  EXPECT_TRUE(kube::IsConditionTrue(Status("younger"), "Ready"));
}

TEST_F(VncReconcilerTest, DeletedAndRenamedWorkloadsLoseTheirRecords) {
  Json obj = Apply(Vnc("db-vm-net", "db-vm", "2026-12-01T00:00:00Z"));
  Reconcile(a_, "db/db-vm-net");
  // spec.workload edited: the old key's record goes, the new one comes.
  Apply(Vnc("db-vm-net", "db-vm2", "2026-12-01T00:00:00Z"));
  Reconcile(a_, "db/db-vm-net");
  EXPECT_EQ(a_.store.Get(vm_).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(a_.store.Get({"db", "VirtualMachine", "db-vm2"}).ok());
  cache_.Remove(*client_.Get(kVncs, "db", "db-vm-net"));
  ASSERT_TRUE(a_.reconciler.Reconcile("db/db-vm-net").ok());
  EXPECT_TRUE(a_.store.List().empty());
}

TEST_F(VncReconcilerTest, SyncRemovesRecordsOfObjectsDeletedWhileDown) {
  Json obj = Apply(Vnc("db-vm-net", "db-vm", "2026-12-01T00:00:00Z"));
  Reconcile(a_, "db/db-vm-net");
  cache_.Remove(obj);  // the agent restarts and the object is no longer in the list
  a_.reconciler.SyncStore(nullptr, [](const std::string&) {});
  EXPECT_TRUE(a_.store.List().empty());
}

TEST_F(VncReconcilerTest, PodIndex) {
  kube::Store pods;
  pods.Upsert(
      {{"metadata",
        {{"name", "virt-launcher-db-vm-x7k2p"},
         {"namespace", "db"},
         {"uid", "pod-1"},
         {"resourceVersion", "5"},
         {"labels", {{"vm.kubevirt.io/name", "db-vm"}, {"kubevirt.io", "virt-launcher"}}}}}});
  PodIndexReconciler index(&pods, &a_.store);
  ASSERT_TRUE(index.Reconcile("db/virt-launcher-db-vm-x7k2p").ok());
  auto entry = a_.store.GetPod("db", "virt-launcher-db-vm-x7k2p");
  ASSERT_TRUE(entry.ok());
  EXPECT_EQ(entry->workload, vm_);
  EXPECT_EQ(entry->uid, "pod-1");
  // Gone from the cache while the agent was down: the sync removes the entry.
  kube::Store empty;
  a_.reconciler.SyncStore(&empty, [](const std::string&) {});
  EXPECT_TRUE(a_.store.ListPods().empty());
}

}  // namespace
}  // namespace strata::netd
