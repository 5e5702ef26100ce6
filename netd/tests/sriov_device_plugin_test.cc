// Unit tests of the SR-IOV device plugin's parts on a laid-out sysfs tree (plain files and
// symlinks in a temp dir) and a fake link probe: pool flags, VF discovery and health,
// ListAndWatch's list, Allocate and GetPreferredAllocation. The gRPC flows with a kubelet are in
// tests/netd/sriov_device_plugin_test.cc.
#include "strata/netd/sriov_device_plugin.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>

#include "strata/netd/sriov_inventory.h"
#include "strata/netd/sriov_pool.h"

namespace strata::netd {
namespace {

class FakeLinkProbe final : public LinkProbe {
 public:
  Result<bool> IsUp(const std::string& ifname) override {
    auto it = up.find(ifname);
    if (it == up.end()) return NotFoundError("interface " + ifname + " does not exist");
    return it->second;
  }
  std::map<std::string, bool> up;
};

class Tree {
 public:
  Tree() {
    char tmpl[] = "/tmp/strata-netd-sriov.XXXXXX";
    root_ = ::mkdtemp(tmpl);
  }
  ~Tree() { (void)std::system(("rm -rf '" + root_ + "'").c_str()); }
  const std::string& root() const { return root_; }

  void Mkdir(const std::string& rel) {
    (void)std::system(("mkdir -p '" + root_ + "/" + rel + "'").c_str());
  }
  void Link(const std::string& target, const std::string& rel) {
    ASSERT_EQ(::symlink(target.c_str(), (root_ + "/" + rel).c_str()), 0) << rel;
  }
  // A PF with `n` VFs: VF i at pf_bus:02.i, "bound to iavf" with netdev <pf>v<i>, except the
  // ones listed in `vfio` (bound to vfio-pci, IOMMU group 40 + i).
  void AddPf(const std::string& pci, const std::string& netdev, const std::string& vf_prefix, int n,
             std::vector<int> vfio = {}) {
    Mkdir("bus/pci/devices/" + pci + "/net/" + netdev);
    Mkdir("bus/pci/drivers/iavf");
    Mkdir("bus/pci/drivers/vfio-pci");
    for (int i = 0; i < n; ++i) {
      std::string vf = vf_prefix + std::to_string(i);
      bool is_vfio = std::find(vfio.begin(), vfio.end(), i) != vfio.end();
      Mkdir("bus/pci/devices/" + vf);
      Link("../" + pci, "bus/pci/devices/" + vf + "/physfn");
      Link("../" + vf, "bus/pci/devices/" + pci + "/virtfn" + std::to_string(i));
      Link(std::string("../../../bus/pci/drivers/") + (is_vfio ? "vfio-pci" : "iavf"),
           "bus/pci/devices/" + vf + "/driver");
      if (is_vfio) {
        Mkdir("kernel/iommu_groups/" + std::to_string(40 + i));
        Link("../../../kernel/iommu_groups/" + std::to_string(40 + i),
             "bus/pci/devices/" + vf + "/iommu_group");
      } else {
        Mkdir("bus/pci/devices/" + vf + "/net/" + netdev + "v" + std::to_string(i));
      }
      std::ofstream(root_ + "/bus/pci/devices/" + vf + "/numa_node") << (i == 0 ? "1\n" : "-1\n");
    }
  }

 private:
  std::string root_;
};

TEST(SriovPoolTest, ParsesNamesAndPfs) {
  auto p = ParseSriovPool("fast=ens1f0,0000:3b:00.1");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->name, "fast");
  EXPECT_EQ(p->pfs, (std::vector<std::string>{"ens1f0", "0000:3b:00.1"}));
  EXPECT_EQ(SriovResourceName("strata.io", *p), "strata.io/sriov-fast");
}

TEST(SriovPoolTest, RefusesBadValuesNamingTheFlag) {
  struct Case {
    std::string value, message;
  };
  for (const Case& c : std::vector<Case>{
           {"fast", "--sriov-pool: 'fast' is not NAME=PF[,PF...]"},
           {"Fast=ens1", "--sriov-pool: pool name 'Fast' must be"},
           {"-x=ens1", "--sriov-pool: pool name '-x' must be"},
           {"=ens1", "--sriov-pool: pool name '' must be"},
           {"fast=", "--sriov-pool fast: '' is not an interface name"},
           {"fast=ens1,,ens2", "--sriov-pool fast: '' is not an interface name"},
           {"fast=a/b", "--sriov-pool fast: 'a/b' is not an interface name"},
           {"fast=ens1,ens1", "--sriov-pool fast: PF 'ens1' listed twice"},
       }) {
    auto p = ParseSriovPool(c.value);
    ASSERT_FALSE(p.ok()) << c.value;
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(p.status().message().rfind(c.message, 0), 0u) << p.status().message();
  }
  auto twice = ParseSriovPools({"a=ens1", "a=ens2"});
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.status().message(), "--sriov-pool: pool 'a' defined twice");
  auto shared = ParseSriovPools({"a=ens1", "b=ens2,ens1"});
  ASSERT_FALSE(shared.ok());
  EXPECT_EQ(
      shared.status().message().rfind("--sriov-pool b: PF 'ens1' is already in another pool", 0),
      0u);
}

