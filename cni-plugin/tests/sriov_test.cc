#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "strata/cni/sriov_plugin.h"
#include "strata/cni/sriov_state.h"
#include "strata/cni/sysfs.h"
#include "strata/common/file_util.h"
#include "strata/net/testing/fake_netlink.h"
#include "test_util.h"

namespace strata::cni {
namespace {

using net::testing::FakeKernel;
using nlohmann::json;
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

// Records every delegated call; ADD answers `add_result` (or `add_error`).
class FakeIpam final : public IpamRunner {
 public:
  Result<json> Run(const std::string& command, const CniArgs& args, const std::string& type,
                   const json& conf) override {
    calls.push_back(command + " " + type + " " + args.container_id + "/" + args.ifname);
    last_conf = conf;
    if (command == "ADD") {
      if (!add_error.ok()) return add_error;
      return add_result;
    }
    return json();
  }
  std::vector<std::string> calls;
  json last_conf;
  Status add_error;
  json add_result = {
      {"cniVersion", "0.4.0"},
      {"ips", {{{"version", "4"}, {"address", "10.9.0.5/24"}, {"gateway", "10.9.0.1"}}}},
      {"routes", {{{"dst", "0.0.0.0/0"}}, {{"dst", "10.8.0.0/16"}, {"gw", "10.9.0.9"}}}},
      {"dns", {{"nameservers", {"10.9.0.53"}}}}};
};

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
  FakeIpam ipam_;
  SriovPlugin plugin_{&kernel_, &ipam_,
                      SriovPlugin::Options{sysfs_.path(), state_.path(), /*simulate_pf=*/true}};
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
  kernel_.FailNext("ChangeLink");
  auto add = Invoke(plugin_, "ADD", Conf(), ns_.path(), "net1");
  EXPECT_EQ(add.rc, 1);
  auto* back = kernel_.Find("", "vf0");
  ASSERT_NE(back, nullptr) << "VF not returned to the host";
  EXPECT_EQ(back->info.mac, original_mac_);
  EXPECT_TRUE(kernel_.Links(ns_.path()).empty());
  EXPECT_EQ(SimVf(0)["vlan"], 0);
  EXPECT_FALSE(HasRecord(kVf0));
}

TEST_F(SriovPluginTest, AddFailingHalfWayThroughTheMoveBringsTheVfHome) {
  // do_setlink moved the link, then refused the MTU: it sits in the pod under its host name.
  kernel_.FailNext("ChangeLink:after-move");
  auto add = Invoke(plugin_, "ADD", Conf(), ns_.path(), "net1");
  EXPECT_EQ(add.rc, 1);
  auto* back = kernel_.Find("", "vf0");
  ASSERT_NE(back, nullptr) << "VF not returned to the host";
  EXPECT_EQ(back->info.mac, original_mac_);
  EXPECT_EQ(back->info.mtu, 1500);
  EXPECT_FALSE(back->info.admin_up);
  EXPECT_TRUE(kernel_.Links(ns_.path()).empty());
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
         c["ipam"] = {{"subnet", "10.0.0.0/24"}};
       },
       7, "ipam.type: required"},
      {[](json& c) {
         c["ipam"] = {{"type", "../x"}};
       },
       7, "ipam.type: '../x' is not a plugin"},
      {[](json& c) { c["ipam"] = "host-local"; }, 7, "ipam: must be an object"},
      {[](json& c) {
         c["deviceID"] = kVf1;
         c["ipam"] = {{"type", "host-local"}};
       },
       7, "ipam: VF 0000:03:02.1 is bound to vfio-pci"},
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
    EXPECT_TRUE(SimVf(1).is_null());
  }
  EXPECT_TRUE(ipam_.calls.empty());
}

