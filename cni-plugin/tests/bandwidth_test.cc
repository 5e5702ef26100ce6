#include <gtest/gtest.h>

#include "strata/cni/bandwidth_plugin.h"
#include "strata/net/attachment.h"
#include "strata/net/testing/fake_netlink.h"
#include "test_util.h"

namespace strata::cni {
namespace {

using net::testing::FakeKernel;
using nlohmann::json;
using testing::Invoke;
using testing::TempDir;

class BandwidthPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kernel_.AddNetns(ns_.path());
    kernel_.AddVeth(ns_.path(), "eth0", "", "veth1234");
  }
  json Conf(const std::string& version = "1.0.0") {
    return {
        {"cniVersion", version},
        {"name", "net"},
        {"type", "strata-bandwidth"},
        {"ingressRate", 8000000},
        {"ingressBurst", 800000},
        {"egressRate", 16000000},
        {"egressBurst", 1600000},
        {"prevResult",
         {{"cniVersion", version},
          {"interfaces", {{{"name", "veth1234"}}, {{"name", "eth0"}, {"sandbox", ns_.path()}}}}}}};
  }
  TempDir ns_;
  FakeKernel kernel_;
  BandwidthPlugin plugin_{&kernel_};
};

TEST_F(BandwidthPluginTest, AddRecordsTheAttachmentAndDelRemovesIt) {
  TempDir dir;
  json conf = Conf();
  conf["attachmentsDir"] = dir.path() + "/att";
  std::map<std::string, std::string> env = {
      {"CNI_COMMAND", "ADD"},
      {"CNI_CONTAINERID", "c1"},
      {"CNI_NETNS", ns_.path()},
      {"CNI_IFNAME", "eth0"},
      {"CNI_PATH", "/usr/lib/cni"},
      {"CNI_ARGS", "K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=p1;K8S_POD_UID=u1"}};
  std::string out;
  ASSERT_EQ(RunPlugin(plugin_, env, conf.dump(), &out), 0) << out;
  auto records = net::ListAttachments(dir.path() + "/att");
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 1u);
  const net::Attachment& a = (*records)[0];
  EXPECT_EQ(a.container_id, "c1");
  EXPECT_EQ(a.ifname, "eth0");
  EXPECT_EQ(a.netns, ns_.path());
  EXPECT_EQ(a.pod_namespace, "ns1");
  EXPECT_EQ(a.pod_name, "p1");
  EXPECT_EQ(a.pod_uid, "u1");
  EXPECT_EQ(a.host_interface, "veth1234");
  env["CNI_COMMAND"] = "DEL";
  ASSERT_EQ(RunPlugin(plugin_, env, conf.dump(), &out), 0) << out;
  EXPECT_TRUE(net::ListAttachments(dir.path() + "/att")->empty());
  ASSERT_EQ(RunPlugin(plugin_, env, conf.dump(), &out), 0) << out;  // idempotent
}

TEST_F(BandwidthPluginTest, AddShapesBothSidesAndDelRemovesOnlyQdiscs) {
  auto add = Invoke(plugin_, "ADD", Conf(), ns_.path());
  ASSERT_EQ(add.rc, 0) << add.out.dump();
  EXPECT_EQ(add.out["interfaces"].size(), 2u);
  auto* host = kernel_.Find("", "veth1234");
  auto* pod = kernel_.Find(ns_.path(), "eth0");
  ASSERT_TRUE(host->root && pod->root);
  EXPECT_EQ(host->root->tbf->rate_bytes_per_sec, 1000000u);  // ingress: host side
  EXPECT_EQ(pod->root->tbf->rate_bytes_per_sec, 2000000u);   // egress: pod side
  EXPECT_EQ(pod->root->tbf->burst_bytes, 200000u);
  EXPECT_EQ(pod->root->tbf->limit_bytes, 200000u + 2000000u * 25 / 1000);
  EXPECT_EQ(Invoke(plugin_, "CHECK", Conf(), ns_.path()).rc, 0);

  EXPECT_EQ(Invoke(plugin_, "DEL", Conf(), ns_.path()).rc, 0);
  EXPECT_FALSE(host->root);
  EXPECT_FALSE(pod->root);
  EXPECT_NE(kernel_.Find("", "veth1234"), nullptr);  // links are the main plugin's
  // Idempotent: again, and with the namespace gone.
  EXPECT_EQ(Invoke(plugin_, "DEL", Conf(), ns_.path()).rc, 0);
  kernel_.RemoveNetns(ns_.path());
  EXPECT_EQ(Invoke(plugin_, "DEL", Conf(), ns_.path()).rc, 0);
}

TEST_F(BandwidthPluginTest, RuntimeConfigWinsAndCheckSeesDrift) {
  json conf = Conf();
  conf["runtimeConfig"] = {{"bandwidth", {{"egressRate", 80000000}, {"egressBurst", 8000000}}}};
  ASSERT_EQ(Invoke(plugin_, "ADD", conf, ns_.path()).rc, 0);
  EXPECT_FALSE(kernel_.Find("", "veth1234")->root);  // ingress not asked for at runtime
  EXPECT_EQ(kernel_.Find(ns_.path(), "eth0")->root->tbf->rate_bytes_per_sec, 10000000u);
  kernel_.Find(ns_.path(), "eth0")->root.reset();  // a pod with NET_ADMIN removed it
  auto check = Invoke(plugin_, "CHECK", conf, ns_.path());
  EXPECT_EQ(check.rc, 1);
  EXPECT_NE(check.out["msg"].get<std::string>().find("configured"), std::string::npos);
}

