// strata-netd's SR-IOV device plugin driven by a test kubelet (fake_kubelet.h: the kubelet's
// Registration and PodResources servers from the v1beta1 / v1 protos, on real unix sockets), and
// the VF it allocates reaching the real strata-sriov in a real network namespace.
//
// The host has no SR-IOV hardware: the PF and its VFs are a laid-out sysfs tree (as in
// tests/cni/sriov_netns_test.sh) whose interfaces are real veths, so the PF's link state (health)
// and the VF's move into the pod are real; the PF-level VF settings are simulated by strata-sriov's
// test-only switch (STRATA_CNI_SIMULATE_PF=1).
//
// Covers: Registration (version, endpoint, resource name, options); ListAndWatch's first list;
// health pushed when the PF goes down and up and when a VF vanishes from sysfs; Allocate (env
// PCIDEVICE_..., /dev/vfio nodes for a vfio-pci VF); an unknown device ID -> INVALID_ARGUMENT
// naming it; a kubelet restart -> served again and re-registered; strata-sriov ADD with
// resourceName (no deviceID) gets the VF Allocate gave the pod, via PodResources List; and the
// strata-netd binary with --sriov-pool serving the same (StrataNetdBinaryServesThePool, which also
// needs the test apiserver: ctest runs it apart, as netd_sriov_binary).
// Usage: netd_sriov_device_plugin_test CNI_BIN_DIR [STRATA_NETD KUBECONFIG]   (root)
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "child_process.h"
#include "fake_kubelet.h"
#include "strata/netd/link_probe.h"
#include "strata/netd/sriov_device_plugin_manager.h"

