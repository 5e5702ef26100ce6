#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake_netlink.h"
#include "strata/cni/sriov_plugin.h"
#include "strata/cni/sysfs.h"
#include "strata/common/file_util.h"
#include "test_util.h"

namespace strata::cni {
namespace {

using nlohmann::json;
using testing::FakeKernel;
using testing::Invoke;
using testing::TempDir;

constexpr char kPf[] = "0000:03:00.0";
constexpr char kVf0[] = "0000:03:02.0";
constexpr char kVf1[] = "0000:03:02.1";

void Mkdir(const std::string& p) { ASSERT_TRUE(CreateDirectories(p).ok()) << p; }
void Link(const std::string& target, const std::string& at) {
  ASSERT_EQ(::symlink(target.c_str(), at.c_str()), 0) << at;
}

// A PF with two VFs: VF0 bound to a kernel driver with netdev "vf0", VF1 bound to vfio-pci.
void LayOutTree(const std::string& root) {
  const std::string dev = root + "/bus/pci/devices/";
  Mkdir(root + "/bus/pci/drivers/iavf");
  Mkdir(root + "/bus/pci/drivers/vfio-pci");
  Mkdir(dev + kPf + "/net/pf0");
  for (const char* vf : {kVf0, kVf1}) {
    Mkdir(dev + vf);
    Link(std::string("../") + kPf, dev + vf + "/physfn");
  }
  Link(std::string("../") + kVf0, dev + kPf + "/virtfn0");
  Link(std::string("../") + kVf1, dev + kPf + "/virtfn1");
  Mkdir(dev + kVf0 + "/net/vf0");
  Link("../../../bus/pci/drivers/iavf", dev + kVf0 + "/driver");
  Link("../../../bus/pci/drivers/vfio-pci", dev + kVf1 + "/driver");
}

class SriovPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LayOutTree(sysfs_.path());
    kernel_.AddNetns(ns_.path());
    kernel_.AddLink("", "vf0", "", 1500);
    original_mac_ = kernel_.Find("", "vf0")->info.mac;
  }
  json Conf(const std::string& version = "1.1.0") {
    return {{"cniVersion", version},  {"name", "sriov-net"},        {"type", "strata-sriov"},
            {"deviceID", kVf0},       {"mac", "0A:00:00:00:00:01"}, {"vlan", 100},
            {"vlanQoS", 3},           {"spoofchk", "off"},          {"trust", "on"},
            {"link_state", "enable"}, {"max_tx_rate", 1000},        {"mtu", 9000}};
  }
  json SimVf(int index) {
    auto text =
        ReadFileToString(sysfs_.path() + "/strata-sim-vf/pf0/vf" + std::to_string(index) + ".json");
    return text.ok() ? json::parse(*text) : json();
  }
  bool HasRecord(const std::string& pci) {
    return ::access((state_.path() + "/" + pci + ".json").c_str(), F_OK) == 0;
  }
  TempDir sysfs_, state_, ns_;
  FakeKernel kernel_;
  SriovPlugin plugin_{&kernel_, SriovPlugin::Options{sysfs_.path(), state_.path()}};
  std::string original_mac_;
};

TEST(LocateVf, FindsPfIndexDriverAndNetdev) {
  TempDir root;
  LayOutTree(root.path());
  auto sysfs = NewSysfs(root.path());
  auto vf0 = LocateVf(*sysfs, kVf0, "deviceID");
  ASSERT_TRUE(vf0.ok()) << vf0.status().ToString();
  EXPECT_EQ(vf0->pf_netdev, "pf0");
  EXPECT_EQ(vf0->vf_index, 0);
  EXPECT_EQ(vf0->netdev, "vf0");
  EXPECT_FALSE(vf0->userspace);
  auto vf1 = LocateVf(*sysfs, kVf1, "deviceID");
  ASSERT_TRUE(vf1.ok());
  EXPECT_EQ(vf1->vf_index, 1);
  EXPECT_TRUE(vf1->userspace);
  auto pf = LocateVf(*sysfs, kPf, "deviceID");
  ASSERT_FALSE(pf.ok());
  EXPECT_NE(pf.status().message().find("not an SR-IOV virtual function"), std::string::npos);
}

