#include <gtest/gtest.h>

#include "strata/cni/bond_plugin.h"
#include "strata/net/testing/fake_netlink.h"
#include "test_util.h"

namespace strata::cni {
namespace {

using net::testing::FakeKernel;
using nlohmann::json;
using testing::Invoke;
using testing::TempDir;

class BondPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kernel_.AddNetns(ns_.path());
    kernel_.AddLink(ns_.path(), "net1", "");
    kernel_.AddLink(ns_.path(), "net2", "");
  }
  json Conf() {
    return {{"cniVersion", "1.0.0"},
            {"name", "bonded"},
            {"type", "strata-bond"},
            {"mode", "active-backup"},
            {"miimon", 100},
            {"failOverMac", "active"},
            {"primary", "net1"},
            {"mtu", 9000},
            {"links", {{{"name", "net1"}}, {{"name", "net2"}}}}};
  }
  TempDir ns_;
  FakeKernel kernel_;
  BondPlugin plugin_{&kernel_};
};

TEST_F(BondPluginTest, AddCheckDel) {
  auto add = Invoke(plugin_, "ADD", Conf(), ns_.path(), "bond0");
  ASSERT_EQ(add.rc, 0) << add.out.dump();
  EXPECT_EQ(add.out["interfaces"][0]["name"], "bond0");
  auto* bond = kernel_.Find(ns_.path(), "bond0");
  ASSERT_NE(bond, nullptr);
  EXPECT_EQ(bond->bond.mode, net::BondMode::kActiveBackup);
  EXPECT_EQ(bond->info.mtu, 9000);
  EXPECT_EQ(kernel_.Find(ns_.path(), "net1")->info.master_index, bond->info.index);
  EXPECT_EQ(bond->bond.primary_index, kernel_.Find(ns_.path(), "net1")->info.index);
  EXPECT_EQ(Invoke(plugin_, "CHECK", Conf(), ns_.path(), "bond0").rc, 0);
  json other = Conf();
  other["mode"] = "balance-xor";
  other.erase("primary");
  other.erase("failOverMac");
  auto check = Invoke(plugin_, "CHECK", other, ns_.path(), "bond0");
  EXPECT_EQ(check.rc, 1);
  EXPECT_NE(check.out["msg"].get<std::string>().find("mode active-backup"), std::string::npos);

  ASSERT_EQ(Invoke(plugin_, "DEL", Conf(), ns_.path(), "bond0").rc, 0);
  EXPECT_EQ(kernel_.Find(ns_.path(), "bond0"), nullptr);
  EXPECT_EQ(kernel_.Find(ns_.path(), "net1")->info.master_index, 0);
  EXPECT_EQ(Invoke(plugin_, "DEL", Conf(), ns_.path(), "bond0").rc, 0);
}

TEST_F(BondPluginTest, FailedAddRemovesTheBond) {
  kernel_.FailNext("EnslaveLink", /*skip=*/1);
  auto add = Invoke(plugin_, "ADD", Conf(), ns_.path(), "bond0");
  EXPECT_EQ(add.rc, 1);
  EXPECT_EQ(kernel_.Find(ns_.path(), "bond0"), nullptr);
  EXPECT_EQ(kernel_.Find(ns_.path(), "net1")->info.master_index, 0);
  EXPECT_TRUE(kernel_.Find(ns_.path(), "net2")->info.admin_up);
}