TEST(SriovPoolTest, EnvNameAsSriovNetworkDevicePluginAndKubeVirt) {
  EXPECT_EQ(PciDeviceEnvName("strata.io/sriov-fast"), "PCIDEVICE_STRATA_IO_SRIOV-FAST");
  EXPECT_EQ(PciDeviceEnvName("intel.com/intel_sriov_netdevice"),
            "PCIDEVICE_INTEL_COM_INTEL_SRIOV_NETDEVICE");
}

class SriovInventoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tree_.AddPf("0000:3b:00.0", "ens1f0", "0000:3b:02.", 2, {1});
    tree_.AddPf("0000:3c:00.0", "ens2f0", "0000:3c:02.", 1);
    links_.up = {{"ens1f0", true}, {"ens2f0", true}};
    sysfs_ = cni::NewSysfs(tree_.root());
  }
  Tree tree_;
  FakeLinkProbe links_;
  std::unique_ptr<cni::Sysfs> sysfs_;
};

TEST_F(SriovInventoryTest, FindsVfsByInterfaceOrPciWithDriverGroupAndNuma) {
  SriovInventory inv(sysfs_.get(), &links_);
  auto vfs = inv.Scan({"fast", {"ens1f0", "0000:3c:00.0"}});
  ASSERT_EQ(vfs.size(), 3u);
  EXPECT_EQ(vfs[0].pci, "0000:3b:02.0");
  EXPECT_EQ(vfs[0].pf_netdev, "ens1f0");
  EXPECT_EQ(vfs[0].driver, "iavf");
  EXPECT_EQ(vfs[0].numa_node, 1);
  EXPECT_FALSE(vfs[0].vfio);
  EXPECT_TRUE(vfs[0].healthy);
  EXPECT_EQ(vfs[1].pci, "0000:3b:02.1");
  EXPECT_TRUE(vfs[1].vfio);
  EXPECT_EQ(vfs[1].iommu_group, "41");
  EXPECT_EQ(vfs[1].numa_node, -1);
  EXPECT_EQ(vfs[2].pci, "0000:3c:02.0");
  EXPECT_EQ(vfs[2].pf_netdev, "ens2f0");
  EXPECT_EQ(vfs[2].vf_index, 0);
}

TEST_F(SriovInventoryTest, PfLinkDownOrMissingMakesItsVfsUnhealthy) {
  SriovInventory inv(sysfs_.get(), &links_);
  links_.up["ens1f0"] = false;
  auto vfs = inv.Scan({"fast", {"ens1f0", "ens2f0"}});
  ASSERT_EQ(vfs.size(), 3u);
  EXPECT_FALSE(vfs[0].healthy);
  EXPECT_EQ(vfs[0].why_unhealthy, "PF ens1f0 link down");
  EXPECT_TRUE(vfs[2].healthy);
  links_.up.erase("ens2f0");
  vfs = inv.Scan({"fast", {"ens2f0"}});
  ASSERT_EQ(vfs.size(), 1u);
  EXPECT_FALSE(vfs[0].healthy);
  EXPECT_EQ(vfs[0].why_unhealthy, "PF ens2f0: interface ens2f0 does not exist");
  EXPECT_TRUE(inv.Scan({"x", {"nosuchpf", "0000:99:00.0"}}).empty());
}

TEST_F(SriovInventoryTest, VfioWithoutIommuGroupIsUnhealthy) {
  ASSERT_EQ(::unlink((tree_.root() + "/bus/pci/devices/0000:3b:02.1/iommu_group").c_str()), 0);
  SriovInventory inv(sysfs_.get(), &links_);
  auto vfs = inv.Scan({"fast", {"ens1f0"}});
  ASSERT_EQ(vfs.size(), 2u);
  EXPECT_FALSE(vfs[1].healthy);
}

SriovVf Vf(const std::string& pci, const std::string& pf, bool healthy, bool vfio = false,
           const std::string& group = "") {
  SriovVf v;
  v.pci = pci;
  v.pf_pci = pf;
  v.healthy = healthy;
  v.vfio = vfio;
  v.iommu_group = group;
  return v;
}