namespace strata::netd {
namespace {

using nlohmann::json;
using std::chrono::seconds;

std::string g_cni_bin;
std::string g_netd, g_kubeconfig;  // for StrataNetdBinary: strata-netd and the test apiserver

int Sh(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

// Runs `cmd`, returns its stdout.
std::string Capture(const std::string& cmd) {
  std::string out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  ::pclose(f);
  return out;
}

class SriovDevicePluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/netd-sriov.XXXXXX";
    tmp_ = ::mkdtemp(tmpl);
    const std::string id = std::to_string(::getpid() % 100000);
    pf_ = "dpf" + id;
    pf_peer_ = "dpp" + id;
    vfdev_ = "dvf" + id;
    vf_peer_ = "dvs" + id;
    ns_ = "netd-sriov-" + id;
    sys_ = tmp_ + "/sys";
    LayOutTree();
    // The PF: a veth whose peer is up, so it has carrier; the VF: a veth the CNI moves.
    ASSERT_EQ(Sh("ip link add " + pf_ + " type veth peer name " + pf_peer_), 0);
    ASSERT_EQ(Sh("ip link set " + pf_peer_ + " up && ip link set " + pf_ + " up"), 0);
    ASSERT_EQ(
        Sh("ip link add " + vfdev_ + " address 02:5f:00:00:02:00 type veth peer name " + vf_peer_),
        0);
    ASSERT_EQ(Sh("ip netns add " + ns_), 0);
    ASSERT_EQ(::mkdir((tmp_ + "/dp").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((tmp_ + "/podres").c_str(), 0755), 0);
    kubelet_ = std::make_unique<testing::FakeKubelet>(tmp_ + "/dp", tmp_ + "/podres/kubelet.sock");
    ASSERT_TRUE(kubelet_->Start().ok());
    sysfs_ = cni::NewSysfs(sys_);
    links_ = NewIoctlLinkProbe();
    SriovDevicePluginOptions opts;
    opts.device_plugin_dir = tmp_ + "/dp";
    opts.health_interval = std::chrono::milliseconds(200);
    opts.pools = {{"fast", {pf_}}};
    manager_ = std::make_unique<SriovDevicePluginManager>(opts, sysfs_.get(), links_.get());
  }
  void TearDown() override {
    if (manager_) manager_->Stop();
    if (kubelet_) kubelet_->Stop();
    Sh("ip netns del " + ns_ + " 2>/dev/null");
    Sh("ip link del " + pf_ + " 2>/dev/null");
    Sh("ip link del " + vfdev_ + " 2>/dev/null");
    Sh("rm -rf '" + tmp_ + "'");
  }

  // PF 0000:5f:00.0 (interface pf_) with VF0 0000:5f:02.0 bound to iavf (netdev vfdev_) and VF1
  // 0000:5f:02.1 bound to vfio-pci in IOMMU group 42.
  void LayOutTree() {
    const std::string d = sys_ + "/bus/pci";
    ASSERT_EQ(Sh("mkdir -p " + d + "/drivers/iavf " + d + "/drivers/vfio-pci " + d +
                 "/devices/0000:5f:00.0/net/" + pf_ + " " + d + "/devices/0000:5f:02.0/net/" +
                 vfdev_ + " " + d + "/devices/0000:5f:02.1 " + sys_ + "/kernel/iommu_groups/42"),
              0);
    ASSERT_EQ(Sh("cd " + d +
                 "/devices && ln -s ../0000:5f:00.0 0000:5f:02.0/physfn && "
                 "ln -s ../0000:5f:00.0 0000:5f:02.1/physfn && "
                 "ln -s ../0000:5f:02.0 0000:5f:00.0/virtfn0 && "
                 "ln -s ../0000:5f:02.1 0000:5f:00.0/virtfn1 && "
                 "ln -s ../../../bus/pci/drivers/iavf 0000:5f:02.0/driver && "
                 "ln -s ../../../bus/pci/drivers/vfio-pci 0000:5f:02.1/driver && "
                 "ln -s ../../../kernel/iommu_groups/42 0000:5f:02.1/iommu_group"),
              0);
  }

  std::string Health(const std::string& id) {
    auto list = kubelet_->Devices(kResource);
    if (!list) return "";
    for (const auto& d : list->devices()) {
      if (d.id() == id) return d.health();
    }
    return "absent";
  }
  bool WaitHealth(const std::string& id, const std::string& want) {
    return kubelet_->WaitFor([&] { return Health(id) == want; }, seconds(10));
  }

  // strata-sriov run as the runtime runs it; returns {exit code, stdout as JSON}.
  std::pair<int, json> Cni(const std::string& command, const json& conf, const std::string& pod) {
    const std::string conf_file = tmp_ + "/conf.json";
    std::ofstream(conf_file) << conf.dump();
    const std::string out_file = tmp_ + "/cni.out";
    std::ostringstream cmd;
    cmd << "env -i PATH=\"$PATH\" CNI_COMMAND=" << command << " CNI_CONTAINERID=ctr-" << pod
        << " CNI_NETNS=/run/netns/" << ns_ << " CNI_IFNAME=net1 CNI_PATH=" << g_cni_bin
        << " CNI_ARGS='IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=" << pod << "'"
        << " STRATA_CNI_SYSFS_ROOT=" << sys_ << " STRATA_CNI_STATE_DIR=" << tmp_ << "/state"
        << " STRATA_CNI_SIMULATE_PF=1 " << g_cni_bin << "/strata-sriov <" << conf_file << " >"
        << out_file;
    int rc = Sh(cmd.str());
    std::ifstream in(out_file);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    json j = text.empty() ? json() : json::parse(text, nullptr, false);
    return {rc, j};
  }

  static constexpr char kResource[] = "strata.io/sriov-fast";
  static constexpr char kVf0[] = "0000:5f:02.0";
  static constexpr char kVf1[] = "0000:5f:02.1";
  std::string tmp_, sys_, pf_, pf_peer_, vfdev_, vf_peer_, ns_;
  std::unique_ptr<testing::FakeKubelet> kubelet_;
  std::unique_ptr<cni::Sysfs> sysfs_;
  std::unique_ptr<LinkProbe> links_;
  std::unique_ptr<SriovDevicePluginManager> manager_;
};

TEST_F(SriovDevicePluginTest, RegistersListsWatchesAllocatesAndReRegisters) {
  ASSERT_TRUE(manager_->Start().ok());

  // Registration, as the kubelet sees it.
  ASSERT_TRUE(kubelet_->WaitFor([&] { return !kubelet_->registrations().empty(); }, seconds(10)));
  auto reg = kubelet_->registrations().at(0);
  EXPECT_EQ(reg.version, "v1beta1");
  EXPECT_EQ(reg.endpoint, "strata-sriov-fast.sock");
  EXPECT_EQ(reg.resource_name, kResource);
  EXPECT_TRUE(reg.options.get_preferred_allocation_available());
  EXPECT_FALSE(reg.options.pre_start_required());

  // The first list: both VFs, healthy.
  ASSERT_TRUE(WaitHealth(kVf0, "Healthy"));
  ASSERT_TRUE(WaitHealth(kVf1, "Healthy"));
  EXPECT_EQ(kubelet_->Devices(kResource)->devices_size(), 2);

  // The PF's link goes down: both VFs unhealthy, pushed without the kubelet asking; and back.
  int lists = kubelet_->lists_received(kResource);
  ASSERT_EQ(Sh("ip link set " + pf_ + " down"), 0);
  EXPECT_TRUE(WaitHealth(kVf0, "Unhealthy"));
  EXPECT_TRUE(WaitHealth(kVf1, "Unhealthy"));
  EXPECT_GT(kubelet_->lists_received(kResource), lists);
  ASSERT_EQ(Sh("ip link set " + pf_ + " up"), 0);
  EXPECT_TRUE(WaitHealth(kVf0, "Healthy"));
  EXPECT_TRUE(WaitHealth(kVf1, "Healthy"));

  // A VF vanishes from sysfs (its PF's virtfn link): still listed, unhealthy; back: healthy.
  const std::string virtfn1 = sys_ + "/bus/pci/devices/0000:5f:00.0/virtfn1";
  ASSERT_EQ(::unlink(virtfn1.c_str()), 0);
  EXPECT_TRUE(WaitHealth(kVf1, "Unhealthy"));
  EXPECT_EQ(Health(kVf0), "Healthy");
  ASSERT_EQ(::symlink("../0000:5f:02.1", virtfn1.c_str()), 0);
  EXPECT_TRUE(WaitHealth(kVf1, "Healthy"));

  // Allocate: the env the CNI and KubeVirt read; /dev/vfio nodes for the vfio-pci VF.
  auto a = kubelet_->Allocate(kResource, "ns1", "pod1", "ctr", {kVf0});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->envs().at("PCIDEVICE_STRATA_IO_SRIOV-FAST"), kVf0);
  EXPECT_EQ(a->devices_size(), 0);
  auto v = kubelet_->Allocate(kResource, "ns1", "vm1", "compute", {kVf1});
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->envs().at("PCIDEVICE_STRATA_IO_SRIOV-FAST"), kVf1);
  ASSERT_EQ(v->devices_size(), 2);
  EXPECT_EQ(v->devices(0).host_path(), "/dev/vfio/vfio");
  EXPECT_EQ(v->devices(1).host_path(), "/dev/vfio/42");
  EXPECT_EQ(v->devices(1).permissions(), "mrw");