TEST_F(SriovPluginTest, OneNetlinkRequestPerMoveAndAdminStateRestored) {
  kernel_.Find("", "vf0")->info.admin_up = true;  // an administrator had it up on the host
  ASSERT_EQ(Invoke(plugin_, "ADD", Conf(), ns_.path(), "net1").rc, 0);
  EXPECT_EQ(kernel_.moves, 1);
  auto rec = VfRecordStore(state_.path()).Read(kVf0);
  ASSERT_TRUE(rec.ok() && rec->has_value());
  EXPECT_TRUE((*rec)->host_admin_up);
  EXPECT_EQ((*rec)->original.link_state, "auto");
  EXPECT_FALSE((*rec)->original.trust);
  ASSERT_EQ(Invoke(plugin_, "DEL", Conf(), ns_.path(), "net1").rc, 0);
  EXPECT_EQ(kernel_.moves, 2);
  auto* back = kernel_.Find("", "vf0");
  ASSERT_NE(back, nullptr);
  EXPECT_TRUE(back->info.admin_up);
  EXPECT_EQ(back->info.mtu, 1500);
  EXPECT_EQ(back->info.mac, original_mac_);
  EXPECT_EQ(SimVf(0)["trust"], false);
  EXPECT_EQ(SimVf(0)["linkState"], "auto");

  // And a VF that was down stays down.
  back->info.admin_up = false;
  ASSERT_EQ(Invoke(plugin_, "ADD", Conf(), ns_.path(), "net1").rc, 0);
  ASSERT_EQ(Invoke(plugin_, "DEL", Conf(), ns_.path(), "net1").rc, 0);
  EXPECT_FALSE(kernel_.Find("", "vf0")->info.admin_up);
}

TEST_F(SriovPluginTest, IpamAddAppliesAddressesAndRoutesDelReleases) {
  json conf = Conf("0.4.0");
  conf["ipam"] = {{"type", "host-local"}, {"subnet", "10.9.0.0/24"}};
  auto add = Invoke(plugin_, "ADD", conf, ns_.path(), "net1", "pod-a");
  ASSERT_EQ(add.rc, 0) << add.out.dump();
  ASSERT_EQ(ipam_.calls.size(), 1u);
  EXPECT_EQ(ipam_.calls[0], "ADD host-local pod-a/net1");
  EXPECT_EQ(ipam_.last_conf["ipam"]["subnet"], "10.9.0.0/24");  // the same config, as given
  auto* vf = kernel_.Find(ns_.path(), "net1");
  ASSERT_NE(vf, nullptr);
  EXPECT_EQ(vf->addresses, std::set<std::string>{"10.9.0.5/24"});
  EXPECT_EQ(vf->routes,
            (std::vector<std::string>{"0.0.0.0/0 via 10.9.0.1", "10.8.0.0/16 via 10.9.0.9"}));
  // The result (0.4.0): the IP on our interface, with its version; routes and DNS passed on.
  ASSERT_EQ(add.out["ips"].size(), 1u);
  EXPECT_EQ(add.out["ips"][0]["address"], "10.9.0.5/24");
  EXPECT_EQ(add.out["ips"][0]["interface"], 0);
  EXPECT_EQ(add.out["ips"][0]["version"], "4");
  EXPECT_EQ(add.out["routes"].size(), 2u);
  EXPECT_EQ(add.out["dns"]["nameservers"][0], "10.9.0.53");
  auto rec = VfRecordStore(state_.path()).Read(kVf0);
  ASSERT_TRUE(rec.ok() && rec->has_value());
  EXPECT_EQ((*rec)->ipam_type, "host-local");

  EXPECT_EQ(Invoke(plugin_, "CHECK", conf, ns_.path(), "net1", "pod-a").rc, 0);
  EXPECT_EQ(ipam_.calls.back(), "CHECK host-local pod-a/net1");
  ASSERT_EQ(Invoke(plugin_, "DEL", conf, ns_.path(), "net1", "pod-a").rc, 0);
  EXPECT_EQ(ipam_.calls.back(), "DEL host-local pod-a/net1");
  EXPECT_TRUE(kernel_.Find("", "vf0")->addresses.empty());
  // DEL again: no record, IPAM DEL still called (idempotent by spec).
  ipam_.calls.clear();
  ASSERT_EQ(Invoke(plugin_, "DEL", conf, ns_.path(), "net1", "pod-a").rc, 0);
  EXPECT_EQ(ipam_.calls, std::vector<std::string>{"DEL host-local pod-a/net1"});
}