TEST_F(BandwidthPluginTest, FailedAddLeavesNothing) {
  kernel_.FailNext("ReplaceRootTbf", /*skip=*/1);  // ingress is made, egress fails
  auto add = Invoke(plugin_, "ADD", Conf(), ns_.path());
  EXPECT_EQ(add.rc, 1);
  EXPECT_EQ(add.out["code"], 999);
  EXPECT_FALSE(kernel_.Find("", "veth1234")->root);
  EXPECT_FALSE(kernel_.Find(ns_.path(), "eth0")->root);
}

TEST_F(BandwidthPluginTest, ForeignQdiscIsNotReplaced) {
  net::RootQdisc foreign;
  foreign.kind = "htb";
  foreign.handle_major = 1;
  kernel_.Find(ns_.path(), "eth0")->root = foreign;
  auto add = Invoke(plugin_, "ADD", Conf(), ns_.path());
  EXPECT_EQ(add.rc, 1);
  EXPECT_NE(add.out["msg"].get<std::string>().find("did not create"), std::string::npos);
  EXPECT_FALSE(kernel_.Find("", "veth1234")->root);  // checked before anything was made
  EXPECT_EQ(kernel_.Find(ns_.path(), "eth0")->root->kind, "htb");
}

TEST_F(BandwidthPluginTest, MalformedConfigsGetCode7AndNameTheField) {
  struct Case {
    std::function<void(json&)> edit;
    std::string msg;
  };
  std::vector<Case> cases = {
      {[](json& c) { c.erase("egressBurst"); }, "egressRate: set without egressBurst"},
      {[](json& c) { c.erase("ingressRate"); }, "ingressBurst: set without ingressRate"},
      {[](json& c) { c["egressRate"] = -5; }, "egressRate: must not be negative"},
      {[](json& c) { c["egressRate"] = "fast"; }, "egressRate: must be a non-negative integer"},
      {[](json& c) { c["egressBurst"] = 8000; }, "egressBurst: 8000 bits (1000 bytes) is smaller"},
      {[](json& c) { c["ingressRate"] = uint64_t{1} << 40; }, "ingressRate: 1099511627776 bit/s"},
      {[](json& c) {
         c["runtimeConfig"] = {{"bandwidth", 5}};
       },
       "runtimeConfig.bandwidth: must be an object"},
      {[](json& c) {
         c["runtimeConfig"] = {{"bandwidth", {{"egressRate", 1000}}}};
       },
       "runtimeConfig.bandwidth.egressRate: set without"},
      {[](json& c) { c.erase("prevResult"); }, "prevResult: required"},
  };
  for (const auto& c : cases) {
    json conf = Conf();
    c.edit(conf);
    auto add = Invoke(plugin_, "ADD", conf, ns_.path());
    EXPECT_EQ(add.rc, 1) << conf.dump();
    EXPECT_EQ(add.out["code"], 7) << add.out.dump();
    EXPECT_EQ(add.out["msg"].get<std::string>().rfind(c.msg, 0), 0u) << add.out.dump();
    EXPECT_FALSE(kernel_.Find("", "veth1234")->root) << conf.dump();
    EXPECT_FALSE(kernel_.Find(ns_.path(), "eth0")->root) << conf.dump();
  }
}

TEST_F(BandwidthPluginTest, IngressNeedsAHostPeer) {
  kernel_.AddLink(ns_.path(), "net1", "");  // e.g. a VF: no host-side peer
  auto add = Invoke(plugin_, "ADD", Conf(), ns_.path(), "net1");
  EXPECT_EQ(add.out["code"], 7);
  EXPECT_NE(add.out["msg"].get<std::string>().find("host-side veth peer"), std::string::npos);
  EXPECT_FALSE(kernel_.Find(ns_.path(), "net1")->root);
}

TEST(BandwidthLib, LiveChangeIsInPlaceAndRateZeroRemoves) {
  TempDir ns;
  FakeKernel k;
  k.AddNetns(ns.path());
  k.AddVeth(ns.path(), "eth0", "", "vethx");
  auto host = k.Open("");
  auto pod = k.Open(ns.path());
  auto t = ResolveShapingTarget(**host, **pod, "eth0");
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(t->host_link);
  BandwidthLimits l{8000000, 800000, 8000000, 800000};
  ASSERT_TRUE(ApplyLimits(*t, l).ok());
  l.egress_rate = 80000000;
  ASSERT_TRUE(ApplyLimits(*t, l).ok());
  auto read = ReadLimits(*t);
  ASSERT_TRUE(read.ok());
  EXPECT_TRUE(LimitsMatch(l, *read));
  l.ingress_rate = l.ingress_burst = 0;
  ASSERT_TRUE(ApplyLimits(*t, l).ok());
  EXPECT_FALSE(k.Find("", "vethx")->root);
  EXPECT_TRUE(k.Find(ns.path(), "eth0")->root);
}

}  // namespace
}  // namespace strata::cni