TEST_F(SriovPluginTest, AddMovesAndConfiguresDelRestores) {
  auto add = Invoke(plugin_, "ADD", Conf(), ns_.path(), "net1");
  ASSERT_EQ(add.rc, 0) << add.out.dump();
  ASSERT_EQ(add.out["interfaces"].size(), 1u);
  EXPECT_EQ(add.out["interfaces"][0]["name"], "net1");
  EXPECT_EQ(add.out["interfaces"][0]["pciID"], kVf0);
  EXPECT_EQ(add.out["interfaces"][0]["mac"], "0a:00:00:00:00:01");
  EXPECT_EQ(add.out["interfaces"][0]["sandbox"], ns_.path());
  EXPECT_EQ(kernel_.Find("", "vf0"), nullptr);
  auto* moved = kernel_.Find(ns_.path(), "net1");
  ASSERT_NE(moved, nullptr);
  EXPECT_EQ(moved->info.mtu, 9000);
  EXPECT_TRUE(moved->info.admin_up);
  json vf = SimVf(0);
  EXPECT_EQ(vf["vlan"], 100);
  EXPECT_EQ(vf["vlanQoS"], 3);
  EXPECT_EQ(vf["spoofchk"], false);
  EXPECT_EQ(vf["trust"], true);
  EXPECT_EQ(vf["linkState"], "enable");
  EXPECT_EQ(vf["maxTxRate"], 1000);
  EXPECT_TRUE(HasRecord(kVf0));
  EXPECT_EQ(Invoke(plugin_, "CHECK", Conf(), ns_.path(), "net1").rc, 0);

  auto del = Invoke(plugin_, "DEL", Conf(), ns_.path(), "net1");
  ASSERT_EQ(del.rc, 0) << del.out.dump();
  auto* back = kernel_.Find("", "vf0");
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(back->info.mac, original_mac_);
  EXPECT_EQ(back->info.mtu, 1500);
  EXPECT_EQ(kernel_.Find(ns_.path(), "net1"), nullptr);
  vf = SimVf(0);
  EXPECT_EQ(vf["vlan"], 0);
  EXPECT_EQ(vf["spoofchk"], true);
  EXPECT_EQ(vf["linkState"], "auto");
  EXPECT_FALSE(HasRecord(kVf0));
  EXPECT_EQ(Invoke(plugin_, "DEL", Conf(), ns_.path(), "net1").rc, 0);  // idempotent
}

TEST_F(SriovPluginTest, VfHeldByAnotherPodIsNeitherTakenNorReset) {
  ASSERT_EQ(Invoke(plugin_, "ADD", Conf(), ns_.path(), "net1", "pod-a").rc, 0);
  TempDir other_ns;
  kernel_.AddNetns(other_ns.path());
  auto add = Invoke(plugin_, "ADD", Conf(), other_ns.path(), "net1", "pod-b");
  EXPECT_EQ(add.out["code"], 11);
  EXPECT_NE(add.out["msg"].get<std::string>().find("held by container pod-a"), std::string::npos);
  // A late DEL of an older attachment must not reset pod-a's VF.
  EXPECT_EQ(Invoke(plugin_, "DEL", Conf(), other_ns.path(), "net1", "pod-b").rc, 0);
  EXPECT_NE(kernel_.Find(ns_.path(), "net1"), nullptr);
  EXPECT_EQ(SimVf(0)["vlan"], 100);
  EXPECT_TRUE(HasRecord(kVf0));
}

TEST_F(SriovPluginTest, FailedAddUndoesEverything) {
  kernel_.FailNext("SetLinkMtu");
  auto add = Invoke(plugin_, "ADD", Conf(), ns_.path(), "net1");
  EXPECT_EQ(add.rc, 1);
  auto* back = kernel_.Find("", "vf0");
  ASSERT_NE(back, nullptr) << "VF not returned to the host";
  EXPECT_EQ(back->info.mac, original_mac_);
  EXPECT_TRUE(kernel_.Links(ns_.path()).empty());
  EXPECT_EQ(SimVf(0)["vlan"], 0);
  EXPECT_FALSE(HasRecord(kVf0));
}