TEST_F(SriovPluginTest, FailedIpamOrAddressUndoesEverythingIncludingIpam) {
  json conf = Conf();
  conf["ipam"] = {{"type", "host-local"}};
  for (int round = 0; round < 2; ++round) {
    ipam_.calls.clear();
    if (round == 0) {
      ipam_.add_error = UnavailableError("ipam host-local ADD: no free addresses");
    } else {
      ipam_.add_error = Status::Ok();
      kernel_.FailNext("AddRoute", /*skip=*/1);  // the second route
    }
    auto add = Invoke(plugin_, "ADD", conf, ns_.path(), "net1", "pod-a");
    EXPECT_EQ(add.rc, 1) << add.out.dump();
    if (round == 0) {
      EXPECT_EQ(add.out["code"], 11) << add.out.dump();
    }
    EXPECT_EQ(ipam_.calls,
              (std::vector<std::string>{"ADD host-local pod-a/net1", "DEL host-local pod-a/net1"}));
    auto* back = kernel_.Find("", "vf0");
    ASSERT_NE(back, nullptr) << "VF not returned to the host";
    EXPECT_EQ(back->info.mac, original_mac_);
    EXPECT_EQ(back->info.mtu, 1500);
    EXPECT_TRUE(back->addresses.empty());
    EXPECT_TRUE(kernel_.Links(ns_.path()).empty());
    if (round == 0) {
      EXPECT_TRUE(SimVf(0).is_null()) << "IPAM runs first: its failure leaves the PF untouched";
      EXPECT_EQ(kernel_.moves, 0);
    } else {
      EXPECT_EQ(SimVf(0)["vlan"], 0);
      EXPECT_EQ(kernel_.moves, 2);
    }
    EXPECT_FALSE(HasRecord(kVf0));
  }
}

TEST_F(SriovPluginTest, GcReleasesIpamOfVanishedAttachments) {
  json conf = Conf();
  conf["ipam"] = {{"type", "host-local"}};
  ASSERT_EQ(Invoke(plugin_, "ADD", conf, ns_.path(), "net1", "pod-a").rc, 0);
  // A GC config without the ipam section: the record keeps what ADD gave the IPAM plugin.
  json gc = {{"cniVersion", "1.1.0"},
             {"name", "sriov-net"},
             {"type", "strata-sriov"},
             {"cni.dev/valid-attachments", json::array()}};
  EXPECT_EQ(Invoke(plugin_, "GC", gc, "").rc, 0);
  EXPECT_EQ(ipam_.calls.back(), "DEL host-local pod-a/net1");
  EXPECT_EQ(ipam_.last_conf["ipam"]["type"], "host-local");
  EXPECT_EQ(ipam_.last_conf["deviceID"], kVf0);
  EXPECT_FALSE(HasRecord(kVf0));
}