TEST_F(BondPluginTest, MalformedConfigs) {
  struct Case {
    std::function<void(json&)> edit;
    std::string msg;
  };
  std::vector<Case> cases = {
      {[](json& c) { c.erase("mode"); }, "mode: required"},
      {[](json& c) { c["mode"] = "fastest"; }, "mode: 'fastest' is not one of"},
      {[](json& c) {
         c["links"] = {{{"name", "net1"}}};
       },
       "links: a bond needs at least 2"},
      {[](json& c) {
         c["links"] = {{{"name", "net1"}}, {{"name", "net1"}}};
       },
       "links[1].name: 'net1' is listed twice"},
      {[](json& c) {
         c["links"] = {{{"name", "net1"}}, {{"name", "net9"}}};
       },
       "links[1].name: net9 not found"},
      {[](json& c) { c["primary"] = "net7"; }, "primary: 'net7' is not one of the links"},
      {[](json& c) { c["xmitHashPolicy"] = "layer3+4"; }, "xmitHashPolicy: applies to"},
      {[](json& c) { c["updelay"] = 150; }, "updelay: 150 ms is not a multiple of miimon"},
      {[](json& c) { c["miimon"] = -1; }, "miimon: -1 ms is outside"},
      {[](json& c) { c["links"] = "net1,net2"; }, "links: required"},
  };
  for (const auto& c : cases) {
    json conf = Conf();
    c.edit(conf);
    auto add = Invoke(plugin_, "ADD", conf, ns_.path(), "bond0");
    EXPECT_EQ(add.out["code"], 7) << add.out.dump();
    EXPECT_EQ(add.out["msg"].get<std::string>().rfind(c.msg, 0), 0u) << add.out.dump();
    EXPECT_EQ(kernel_.Find(ns_.path(), "bond0"), nullptr);
  }
}

TEST_F(BondPluginTest, LoadBalancingModesTakeAHashPolicy) {
  for (const char* mode : {"balance-xor", "802.3ad", "balance-tlb"}) {
    json conf = Conf();
    conf["mode"] = mode;
    conf.erase("primary");
    conf.erase("failOverMac");
    conf["xmitHashPolicy"] = "layer3+4";
    auto add = Invoke(plugin_, "ADD", conf, ns_.path(), "bond0");
    ASSERT_EQ(add.rc, 0) << mode << add.out.dump();
    EXPECT_EQ(Invoke(plugin_, "CHECK", conf, ns_.path(), "bond0").rc, 0);
    ASSERT_EQ(Invoke(plugin_, "DEL", conf, ns_.path(), "bond0").rc, 0);
  }
}

TEST_F(BondPluginTest, VlanOnTheBond) {
  json conf = Conf();
  conf["vlan"] = 100;
  auto add = Invoke(plugin_, "ADD", conf, ns_.path(), "net0");
  ASSERT_EQ(add.rc, 0) << add.out.dump();
  EXPECT_EQ(add.out["interfaces"][0]["name"], "net0-bond");
  EXPECT_EQ(add.out["interfaces"][1]["name"], "net0");
  auto* bond = kernel_.Find(ns_.path(), "net0-bond");
  auto* vlan = kernel_.Find(ns_.path(), "net0");
  ASSERT_NE(bond, nullptr);
  ASSERT_NE(vlan, nullptr);
  EXPECT_EQ(bond->info.kind, "bond");
  EXPECT_EQ(vlan->info.kind, "vlan");
  EXPECT_EQ(vlan->info.vlan_id, 100);
  EXPECT_EQ(vlan->info.peer_index, bond->info.index);
  EXPECT_TRUE(vlan->info.admin_up);
  EXPECT_EQ(vlan->info.mtu, 9000);  // inherited from the bond
  EXPECT_EQ(kernel_.Find(ns_.path(), "net1")->info.master_index, bond->info.index);
  EXPECT_EQ(Invoke(plugin_, "CHECK", conf, ns_.path(), "net0").rc, 0);

  json other = conf;
  other["vlan"] = 200;
  auto check = Invoke(plugin_, "CHECK", other, ns_.path(), "net0");
  EXPECT_EQ(check.rc, 1);
  EXPECT_NE(check.out["msg"].get<std::string>().find("net0 has VLAN id 100, configured 200"),
            std::string::npos)
      << check.out.dump();
  // A second attachment with the same derived bond name is refused before anything changes.
  kernel_.AddLink(ns_.path(), "net3", "");
  kernel_.AddLink(ns_.path(), "net4", "");
  json second = conf;
  second["links"] = {{{"name", "net3"}}, {{"name", "net4"}}};
  second["primary"] = "net3";
  second["bondName"] = "net0-bond";
  auto dup = Invoke(plugin_, "ADD", second, ns_.path(), "net5");
  EXPECT_EQ(dup.rc, 1);
  EXPECT_EQ(kernel_.Find(ns_.path(), "net5"), nullptr);

  ASSERT_EQ(Invoke(plugin_, "DEL", conf, ns_.path(), "net0").rc, 0);
  EXPECT_EQ(kernel_.Find(ns_.path(), "net0"), nullptr);
  EXPECT_EQ(kernel_.Find(ns_.path(), "net0-bond"), nullptr);
  EXPECT_EQ(kernel_.Find(ns_.path(), "net1")->info.master_index, 0);
  EXPECT_NE(kernel_.Find(ns_.path(), "net2"), nullptr);
  EXPECT_EQ(Invoke(plugin_, "DEL", conf, ns_.path(), "net0").rc, 0);
}

