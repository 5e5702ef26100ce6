#include "strata/netd/bandwidth_agent.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "strata/kube/testing/fake_api_client.h"
#include "strata/net/testing/fake_netlink.h"

namespace strata::netd {
namespace {

using kube::Json;

class NullRecorder : public kube::EventRecorder {
 public:
  void Record(const Json& object, kube::EventType, const std::string& reason,
              const std::string& message) override {
    events.push_back(object["metadata"].value("name", "") + ":" + reason + ":" + message);
  }
  std::vector<std::string> events;
};

class BandwidthAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/strata-netd-agent.XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    kernel_.AddNetns("/netns/p1");
    kernel_.AddVeth("/netns/p1", "eth0", "", "veth-p1");
    AddPod("p1", "u1", {{"app", "web"}});
    net::Attachment a;
    a.container_id = "c1";
    a.ifname = "eth0";
    a.netns = "/netns/p1";
    a.pod_namespace = "ns1";
    a.pod_name = "p1";
    a.pod_uid = "u1";
    a.host_interface = "veth-p1";
    ASSERT_TRUE(net::WriteAttachment(dir_, a).ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void AddPod(const std::string& name, const std::string& uid,
              std::map<std::string, std::string> labels) {
    pods_.Upsert({{"metadata",
                   {{"name", name},
                    {"namespace", "ns1"},
                    {"uid", uid},
                    {"resourceVersion", "1"},
                    {"labels", labels}}}});
  }
  Json AddPolicy(const std::string& name, const std::string& created, Json spec) {
    Json p = {{"apiVersion", "strata.io/v1alpha1"},
              {"kind", "BandwidthPolicy"},
              {"metadata", {{"name", name}, {"namespace", "ns1"}, {"creationTimestamp", created}}},
              {"spec", spec}};
    auto made = api_.Create(kube::resources::BandwidthPolicies(), "ns1", p);
    EXPECT_TRUE(made.ok());
    policies_.Upsert(*made);
    return *made;
  }
  BandwidthAgent& Agent() {
    if (!agent_) {
      BandwidthAgent::Options o;
      o.node_name = "node-a";
      o.attachments_dir = dir_;
      o.status_interval = std::chrono::seconds(0);
      agent_ = std::make_unique<BandwidthAgent>(&api_, &policies_, &pods_, &kernel_, &events_,
                                                &clock_, o);
    }
    return *agent_;
  }
  Json StatusOf(const std::string& name) {
    return api_.Get(kube::resources::BandwidthPolicies(), "ns1", name)->value("status", Json());
  }
  uint64_t EgressRate() {
    auto* l = kernel_.Find("/netns/p1", "eth0");
    return l->root && l->root->tbf ? l->root->tbf->rate_bytes_per_sec * 8 : 0;
  }
  uint64_t IngressRate() {
    auto* l = kernel_.Find("", "veth-p1");
    return l->root && l->root->tbf ? l->root->tbf->rate_bytes_per_sec * 8 : 0;
  }

  std::string dir_;
  net::testing::FakeKernel kernel_;
  kube::testing::FakeApiClient api_;
  kube::Store policies_, pods_;
  NullRecorder events_;
  kube::FakeClock clock_;
  std::unique_ptr<BandwidthAgent> agent_;
};

const Json kWeb = {{"matchLabels", {{"app", "web"}}}};

TEST_F(BandwidthAgentTest, AppliesRatesLiveAndReportsPerPodStatus) {
  AddPolicy("bw", "2026-01-01T00:00:00Z",
            {{"podSelector", kWeb},
             {"ingress", {{"rateBitsPerSecond", 4000000}}},
             {"egress", {{"rateBitsPerSecond", 2000000}}}});
  ASSERT_TRUE(Agent().Reconcile("ns1/bw").ok());
  EXPECT_EQ(EgressRate(), 2000000u);
  EXPECT_EQ(IngressRate(), 4000000u);
  Json st = StatusOf("bw");
  EXPECT_EQ(st["nodes"]["node-a"]["pods"]["p1"]["egressRateBitsPerSecond"], 2000000);
  EXPECT_EQ(st["nodes"]["node-a"]["pods"]["p1"]["reason"], "Policy");
  EXPECT_EQ(st["phase"], "Applied");

  // A change of the policy reaches the qdisc in place.
  Json p = *api_.Get(kube::resources::BandwidthPolicies(), "ns1", "bw");
  p["spec"]["egress"]["rateBitsPerSecond"] = 3000000;
  p["metadata"]["resourceVersion"] = "99";
  policies_.Upsert(p);
  ASSERT_TRUE(Agent().Reconcile("ns1/bw").ok());
  EXPECT_EQ(EgressRate(), 3000000u);

  // The pod's labels stop matching: the agent's qdiscs go.
  AddPod("p1", "u1", {{"app", "other"}});
  pods_.Upsert({{"metadata",
                 {{"name", "p1"},
                  {"namespace", "ns1"},
                  {"uid", "u1"},
                  {"resourceVersion", "2"},
                  {"labels", {{"app", "other"}}}}}});
  ASSERT_TRUE(Agent().Reconcile("ns1/bw").ok());
  EXPECT_EQ(EgressRate(), 0u);
  EXPECT_EQ(IngressRate(), 0u);
}

TEST_F(BandwidthAgentTest, RestartKeepsTheRateInForce) {
  const Json spec = {{"podSelector", kWeb},
                     {"egress", {{"rateBitsPerSecond", 2000000}}},
                     {"elastic",
                      {{"minRateBitsPerSecond", 1000000},
                       {"maxRateBitsPerSecond", 8000000},
                       {"sustainedFor", "1s"},
                       {"cooldown", "1s"}}}};
  AddPolicy("bw", "2026-01-01T00:00:00Z", spec);
  // The previous agent left 5 Mbit/s (an elastic step) on the pod.
  ASSERT_TRUE(kernel_.Open("/netns/p1").ok());
  {
    auto opened = kernel_.Open("/netns/p1");
    auto& pod = *opened;
    auto link = pod->GetLink("eth0");
    ASSERT_TRUE(pod->ReplaceRootTbf(link->index, net::kStrataQdiscMajor,
                                    cni::TbfFor(5000000, DefaultBurstBits(5000000)))
                    .ok());
  }
  ASSERT_TRUE(Agent().Reconcile("ns1/bw").ok());
  EXPECT_EQ(EgressRate(), 5000000u);  // not reset to the spec's 2 Mbit/s
  EXPECT_EQ(StatusOf("bw")["nodes"]["node-a"]["pods"]["p1"]["reason"], "Restored");
}

TEST_F(BandwidthAgentTest, ElasticStepsFollowTheCounters) {
  AddPolicy("bw", "2026-01-01T00:00:00Z",
            {{"podSelector", kWeb},
             {"egress", {{"rateBitsPerSecond", 2000000}}},
             {"elastic",
              {{"minRateBitsPerSecond", 1000000},
               {"maxRateBitsPerSecond", 3000000},
               {"stepPercent", 50},
               {"sustainedFor", "2s"},
               {"cooldown", "1s"}}}});
  std::vector<std::string> requeued;
  Agent().SetRequeue([&](const std::string& k) { requeued.push_back(k); });
  ASSERT_TRUE(Agent().Reconcile("ns1/bw").ok());
  auto* host = kernel_.Find("", "veth-p1");
  auto second = [&](double percent) {
    clock_.Advance(std::chrono::seconds(1));
    host->stats.rx_bytes +=
        static_cast<uint64_t>(static_cast<double>(EgressRate()) / 8 * percent / 100);
    Agent().Sample();
  };
  second(0);  // first sample: the baseline
  for (int i = 0; i < 3; ++i) second(95);
  EXPECT_EQ(EgressRate(), 3000000u);
  ASSERT_FALSE(requeued.empty());
  ASSERT_TRUE(Agent().Reconcile("ns1/bw").ok());
  EXPECT_EQ(StatusOf("bw")["nodes"]["node-a"]["pods"]["p1"]["reason"], "ElasticUp");
  EXPECT_EQ(StatusOf("bw")["nodes"]["node-a"]["pods"]["p1"]["egressRateBitsPerSecond"], 3000000);
  // A reconcile does not undo the elastic rate.
  EXPECT_EQ(EgressRate(), 3000000u);
  for (int i = 0; i < 10; ++i) second(0);
  EXPECT_EQ(EgressRate(), 1000000u);
  // Usage from the host veth.
  auto usage = Agent().Usage();
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].pod_name, "p1");
  EXPECT_EQ(usage[0].tx_bytes, host->stats.rx_bytes);
}