TEST(VfLock, SerialisesHoldersOfOneVf) {
  TempDir dir;
  auto first = VfLock::Acquire(dir.path(), kVf0);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  // flock(2) locks belong to the open file: a second open in this process conflicts too.
  int fd = ::open((dir.path() + "/" + kVf0 + ".lock").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  EXPECT_NE(::flock(fd, LOCK_EX | LOCK_NB), 0);
  EXPECT_EQ(errno, EWOULDBLOCK);
  auto other = VfLock::Acquire(dir.path(), kVf1);  // another VF: independent
  EXPECT_TRUE(other.ok());
  EXPECT_EQ(VfLock::Acquire(dir.path(), "../escape").status().code(), StatusCode::kInvalidArgument);
  { auto released = std::move(first); }
  EXPECT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  ::close(fd);
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

namespace strata::cni {
namespace {

// The kubelet's PodResources answer, as strata-podresources would relay it.
class FakePodDevices final : public PodDeviceLookup {
 public:
  Result<std::vector<std::string>> DeviceIds(const CniArgs&, const std::string& socket,
                                             const std::string& ns, const std::string& pod,
                                             const std::string& resource) override {
    asked.push_back(socket + " " + ns + "/" + pod + " " + resource);
    auto it = held.find(ns + "/" + pod + " " + resource);
    if (it == held.end()) {
      return NotFoundError("resourceName: pod " + ns + "/" + pod + " holds no device of " +
                           resource);
    }
    return it->second;
  }
  std::map<std::string, std::vector<std::string>> held;
  std::vector<std::string> asked;
};

testing::Invocation InvokePod(Plugin& plugin, const std::string& command, const json& conf,
                              const std::string& netns, const std::string& ifname,
                              const std::string& cni_args) {
  std::map<std::string, std::string> env = {{"CNI_COMMAND", command},     {"CNI_CONTAINERID", "c1"},
                                            {"CNI_NETNS", netns},         {"CNI_IFNAME", ifname},
                                            {"CNI_PATH", "/usr/lib/cni"}, {"CNI_ARGS", cni_args}};
  std::string out;
  testing::Invocation inv;
  inv.rc = RunPlugin(plugin, env, conf.dump(), &out);
  inv.out = out.empty() ? json() : json::parse(out);
  return inv;
}

class SriovPfSwitchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LayOutTree(sysfs_.path());
    kernel_.AddNetns(ns_.path());
    kernel_.AddLink("", "vf0", "", 1500);
  }
  json Conf() {
    return {{"cniVersion", "1.0.0"},
            {"name", "sriov-net"},
            {"type", "strata-sriov"},
            {"deviceID", kVf0},
            {"vlan", 100}};
  }
  TempDir sysfs_, state_, ns_;
  FakeKernel kernel_;
  FakeIpam ipam_;
  // A sysfs root other than /sys and no simulatePF: a host sysfs mounted elsewhere.
  SriovPlugin plugin_{&kernel_, &ipam_, SriovPlugin::Options{sysfs_.path(), state_.path()}};
};

TEST_F(SriovPfSwitchTest, OtherSysfsRootWithoutTheSwitchUsesThePfThroughNetlink) {
  kernel_.vfs[{"pf0", 0}] = net::VfState{};
  auto add = testing::Invoke(plugin_, "ADD", Conf(), ns_.path(), "net1");
  ASSERT_EQ(add.rc, 0) << add.out.dump();
  EXPECT_EQ(kernel_.vfs[std::make_pair(std::string("pf0"), 0)].vlan, 100);
  EXPECT_NE(::access((sysfs_.path() + "/strata-sim-vf").c_str(), F_OK), 0);
  ASSERT_EQ(testing::Invoke(plugin_, "DEL", Conf(), ns_.path(), "net1").rc, 0);
  EXPECT_EQ(kernel_.vfs[std::make_pair(std::string("pf0"), 0)].vlan, 0);
}

TEST_F(SriovPfSwitchTest, APfWithoutThatVfFailsNamingThePfAndChangesNothing) {
  auto add = testing::Invoke(plugin_, "ADD", Conf(), ns_.path(), "net1");
  EXPECT_NE(add.rc, 0);
  const std::string msg = add.out.value("msg", "");
  EXPECT_NE(msg.find("VF 0 of PF pf0"), std::string::npos) << msg;
  EXPECT_NE(kernel_.Find("", "vf0"), nullptr);
  EXPECT_NE(::access((state_.path() + "/" + kVf0 + ".json").c_str(), F_OK), 0);
  EXPECT_NE(::access((sysfs_.path() + "/strata-sim-vf").c_str(), F_OK), 0);
}

TEST_F(SriovPfSwitchTest, SimulatePfInTheConfigTurnsSimulationOn) {
  json conf = Conf();
  conf["simulatePF"] = true;
  auto add = testing::Invoke(plugin_, "ADD", conf, ns_.path(), "net1");
  ASSERT_EQ(add.rc, 0) << add.out.dump();
  EXPECT_EQ(::access((sysfs_.path() + "/strata-sim-vf/pf0/vf0.json").c_str(), F_OK), 0);
  ASSERT_EQ(testing::Invoke(plugin_, "DEL", conf, ns_.path(), "net1").rc, 0);
  conf["simulatePF"] = "yes";
  auto bad = testing::Invoke(plugin_, "ADD", conf, ns_.path(), "net1");
  EXPECT_EQ(bad.out["code"], 7);
  EXPECT_EQ(bad.out["msg"].get<std::string>().rfind("simulatePF: ", 0), 0u) << bad.out.dump();
}

TEST(SriovOptions, SwitchFromEnvOnlyWhenSetToOneOrTrue) {
  EXPECT_FALSE(SriovPlugin::Options::FromEnv({{"STRATA_CNI_SYSFS_ROOT", "/host/sys"}}).simulate_pf);
  EXPECT_TRUE(SriovPlugin::Options::FromEnv({{"STRATA_CNI_SIMULATE_PF", "1"}}).simulate_pf);
  EXPECT_TRUE(SriovPlugin::Options::FromEnv({{"STRATA_CNI_SIMULATE_PF", "true"}}).simulate_pf);
  EXPECT_FALSE(SriovPlugin::Options::FromEnv({{"STRATA_CNI_SIMULATE_PF", "0"}}).simulate_pf);
}

class SriovResourceNameTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LayOutTree(sysfs_.path());
    kernel_.AddNetns(ns_.path());
    kernel_.AddLink("", "vf0", "", 1500);
  }
  json Conf() {
    return {{"cniVersion", "1.1.0"},
            {"name", "sriov-net"},
            {"type", "strata-sriov"},
            {"resourceName", "strata.io/sriov-fast"},
            {"podResourcesSocket", "/run/test/kubelet.sock"}};
  }
  TempDir sysfs_, state_, ns_;
  FakeKernel kernel_;
  FakeIpam ipam_;
  FakePodDevices pods_;
  SriovPlugin plugin_{&kernel_, &ipam_,
                      SriovPlugin::Options{sysfs_.path(), state_.path(), /*simulate_pf=*/true},
                      &pods_};
  const std::string args_ = "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=pod1";
};