TEST_F(BondPluginTest, VlanWithANamedBondAndAHalfDoneDel) {
  json conf = Conf();
  conf["vlan"] = 4094;
  conf["bondName"] = "bond7";
  ASSERT_EQ(Invoke(plugin_, "ADD", conf, ns_.path(), "net0").rc, 0);
  ASSERT_NE(kernel_.Find(ns_.path(), "bond7"), nullptr);
  // The VLAN went away (say, a DEL that stopped half-way): DEL still removes the bond.
  kernel_.Links(ns_.path()).erase("net0");
  ASSERT_EQ(Invoke(plugin_, "DEL", conf, ns_.path(), "net0").rc, 0);
  EXPECT_EQ(kernel_.Find(ns_.path(), "bond7"), nullptr);
  EXPECT_EQ(kernel_.Find(ns_.path(), "net1")->info.master_index, 0);
}

TEST_F(BondPluginTest, FailedVlanRemovesTheBond) {
  json conf = Conf();
  conf["vlan"] = 100;
  kernel_.FailNext("CreateVlan");
  auto add = Invoke(plugin_, "ADD", conf, ns_.path(), "net0");
  EXPECT_EQ(add.rc, 1) << add.out.dump();
  EXPECT_EQ(kernel_.Find(ns_.path(), "net0"), nullptr);
  EXPECT_EQ(kernel_.Find(ns_.path(), "net0-bond"), nullptr);
  EXPECT_EQ(kernel_.Find(ns_.path(), "net1")->info.master_index, 0);
  EXPECT_TRUE(kernel_.Find(ns_.path(), "net1")->info.admin_up);
}

TEST_F(BondPluginTest, MalformedVlanConfigs) {
  struct Case {
    std::function<void(json&)> edit;
    std::string msg;
  };
  std::vector<Case> cases = {
      {[](json& c) { c["vlan"] = 0; }, "vlan: 0 is outside 1..4094"},
      {[](json& c) { c["vlan"] = 4095; }, "vlan: 4095 is outside 1..4094"},
      {[](json& c) { c["vlan"] = "100"; }, "vlan: must be"},
      {[](json& c) {
         c["vlan"] = 100;
         c["bondName"] = "net0";
       },
       "bondName: 'net0' is CNI_IFNAME"},
      {[](json& c) {
         c["vlan"] = 100;
         c["bondName"] = "net2";
       },
       "bondName: 'net2' is one of the links"},
      {[](json& c) {
         c["vlan"] = 100;
         c["bondName"] = "a/b";
       },
       "bondName:"},
      {[](json& c) { c["bondName"] = "bond7"; }, "bondName: applies with vlan only"},
  };
  for (const auto& c : cases) {
    json conf = Conf();
    c.edit(conf);
    auto add = Invoke(plugin_, "ADD", conf, ns_.path(), "net0");
    EXPECT_EQ(add.out["code"], 7) << add.out.dump();
    EXPECT_EQ(add.out["msg"].get<std::string>().rfind(c.msg, 0), 0u) << add.out.dump();
    EXPECT_EQ(kernel_.Links(ns_.path()).size(), 2u);
  }
}

}  // namespace
}  // namespace strata::cni