TEST_F(BandwidthAgentTest, OlderPolicyWinsAndTheLoserIsTold) {
  const Json spec2 = {{"podSelector", kWeb}, {"egress", {{"rateBitsPerSecond", 2000000}}}};
  const Json spec9 = {{"podSelector", kWeb}, {"egress", {{"rateBitsPerSecond", 9000000}}}};
  AddPolicy("newer", "2026-02-01T00:00:00Z", spec9);
  AddPolicy("older", "2026-01-01T00:00:00Z", spec2);
  ASSERT_TRUE(Agent().Reconcile("ns1/newer").ok());
  ASSERT_TRUE(Agent().Reconcile("ns1/older").ok());
  EXPECT_EQ(EgressRate(), 2000000u);
  Json loser = StatusOf("newer");
  EXPECT_EQ(loser["nodes"]["node-a"]["overridden"]["p1"], "older");
  bool conflicting = false;
  for (const auto& c : loser["conditions"]) {
    if (c["type"] == "Conflicting") conflicting = c["status"] == "True";
  }
  EXPECT_TRUE(conflicting);
  ASSERT_EQ(events_.events.size(), 1u);
  EXPECT_NE(events_.events[0].find("newer:Overridden"), std::string::npos);
  EXPECT_EQ(StatusOf("older")["nodes"]["node-a"]["pods"]["p1"]["egressRateBitsPerSecond"], 2000000);
}