  // Bad request: an ID that is not one of the pool's VFs.
  v1beta1::AllocateRequest bad;
  bad.add_container_requests()->add_devices_ids("0000:99:00.1");
  v1beta1::AllocateResponse bad_resp;
  grpc::Status s = kubelet_->AllocateRaw(kResource, bad, &bad_resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "container_requests[0].devices_ids[0]: '0000:99:00.1' is not a VF of " +
                std::string(kResource));

  // The kubelet restarts: kubelet.sock recreated, plugin sockets removed. The plugin serves again
  // and registers again; the new kubelet gets the list.
  const int before = static_cast<int>(kubelet_->registrations().size());
  ASSERT_TRUE(kubelet_->Restart().ok());
  ASSERT_TRUE(kubelet_->WaitFor(
      [&] { return static_cast<int>(kubelet_->registrations().size()) > before; }, seconds(15)));
  EXPECT_EQ(kubelet_->registrations().back().endpoint, "strata-sriov-fast.sock");
  struct stat st {};
  EXPECT_EQ(::stat((tmp_ + "/dp/strata-sriov-fast.sock").c_str(), &st), 0);
  ASSERT_TRUE(kubelet_->WaitFor(
      [&] { return kubelet_->lists_received(kResource) > 0 && Health(kVf0) == "Healthy"; },
      seconds(10)));
  auto again = kubelet_->Allocate(kResource, "ns1", "pod1", "ctr", {kVf0});
  EXPECT_TRUE(again.ok()) << again.status().ToString();
}

TEST_F(SriovDevicePluginTest, AllocatedVfReachesTheCniThroughPodResources) {
  ASSERT_TRUE(manager_->Start().ok());
  ASSERT_TRUE(WaitHealth(kVf0, "Healthy"));
  // The kubelet admits pod1 with one strata.io/sriov-fast: Allocate, recorded for PodResources.
  auto a = kubelet_->Allocate(kResource, "ns1", "pod1", "ctr", {kVf0});
  ASSERT_TRUE(a.ok()) << a.status().ToString();

  // strata-sriov with resourceName and no deviceID (no Multus in front).
  json conf = {{"cniVersion", "1.1.0"},
               {"name", "sriov-fast"},
               {"type", "strata-sriov"},
               {"resourceName", kResource},
               {"podResourcesSocket", tmp_ + "/podres/kubelet.sock"},
               {"mac", "0a:58:00:00:5f:01"}};
  auto [rc, out] = Cni("ADD", conf, "pod1");
  ASSERT_EQ(rc, 0) << out.dump();
  EXPECT_EQ(out["interfaces"][0]["pciID"], kVf0);
  EXPECT_EQ(out["interfaces"][0]["name"], "net1");
  std::string in_pod = Capture("ip -n " + ns_ + " -j link show net1");
  json link = json::parse(in_pod, nullptr, false);
  ASSERT_TRUE(link.is_array() && !link.empty()) << in_pod;
  EXPECT_EQ(link[0]["address"], "0a:58:00:00:5f:01");
  EXPECT_NE(Sh("ip link show " + vfdev_ + " >/dev/null 2>&1"), 0);  // gone from the host

  auto [check_rc, check_out] = Cni("CHECK", conf, "pod1");
  EXPECT_EQ(check_rc, 0) << check_out.dump();
  auto [del_rc, del_out] = Cni("DEL", conf, "pod1");
  EXPECT_EQ(del_rc, 0) << del_out.dump();
  EXPECT_EQ(Sh("ip link show " + vfdev_ + " >/dev/null 2>&1"), 0);  // home again

  // A pod the kubelet gave no such VF: a config error naming the pod and the resource.
  auto [none_rc, none_out] = Cni("ADD", conf, "pod2");
  EXPECT_NE(none_rc, 0);
  EXPECT_EQ(none_out["code"], 7) << none_out.dump();
  EXPECT_EQ(
      none_out["msg"].get<std::string>().rfind(
          "resourceName: pod ns1/pod2 is not listed by the kubelet with strata.io/sriov-fast", 0),
      0u)
      << none_out.dump();
  // The kubelet's socket does not answer: try again later (11).
  kubelet_->Stop();
  auto [down_rc, down_out] = Cni("ADD", conf, "pod1");
  EXPECT_NE(down_rc, 0);
  EXPECT_EQ(down_out["code"], 11) << down_out.dump();
}