TEST_F(SriovPluginTest, VfioVfIsPassedThroughWithoutANetdev) {
  json conf = Conf();
  conf["deviceID"] = kVf1;
  conf.erase("mtu");
  auto add = Invoke(plugin_, "ADD", conf, ns_.path(), "net1");
  ASSERT_EQ(add.rc, 0) << add.out.dump();
  EXPECT_EQ(add.out["interfaces"][0]["pciID"], kVf1);
  EXPECT_TRUE(kernel_.Links(ns_.path()).empty());
  EXPECT_EQ(SimVf(1)["vlan"], 100);
  conf["cniVersion"] = "1.0.0";  // no pciID before 1.1.0
  ASSERT_EQ(Invoke(plugin_, "DEL", conf, ns_.path(), "net1").rc, 0);
  EXPECT_EQ(SimVf(1)["vlan"], 0);
}

TEST_F(SriovPluginTest, RuntimeConfigDeviceIdWins) {
  json conf = Conf();
  conf["deviceID"] = "0000:99:99.9";
  conf["runtimeConfig"] = {{"deviceID", kVf0}};
  EXPECT_EQ(Invoke(plugin_, "ADD", conf, ns_.path(), "net1").rc, 0);
}

TEST_F(SriovPluginTest, MalformedConfigsLeaveNoTrace) {
  struct Case {
    std::function<void(json&)> edit;
    int code;
    std::string msg;
  };
  std::vector<Case> cases = {
      {[](json& c) { c.erase("deviceID"); }, 7, "deviceID: required"},
      {[](json& c) { c["deviceID"] = "0000:99:99.9"; }, 7, "deviceID: PCI device '0000:99:99.9'"},
      {[](json& c) { c["deviceID"] = kPf; }, 7, "deviceID: 0000:03:00.0 is not an SR-IOV"},
      {[](json& c) { c["vlan"] = 5000; }, 7, "vlan: 5000 is outside 0..4094"},
      {[](json& c) { c["vlan"] = 0; }, 7, "vlanQoS: needs a non-zero vlan"},
      {[](json& c) { c["mac"] = "zz"; }, 7, "mac: 'zz' is not a MAC address"},
      {[](json& c) { c["spoofchk"] = true; }, 7, "spoofchk: must be a string"},
      {[](json& c) { c["link_state"] = "up"; }, 7, "link_state: 'up' is not one of"},
      {[](json& c) { c["min_tx_rate"] = 2000; }, 7, "min_tx_rate: 2000 Mbps is above"},
      {[](json& c) { c["mtu"] = 20; }, 7, "mtu: 20 is outside"},
      {[](json& c) {
         c["ipam"] = {{"type", "host-local"}};
       },
       2, "ipam: strata-sriov"},
  };
  for (const auto& c : cases) {
    json conf = Conf();
    c.edit(conf);
    auto add = Invoke(plugin_, "ADD", conf, ns_.path(), "net1");
    EXPECT_EQ(add.out["code"], c.code) << add.out.dump();
    EXPECT_EQ(add.out["msg"].get<std::string>().rfind(c.msg, 0), 0u) << add.out.dump();
    EXPECT_NE(kernel_.Find("", "vf0"), nullptr);
    EXPECT_FALSE(HasRecord(kVf0));
    EXPECT_TRUE(SimVf(0).is_null());
  }
}

TEST_F(SriovPluginTest, GcReleasesVfsOfVanishedAttachments) {
  ASSERT_EQ(Invoke(plugin_, "ADD", Conf(), ns_.path(), "net1", "pod-a").rc, 0);
  json gc = {{"cniVersion", "1.1.0"},
             {"name", "sriov-net"},
             {"type", "strata-sriov"},
             {"cni.dev/valid-attachments", {{{"containerID", "pod-a"}, {"ifname", "net1"}}}}};
  EXPECT_EQ(Invoke(plugin_, "GC", gc, "").rc, 0);
  EXPECT_TRUE(HasRecord(kVf0));
  gc["cni.dev/valid-attachments"] = json::array();
  EXPECT_EQ(Invoke(plugin_, "GC", gc, "").rc, 0);
  EXPECT_FALSE(HasRecord(kVf0));
  EXPECT_NE(kernel_.Find("", "vf0"), nullptr);
  EXPECT_EQ(Invoke(plugin_, "STATUS", gc, "").rc, 0);
}

}  // namespace
}  // namespace strata::cni