TEST_F(SriovResourceNameTest, EachInterfaceGetsTheNextVfThePodWasAllocated) {
  pods_.held["ns1/pod1 strata.io/sriov-fast"] = {kVf0, kVf1};
  auto a = InvokePod(plugin_, "ADD", Conf(), ns_.path(), "net1", args_);
  ASSERT_EQ(a.rc, 0) << a.out.dump();
  EXPECT_EQ(a.out["interfaces"][0]["pciID"], kVf0);
  EXPECT_EQ(pods_.asked.at(0), "/run/test/kubelet.sock ns1/pod1 strata.io/sriov-fast");
  auto b = InvokePod(plugin_, "ADD", Conf(), ns_.path(), "net2", args_);
  ASSERT_EQ(b.rc, 0) << b.out.dump();
  EXPECT_EQ(b.out["interfaces"][0]["pciID"], kVf1);
  EXPECT_EQ(InvokePod(plugin_, "CHECK", Conf(), ns_.path(), "net1", args_).rc, 0);
  ASSERT_EQ(InvokePod(plugin_, "DEL", Conf(), ns_.path(), "net1", args_).rc, 0);
  ASSERT_EQ(InvokePod(plugin_, "DEL", Conf(), ns_.path(), "net2", args_).rc, 0);
  EXPECT_NE(kernel_.Find("", "vf0"), nullptr);
}

TEST_F(SriovResourceNameTest, APodWithoutSuchDeviceIsAConfigErrorNamingIt) {
  auto a = InvokePod(plugin_, "ADD", Conf(), ns_.path(), "net1", args_);
  EXPECT_EQ(a.out["code"], 7);
  EXPECT_EQ(a.out["msg"], "resourceName: pod ns1/pod1 holds no device of strata.io/sriov-fast");
}

TEST_F(SriovResourceNameTest, NoPodInCniArgsIsAnEnvironmentError) {
  auto a = InvokePod(plugin_, "ADD", Conf(), ns_.path(), "net1", "IgnoreUnknown=1");
  EXPECT_EQ(a.out["code"], 4) << a.out.dump();
  EXPECT_EQ(
      a.out["msg"].get<std::string>().rfind("CNI_ARGS: K8S_POD_NAMESPACE and K8S_POD_NAME", 0), 0u);
  EXPECT_TRUE(pods_.asked.empty());
}

TEST(PodFromCniArgs, ReadsNamespaceAndName) {
  EXPECT_EQ(PodFromCniArgs("IgnoreUnknown=1;K8S_POD_NAMESPACE=a;K8S_POD_NAME=b;K8S_POD_UID=u"),
            std::make_pair(std::string("a"), std::string("b")));
  EXPECT_EQ(PodFromCniArgs(""), std::make_pair(std::string(), std::string()));
}

}  // namespace
}  // namespace strata::cni