TEST_F(BandwidthAgentTest, InvalidPolicyGetsAConditionNamingTheField) {
  AddPolicy("bad", "2026-01-01T00:00:00Z",
            {{"podSelector", kWeb},
             {"elastic", {{"minRateBitsPerSecond", 9000000}, {"maxRateBitsPerSecond", 1000000}}}});
  ASSERT_TRUE(Agent().Reconcile("ns1/bad").ok());
  Json st = StatusOf("bad");
  ASSERT_TRUE(st["conditions"].is_array());
  EXPECT_EQ(st["conditions"][0]["reason"], "InvalidSpec");
  EXPECT_NE(
      st["conditions"][0]["message"].get<std::string>().find("spec.elastic.minRateBitsPerSecond"),
      std::string::npos);
  EXPECT_EQ(EgressRate(), 0u);
}

TEST_F(BandwidthAgentTest, PodsOfOtherNodesAreNotTouched) {
  // A record whose pod is not in this node's cache (another node's, or gone) is left alone.
  kernel_.AddNetns("/netns/p2");
  kernel_.AddVeth("/netns/p2", "eth0", "", "veth-p2");
  net::Attachment a;
  a.container_id = "c2";
  a.ifname = "eth0";
  a.netns = "/netns/p2";
  a.pod_namespace = "ns1";
  a.pod_name = "elsewhere";
  a.host_interface = "veth-p2";
  ASSERT_TRUE(net::WriteAttachment(dir_, a).ok());
  AddPolicy("bw", "2026-01-01T00:00:00Z",
            {{"podSelector", Json::object()}, {"egress", {{"rateBitsPerSecond", 2000000}}}});
  ASSERT_TRUE(Agent().Reconcile("ns1/bw").ok());
  EXPECT_EQ(EgressRate(), 2000000u);
  EXPECT_FALSE(kernel_.Find("/netns/p2", "eth0")->root);
}

}  // namespace
}  // namespace strata::netd
