#include <gtest/gtest.h>

#include "strata/cni/vnc_plugin.h"
#include "strata/net/testing/fake_netlink.h"
#include "test_util.h"

namespace strata::cni {
namespace {

using net::testing::FakeKernel;
using nlohmann::json;
using testing::Invoke;
using testing::TempDir;

class VncPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(store_.Init().ok());
    kernel_.AddNetns(netns_.path());
    kernel_.AddVeth("", "veth-host", netns_.path(), "net1");
  }

  vnc::WorkloadConfig Config(std::optional<int> vlan = std::nullopt) {
    vnc::WorkloadConfig c;
    c.workload = {"db", "VirtualMachine", "db-vm"};
    c.source = {"db", "db-vm-net", "uid-1", "42", 2};
    vnc::InterfaceConfig i;
    i.name = "sriov";
    i.type = "sriov";
    i.mac = "02:5e:10:00:00:15";
    i.mtu = 9000;
    i.vlan = vlan;
    i.addresses = {"10.120.0.15/24"};
    c.interfaces.push_back(i);
    c.routes.push_back({"10.0.0.0/8", "10.120.0.1"});
    c.dns = vnc::DnsConfig{{"10.120.0.53"}, {"db.svc"}};
    return c;
  }

  json Conf(json extra = json::object()) {
    json c = {{"cniVersion", "1.1.0"},
              {"name", "vnc-net"},
              {"type", "strata-vnc"},
              {"storeDir", store_dir_.path()},
              {"podIndexWaitMilliseconds", 0},
              {"prevResult",
               {{"cniVersion", "1.1.0"},
                {"interfaces", {{{"name", "net1"}, {"sandbox", netns_.path()}}}}}}};
    c.update(extra);
    return c;
  }

  testing::Invocation Run(const std::string& cmd, const json& conf,
                          const std::string& pod = "virt-launcher-db-vm-x7k2p") {
    std::map<std::string, std::string> env = {
        {"CNI_COMMAND", cmd},
        {"CNI_CONTAINERID", "c1"},
        {"CNI_NETNS", netns_.path()},
        {"CNI_IFNAME", "net1"},
        {"CNI_PATH", "/usr/lib/cni"},
        {"CNI_ARGS",
         "IgnoreUnknown=1;K8S_POD_NAMESPACE=db;K8S_POD_NAME=" + pod + ";K8S_POD_UID=pod-uid"}};
    std::string out;
    testing::Invocation inv;
    inv.rc = RunPlugin(plugin_, env, conf.dump(), &out);
    inv.out = out.empty() ? json() : json::parse(out);
    return inv;
  }

  TempDir netns_;
  TempDir store_dir_;
  vnc::NodeStore store_{store_dir_.path()};
  FakeKernel kernel_;
  VncPlugin plugin_{&kernel_, VncPlugin::Options{}};
};

TEST_F(VncPluginTest, AddAppliesTheStoredConfigAndReportsIt) {
  ASSERT_TRUE(store_.Put(Config(120)).ok());
  auto inv = Run("ADD", Conf({{"vlanMode", "external"}}));
  ASSERT_EQ(inv.rc, 0) << inv.out.dump();
  auto* link = kernel_.Find(netns_.path(), "net1");
  ASSERT_NE(link, nullptr);
  EXPECT_EQ(link->info.mac, "02:5e:10:00:00:15");
  EXPECT_EQ(link->info.mtu, 9000);
  EXPECT_TRUE(link->info.admin_up);
  EXPECT_EQ(link->addresses, (std::set<std::string>{"10.120.0.15/24"}));
  EXPECT_EQ(link->routes, (std::vector<std::string>{"10.0.0.0/8 via 10.120.0.1"}));
  const json& r = inv.out;
  EXPECT_EQ(r["interfaces"][0]["mac"], "02:5e:10:00:00:15");
  EXPECT_EQ(r["interfaces"][0]["mtu"], 9000);
  EXPECT_EQ(r["ips"][0], (json{{"address", "10.120.0.15/24"}, {"interface", 0}}));
  EXPECT_EQ(r["routes"][0], (json{{"dst", "10.0.0.0/8"}, {"gw", "10.120.0.1"}}));
  EXPECT_EQ(r["dns"]["nameservers"][0], "10.120.0.53");
  EXPECT_EQ(r["dns"]["search"][0], "db.svc");
  EXPECT_EQ(r["strata.io/vnc"]["vlan"], 120);
  EXPECT_EQ(r["strata.io/vnc"]["vlanMode"], "external");
  EXPECT_EQ(r["strata.io/vnc"]["resolvedBy"], "launcherPodName");
  EXPECT_EQ(r["strata.io/vnc"]["resourceVersion"], "42");
  auto applied = store_.GetApplied("c1", "net1");
  ASSERT_TRUE(applied.ok());
  EXPECT_EQ(applied->source.name, "db-vm-net");
  EXPECT_EQ(applied->mac, "02:5e:10:00:00:15");
  EXPECT_EQ(applied->pod_name, "virt-launcher-db-vm-x7k2p");

  EXPECT_EQ(Run("CHECK", Conf({{"vlanMode", "external"}, {"prevResult", r}})).rc, 0);
  EXPECT_EQ(Run("DEL", Conf()).rc, 0);
  EXPECT_FALSE(store_.GetApplied("c1", "net1").ok());
  EXPECT_EQ(Run("DEL", Conf()).rc, 0);  // idempotent
}