// The plugin as shipped: the strata-netd binary with --sriov-pool (the agent also needs an
// apiserver for its other work: the test control plane's).
TEST_F(SriovDevicePluginTest, StrataNetdBinaryServesThePool) {
  ASSERT_FALSE(g_netd.empty() || g_kubeconfig.empty()) << "usage: ... CNI_BIN NETD KUBECONFIG";
  ASSERT_EQ(::mkdir((tmp_ + "/state").c_str(), 0755), 0);
  strata::testing::ChildProcess netd({g_netd,
                                      "--node-name",
                                      "sriov-test-" + std::to_string(::getpid()),
                                      "--kubeconfig",
                                      g_kubeconfig,
                                      "--cni-plugins",
                                      "",
                                      "--cni-bin-dir",
                                      tmp_ + "/cbin",
                                      "--cni-conf-dir",
                                      tmp_ + "/cconf",
                                      "--state-dir",
                                      tmp_ + "/state",
                                      "--metrics-addr",
                                      "127.0.0.1:0",
                                      "--health-addr",
                                      "0",
                                      "--sriov-pool",
                                      "fast=" + pf_,
                                      "--device-plugin-dir",
                                      tmp_ + "/dp",
                                      "--sysfs-root",
                                      sys_,
                                      "--sriov-health-interval",
                                      "0.2"},
                                     tmp_ + "/netd.log");
  netd.set_stop_signal(SIGTERM);
  ASSERT_TRUE(kubelet_->WaitFor([&] { return !kubelet_->registrations().empty(); }, seconds(20)))
      << Capture("cat " + tmp_ + "/netd.log");
  EXPECT_EQ(kubelet_->registrations().at(0).resource_name, kResource);
  ASSERT_TRUE(WaitHealth(kVf0, "Healthy")) << Capture("cat " + tmp_ + "/netd.log");
  ASSERT_EQ(Sh("ip link set " + pf_ + " down"), 0);
  EXPECT_TRUE(WaitHealth(kVf0, "Unhealthy"));
  ASSERT_EQ(Sh("ip link set " + pf_ + " up"), 0);
  EXPECT_TRUE(WaitHealth(kVf0, "Healthy"));
  auto a = kubelet_->Allocate(kResource, "ns1", "pod1", "ctr", {kVf0});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->envs().at("PCIDEVICE_STRATA_IO_SRIOV-FAST"), kVf0);
  ASSERT_TRUE(netd.Running());
  netd.Stop(SIGTERM);
  struct stat st {};
  EXPECT_NE(::stat((tmp_ + "/dp/strata-sriov-fast.sock").c_str(), &st), 0)
      << "SIGTERM leaves the plugin socket behind";
}

}  // namespace
}  // namespace strata::netd

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc != 2 && argc != 4) {
    std::fprintf(stderr, "usage: %s CNI_BIN_DIR [STRATA_NETD KUBECONFIG]\n", argv[0]);
    return 2;
  }
  if (::geteuid() != 0) {
    std::printf("SKIP: needs root (network namespaces, veths)\n");
    return 77;
  }
  strata::netd::g_cni_bin = argv[1];
  if (argc == 4) {
    strata::netd::g_netd = argv[2];
    strata::netd::g_kubeconfig = argv[3];
  }
  return RUN_ALL_TESTS();
}