TEST(SriovDevicePluginTest, ListKeepsMissingVfsAsUnhealthyAndReportsChanges) {
  SriovDevicePlugin p("strata.io/sriov-fast");
  EXPECT_TRUE(p.SetVfs({Vf("0000:3b:02.0", "pf", true), Vf("0000:3b:02.1", "pf", true)}));
  EXPECT_FALSE(p.SetVfs({Vf("0000:3b:02.0", "pf", true), Vf("0000:3b:02.1", "pf", true)}));
  EXPECT_TRUE(p.SetVfs({Vf("0000:3b:02.0", "pf", true)}));
  auto list = p.Devices();
  ASSERT_EQ(list.devices_size(), 2);
  EXPECT_EQ(list.devices(0).id(), "0000:3b:02.0");
  EXPECT_EQ(list.devices(0).health(), "Healthy");
  EXPECT_EQ(list.devices(1).id(), "0000:3b:02.1");
  EXPECT_EQ(list.devices(1).health(), "Unhealthy");
  EXPECT_TRUE(p.SetVfs({Vf("0000:3b:02.0", "pf", true), Vf("0000:3b:02.1", "pf", true)}));
  EXPECT_EQ(p.Devices().devices(1).health(), "Healthy");
}

TEST(SriovDevicePluginTest, AllocateSetsPciEnvAndVfioDevices) {
  SriovDevicePlugin p("strata.io/sriov-fast");
  p.SetVfs({Vf("0000:3b:02.0", "pf", true), Vf("0000:3b:02.1", "pf", true, true, "41"),
            Vf("0000:3b:02.2", "pf", true, true, "42")});
  v1beta1::AllocateRequest req;
  req.add_container_requests()->add_devices_ids("0000:3b:02.0");
  auto* two = req.add_container_requests();
  two->add_devices_ids("0000:3b:02.1");
  two->add_devices_ids("0000:3b:02.2");
  v1beta1::AllocateResponse resp;
  grpc::ServerContext ctx;
  ASSERT_TRUE(p.Allocate(&ctx, &req, &resp).ok());
  ASSERT_EQ(resp.container_responses_size(), 2);
  const auto& a = resp.container_responses(0);
  EXPECT_EQ(a.envs().at("PCIDEVICE_STRATA_IO_SRIOV-FAST"), "0000:3b:02.0");
  EXPECT_EQ(a.devices_size(), 0);
  const auto& b = resp.container_responses(1);
  EXPECT_EQ(b.envs().at("PCIDEVICE_STRATA_IO_SRIOV-FAST"), "0000:3b:02.1,0000:3b:02.2");
  ASSERT_EQ(b.devices_size(), 3);
  EXPECT_EQ(b.devices(0).host_path(), "/dev/vfio/vfio");
  EXPECT_EQ(b.devices(1).host_path(), "/dev/vfio/41");
  EXPECT_EQ(b.devices(2).container_path(), "/dev/vfio/42");
  EXPECT_EQ(b.devices(2).permissions(), "mrw");
}

TEST(SriovDevicePluginTest, AllocateOfAnUnknownIdIsInvalidArgumentNamingIt) {
  SriovDevicePlugin p("strata.io/sriov-fast");
  p.SetVfs({Vf("0000:3b:02.0", "pf", true)});
  v1beta1::AllocateRequest req;
  req.add_container_requests()->add_devices_ids("0000:3b:02.0");
  req.add_container_requests()->add_devices_ids("0000:99:00.7");
  v1beta1::AllocateResponse resp;
  grpc::ServerContext ctx;
  grpc::Status s = p.Allocate(&ctx, &req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "container_requests[1].devices_ids[0]: '0000:99:00.7' is not a VF of "
            "strata.io/sriov-fast");
  EXPECT_EQ(resp.container_responses_size(), 0);
}

TEST(SriovDevicePluginTest, PreferredAllocationSpreadsOverPfsHealthyFirst) {
  SriovDevicePlugin p("strata.io/sriov-fast");
  p.SetVfs({Vf("a0", "pfa", true), Vf("a1", "pfa", true), Vf("b0", "pfb", true),
            Vf("b1", "pfb", false)});
  v1beta1::PreferredAllocationRequest req;
  auto* c = req.add_container_requests();
  for (const char* id : {"a0", "a1", "b0", "b1"}) c->add_available_deviceids(id);
  c->add_must_include_deviceids("a1");
  c->set_allocation_size(3);
  v1beta1::PreferredAllocationResponse resp;
  grpc::ServerContext ctx;
  ASSERT_TRUE(p.GetPreferredAllocation(&ctx, &req, &resp).ok());
  ASSERT_EQ(resp.container_responses_size(), 1);
  const auto& ids = resp.container_responses(0).deviceids();
  EXPECT_EQ(std::vector<std::string>(ids.begin(), ids.end()),
            (std::vector<std::string>{"a1", "a0", "b0"}));
}

}  // namespace
}  // namespace strata::netd
