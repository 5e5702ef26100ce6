#include "strata/vnc/resolve.h"

#include <gtest/gtest.h>

#include "temp_dir.h"

namespace strata::vnc {
namespace {

WorkloadConfig Config(WorkloadKey key) {
  WorkloadConfig c;
  c.workload = std::move(key);
  c.source = {c.workload.namespace_, "vnc", "uid", "7", 1};
  InterfaceConfig i;
  i.name = "net1";
  i.type = "sriov";
  c.interfaces.push_back(i);
  return c;
}

TEST(Resolve, LabelsOfThePod) {
  EXPECT_EQ(WorkloadOfPod("ns", "virt-launcher-a-xyz12", {{"vm.kubevirt.io/name", "a"}}),
            (WorkloadKey{"ns", "VirtualMachine", "a"}));
  EXPECT_EQ(WorkloadOfPod("ns", "virt-launcher-a-xyz12", {{"kubevirt.io/domain", "a"}}),
            (WorkloadKey{"ns", "VirtualMachine", "a"}));
  EXPECT_EQ(WorkloadOfPod("ns", "web-0", {{"strata.io/workload", "web"}}),
            (WorkloadKey{"ns", "Pod", "web"}));
  EXPECT_EQ(WorkloadOfPod("ns", "web-0", {}), (WorkloadKey{"ns", "Pod", "web-0"}));
}

TEST(Resolve, LauncherPodNames) {
  EXPECT_EQ(VmFromLauncherPodName("virt-launcher-db-vm-x7k2p"), "db-vm");
  EXPECT_EQ(VmFromLauncherPodName("virt-launcher-a-12345"), "a");
  EXPECT_FALSE(VmFromLauncherPodName("virt-launcher-db-vm"));
  EXPECT_FALSE(VmFromLauncherPodName("virt-launcher-db-vm-X7K2P"));
  EXPECT_FALSE(VmFromLauncherPodName("web-0"));
}

class ResolveForPodTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(store_.Init().ok()); }
  ResolveRequest Request(std::string pod) {
    ResolveRequest r;
    r.pod_namespace = "ns";
    r.pod_name = std::move(pod);
    r.pod_uid = "pod-uid";
    return r;
  }
  strata::testing::TempDir dir_{"strata-vnc"};
  NodeStore store_{dir_.path()};
};

TEST_F(ResolveForPodTest, AgentEntryFirst) {
  ASSERT_TRUE(store_.Put(Config({"ns", "Pod", "web"})).ok());
  ASSERT_TRUE(store_.PutPod({"ns", "web-0", "pod-uid", {"ns", "Pod", "web"}}).ok());
  auto r = ResolveForPod(store_, Request("web-0"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->how, Resolution::kPodIndex);
  EXPECT_EQ(r->config->workload.name, "web");
}

TEST_F(ResolveForPodTest, AgentEntryOfAnotherPodWithTheSameNameIsIgnored) {
  ASSERT_TRUE(store_.Put(Config({"ns", "Pod", "web"})).ok());
  ASSERT_TRUE(store_.PutPod({"ns", "web-0", "old-uid", {"ns", "Pod", "web"}}).ok());
  auto r = ResolveForPod(store_, Request("web-0"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->how, Resolution::kNone);
}

TEST_F(ResolveForPodTest, LauncherNameWithoutTheAgent) {
  ASSERT_TRUE(store_.Put(Config({"ns", "VirtualMachine", "db-vm"})).ok());
  auto r = ResolveForPod(store_, Request("virt-launcher-db-vm-x7k2p"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->how, Resolution::kLauncherName);
  EXPECT_EQ(r->config->workload.kind, "VirtualMachine");
}

TEST_F(ResolveForPodTest, PodNameAndNone) {
  ASSERT_TRUE(store_.Put(Config({"ns", "Pod", "solo"})).ok());
  EXPECT_EQ(ResolveForPod(store_, Request("solo"))->how, Resolution::kPodName);
  auto none = ResolveForPod(store_, Request("other"));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->how, Resolution::kNone);
  EXPECT_FALSE(none->config);
}

TEST_F(ResolveForPodTest, ExplicitKeyMustExist) {
  auto r = Request("x");
  r.explicit_key = WorkloadKey{"ns", "VirtualMachine", "missing"};
  EXPECT_EQ(ResolveForPod(store_, r).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_.Put(Config(*r.explicit_key)).ok());
  EXPECT_EQ(ResolveForPod(store_, r)->how, Resolution::kExplicit);
}

TEST_F(ResolveForPodTest, CorruptRecordIsNotNoConfiguration) {
  ASSERT_TRUE(store_.Put(Config({"ns", "Pod", "solo"})).ok());
  FILE* f = fopen(store_.ConfigPath({"ns", "Pod", "solo"}).c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs("not json", f);
  fclose(f);
  EXPECT_EQ(ResolveForPod(store_, Request("solo")).status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace strata::vnc
