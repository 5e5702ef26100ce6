// NodeNetworkPolicy reconciler on fakes (FakeApiClient, FakeKernel): a policy selecting this node
// is applied and reported in its own status.nodes entry; a bad policy gets Ready=False naming the
// field; two policies selecting the node conflict (neither changes the node); a policy that stops
// selecting the node, or is deleted, is torn down.

#include "strata/netd/node_network_policy_reconciler.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include "strata/common/mem_env.h"
#include "strata/kube/testing/fake_api_client.h"
#include "strata/net/testing/fake_netlink.h"

namespace strata::netd {
namespace {

using kube::Json;

Json Policy(const std::string& name, Json selector) {
  return {{"apiVersion", "strata.io/v1alpha1"},
          {"kind", "NodeNetworkPolicy"},
          {"metadata", {{"name", name}, {"generation", 1}, {"uid", "uid-" + name}}},
          {"spec",
           {{"nodeSelector", std::move(selector)},
            {"bond",
             {{"name", "bond0"},
              {"mode", "active-backup"},
              {"primary", "eth1"},
              {"uplinks", {{{"name", "eth1"}}, {{"name", "eth2"}}}}}},
            {"bridge", {{"name", "br-strata"}}}}}};
}

class ReconcilerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kernel_.AddLink("", "eth1", "", 1500);
    kernel_.AddLink("", "eth2", "", 1500);
    ASSERT_TRUE(env_.CreateDirectories("/state").ok());
    ASSERT_TRUE(agent_.Start().ok());
    SetNodeLabels({{"strata.io/uplinks", "bonded"}});
  }
  void SetNodeLabels(const std::map<std::string, std::string>& labels) {
    nodes_.Upsert(
        {{"apiVersion", "v1"},
         {"kind", "Node"},
         {"metadata",
          {{"name", "node-a"}, {"labels", labels}, {"resourceVersion", std::to_string(++rv_)}}}});
  }
  // Stores `policy` on the fake apiserver and in the informer's store (as a watch would).
  void Put(Json policy) {
    api_.Put(kube::resources::NodeNetworkPolicies(), policy);
    Sync(policy["metadata"]["name"]);
  }
  void Sync(const std::string& name) {
    auto o = api_.Get(kube::resources::NodeNetworkPolicies(), "", name);
    if (o.ok()) {
      policies_.Upsert(*o);
    } else if (auto old = policies_.Get(name)) {
      policies_.Remove(*old);
    }
  }
  Json NodeEntry(const std::string& name) {
    Sync(name);
    auto o = policies_.Get(name);
    if (!o || !o->contains("status")) return nullptr;
    for (const Json& n : (*o)["status"].value("nodes", Json::array())) {
      if (n.value("nodeName", "") == "node-a") return n;
    }
    return nullptr;
  }
  static Json Condition(const Json& entry, const std::string& type) {
    for (const Json& c : entry.value("conditions", Json::array())) {
      if (c.value("type", "") == type) return c;
    }
    return nullptr;
  }

  int64_t rv_ = 1;
  net::testing::FakeKernel kernel_;
  MemEnv env_;
  kube::FakeClock clock_;
  kube::testing::FakeApiClient api_;
  kube::Store policies_, nodes_;
  UplinkAgent agent_{&kernel_, &env_, "/state/uplinks.json",
                     std::make_shared<prometheus::Registry>(), &clock_};
  NodeNetworkPolicyReconciler reconciler_{&api_, &policies_, &nodes_, &agent_, "node-a", &clock_};
};

TEST_F(ReconcilerTest, AppliesASelectingPolicyAndReportsItsNode) {
  Put(Policy("uplinks", {{"matchLabels", {{"strata.io/uplinks", "bonded"}}}}));
  ASSERT_TRUE(reconciler_.Reconcile("uplinks").ok());
  ASSERT_NE(kernel_.Find("", "bond0"), nullptr);
  ASSERT_NE(kernel_.Find("", "br-strata"), nullptr);
  Json entry = NodeEntry("uplinks");
  ASSERT_FALSE(entry.is_null());
  EXPECT_EQ(Condition(entry, "Ready")["status"], "True") << entry.dump();
  EXPECT_EQ(entry["observedGeneration"], 1);
  EXPECT_EQ(entry["bondPresent"], true);
  EXPECT_EQ(entry["bridgePresent"], true);
  EXPECT_EQ(entry["activeSlave"], "eth1");
  EXPECT_EQ(entry["uplinks"].size(), 2u);
  EXPECT_EQ(Condition(entry, "Degraded")["status"], "True") << "no carrier in the fake yet";

  // Carrier on both: the next sample writes Degraded=False; an unchanged sample writes nothing.
  kernel_.Find("", "eth1")->info.carrier = kernel_.Find("", "eth2")->info.carrier = true;
  reconciler_.SampleAndReport();
  EXPECT_EQ(Condition(NodeEntry("uplinks"), "Degraded")["status"], "False");
  const int writes = api_.status_writes();
  reconciler_.SampleAndReport();
  EXPECT_EQ(api_.status_writes(), writes);
  // A resync of the converged state writes nothing either and changes no link.
  const int calls = kernel_.TotalCalls();
  ASSERT_TRUE(reconciler_.Reconcile("uplinks").ok());
  EXPECT_EQ(api_.status_writes(), writes);
  EXPECT_EQ(kernel_.TotalCalls(), calls);

  // The node loses the label: torn down, the node's entry removed.
  SetNodeLabels({});
  ASSERT_TRUE(reconciler_.Reconcile("uplinks").ok());
  EXPECT_EQ(kernel_.Find("", "bond0"), nullptr);
  EXPECT_EQ(kernel_.Find("", "br-strata"), nullptr);
  EXPECT_TRUE(NodeEntry("uplinks").is_null());
}