TEST_F(VncPluginTest, VlanDeviceMode) {
  ASSERT_TRUE(store_.Put(Config(120)).ok());
  auto inv = Run("ADD", Conf());
  ASSERT_EQ(inv.rc, 0) << inv.out.dump();
  auto* vlan = kernel_.Find(netns_.path(), "net1");
  auto* parent = kernel_.Find(netns_.path(), "net1-raw");
  ASSERT_NE(vlan, nullptr);
  ASSERT_NE(parent, nullptr);
  EXPECT_EQ(vlan->info.kind, "vlan");
  EXPECT_EQ(vlan->info.vlan_id, 120);
  EXPECT_EQ(vlan->info.mac, "02:5e:10:00:00:15");
  EXPECT_EQ(vlan->addresses, (std::set<std::string>{"10.120.0.15/24"}));
  EXPECT_EQ(inv.out["interfaces"][0]["name"], "net1-raw");
  EXPECT_EQ(inv.out["interfaces"][1]["name"], "net1");
  EXPECT_EQ(inv.out["ips"][0]["interface"], 1);
  EXPECT_EQ(inv.out["strata.io/vnc"]["vlanMode"], "device");
  // DEL gives the lower device its name back for the plugin before us.
  EXPECT_EQ(Run("DEL", Conf()).rc, 0);
  EXPECT_EQ(kernel_.Find(netns_.path(), "net1-raw"), nullptr);
  ASSERT_NE(kernel_.Find(netns_.path(), "net1"), nullptr);
  EXPECT_EQ(kernel_.Find(netns_.path(), "net1")->info.kind, "veth");
}

TEST_F(VncPluginTest, NoConfigurationPassesPrevResultThrough) {
  json conf = Conf();
  auto inv = Run("ADD", conf, "web-0");
  ASSERT_EQ(inv.rc, 0);
  EXPECT_EQ(inv.out["interfaces"], conf["prevResult"]["interfaces"]);
  EXPECT_FALSE(inv.out.contains("strata.io/vnc"));
  EXPECT_FALSE(store_.GetApplied("c1", "net1").ok());
  // required: code 11, try again later (the agent may not have replicated it yet).
  inv = Run("ADD", Conf({{"required", true}}), "web-0");
  EXPECT_EQ(inv.rc, 1);
  EXPECT_EQ(inv.out["code"], 11);
}

TEST_F(VncPluginTest, BadConfigNamesTheField) {
  ASSERT_TRUE(store_.Put(Config()).ok());
  auto inv = Run("ADD", Conf({{"vlanMode", "tagged"}}));
  EXPECT_EQ(inv.out["code"], 7);
  EXPECT_NE(inv.out["msg"].get<std::string>().find("vlanMode"), std::string::npos);
  inv = Run("ADD", Conf({{"interface", "eth9"}}));
  EXPECT_EQ(inv.out["code"], 7);
  EXPECT_NE(inv.out["msg"].get<std::string>().find("interface"), std::string::npos);
  inv = Run("ADD", Conf({{"workload", "VirtualMachine/missing"}}));
  EXPECT_EQ(inv.rc, 1);
  EXPECT_NE(inv.out["msg"].get<std::string>().find("missing"), std::string::npos);
}

TEST_F(VncPluginTest, FailedAddRestoresTheLink) {
  ASSERT_TRUE(store_.Put(Config(120)).ok());
  kernel_.FailNext("AddAddress");
  auto inv = Run("ADD", Conf());
  EXPECT_EQ(inv.rc, 1);
  EXPECT_EQ(kernel_.Find(netns_.path(), "net1-raw"), nullptr);
  auto* link = kernel_.Find(netns_.path(), "net1");
  ASSERT_NE(link, nullptr);
  EXPECT_EQ(link->info.kind, "veth");
  EXPECT_EQ(link->info.mtu, 1500);
  EXPECT_NE(link->info.mac, "02:5e:10:00:00:15");
  EXPECT_FALSE(store_.GetApplied("c1", "net1").ok());
}

TEST_F(VncPluginTest, GcRemovesRecordsOfGoneAttachments) {
  ASSERT_TRUE(store_.Put(Config()).ok());
  ASSERT_EQ(Run("ADD", Conf()).rc, 0);
  json gc = Conf();
  gc.erase("prevResult");
  gc["cni.dev/valid-attachments"] = json::array();
  EXPECT_EQ(Run("GC", gc).rc, 0);
  EXPECT_FALSE(store_.GetApplied("c1", "net1").ok());
}

}  // namespace
}  // namespace strata::cni