TEST_F(ReconcilerTest, AnInvalidPolicyIsReportedNamingTheField) {
  Json p = Policy("bad", Json::object());
  p["spec"]["bond"]["xmitHashPolicy"] = "layer3+4";
  Put(p);
  ASSERT_TRUE(reconciler_.Reconcile("bad").ok());
  Json ready = Condition(NodeEntry("bad"), "Ready");
  EXPECT_EQ(ready["status"], "False");
  EXPECT_EQ(ready["reason"], "InvalidSpec");
  EXPECT_EQ(ready["message"],
            "spec.bond.xmitHashPolicy: applies to balance-xor, 802.3ad and balance-tlb, not "
            "active-backup");
  EXPECT_EQ(kernel_.TotalCalls(), 0);
}

TEST_F(ReconcilerTest, TwoPoliciesSelectingTheNodeConflictAndNeitherChangesIt) {
  Put(Policy("first", {{"matchLabels", {{"strata.io/uplinks", "bonded"}}}}));
  ASSERT_TRUE(reconciler_.Reconcile("first").ok());
  const int calls = kernel_.TotalCalls();
  Json second = Policy("second", Json::object());
  second["spec"]["bond"]["mode"] = "balance-xor";
  second["spec"]["bond"].erase("primary");
  Put(second);
  ASSERT_TRUE(reconciler_.Reconcile("second").ok());
  ASSERT_TRUE(reconciler_.Reconcile("first").ok());
  EXPECT_EQ(kernel_.TotalCalls(), calls) << "the working bond stays as it is";
  EXPECT_EQ(kernel_.Find("", "bond0")->bond.mode, net::BondMode::kActiveBackup);
  for (const auto& [name, other] : {std::pair{"first", "second"}, std::pair{"second", "first"}}) {
    Json ready = Condition(NodeEntry(name), "Ready");
    EXPECT_EQ(ready["reason"], "Conflict") << name;
    EXPECT_NE(ready["message"].get<std::string>().find(other), std::string::npos) << ready.dump();
  }
  // The second goes away: the first is Ready again, its bond untouched.
  ASSERT_TRUE(api_.Delete(kube::resources::NodeNetworkPolicies(), "", "second", {}).ok());
  Sync("second");
  ASSERT_TRUE(reconciler_.Reconcile("second").ok());
  ASSERT_TRUE(reconciler_.Reconcile("first").ok());
  EXPECT_EQ(Condition(NodeEntry("first"), "Ready")["status"], "True");
  EXPECT_EQ(kernel_.TotalCalls(), calls);
}

TEST_F(ReconcilerTest, ADeletedPolicyIsTornDownAlsoAfterARestart) {
  Put(Policy("uplinks", Json::object()));
  ASSERT_TRUE(reconciler_.Reconcile("uplinks").ok());
  ASSERT_NE(kernel_.Find("", "bond0"), nullptr);
  // Deleted while the agent was down: the new agent finds it in its record only.
  ASSERT_TRUE(api_.Delete(kube::resources::NodeNetworkPolicies(), "", "uplinks", {}).ok());
  Sync("uplinks");
  UplinkAgent restarted(&kernel_, &env_, "/state/uplinks.json",
                        std::make_shared<prometheus::Registry>(), &clock_);
  ASSERT_TRUE(restarted.Start().ok());
  NodeNetworkPolicyReconciler r(&api_, &policies_, &nodes_, &restarted, "node-a", &clock_);
  ASSERT_TRUE(r.CollectOrphans().ok());
  EXPECT_EQ(kernel_.Find("", "bond0"), nullptr);
  EXPECT_EQ(kernel_.Find("", "br-strata"), nullptr);
  EXPECT_EQ(kernel_.Find("", "eth1")->info.master_index, 0);
}

}  // namespace
}  // namespace strata::netd
