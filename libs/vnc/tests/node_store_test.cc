#include "strata/vnc/node_store.h"

#include <gtest/gtest.h>

#include <fstream>

#include "temp_dir.h"

namespace strata::vnc {
namespace {

WorkloadConfig Config(std::string rv, std::string mac = "02:00:00:00:00:01") {
  WorkloadConfig c;
  c.workload = {"db", "VirtualMachine", "db-vm"};
  c.source = {"db", "db-vm-net", "uid-1", std::move(rv), 1};
  InterfaceConfig i;
  i.name = "net1";
  i.type = "sriov";
  i.mac = std::move(mac);
  i.addresses = {"10.0.0.2/24"};
  c.interfaces.push_back(i);
  return c;
}

class NodeStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(store_.Init().ok()); }
  strata::testing::TempDir dir_{"strata-vnc"};
  NodeStore store_{dir_.path()};
};

TEST_F(NodeStoreTest, PutGetRemove) {
  EXPECT_EQ(store_.Get(Config("5").workload).status().code(), StatusCode::kNotFound);
  auto put = store_.Put(Config("5"));
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(*put, PutOutcome::kWritten);
  auto got = store_.Get(Config("5").workload);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, Config("5"));
  EXPECT_EQ(*store_.Put(Config("5")), PutOutcome::kUnchanged);
  EXPECT_TRUE(store_.Remove(Config("5").workload).ok());
  EXPECT_TRUE(store_.Remove(Config("5").workload).ok());  // idempotent
  EXPECT_TRUE(store_.List().empty());
}

TEST_F(NodeStoreTest, StaleWriteNeverReplacesNewer) {
  ASSERT_EQ(*store_.Put(Config("10", "02:00:00:00:00:10")), PutOutcome::kWritten);
  EXPECT_EQ(*store_.Put(Config("9", "02:00:00:00:00:09")), PutOutcome::kStale);
  EXPECT_EQ(store_.Get(Config("10").workload)->interfaces[0].mac, "02:00:00:00:00:10");
  EXPECT_EQ(*store_.Put(Config("11", "02:00:00:00:00:11")), PutOutcome::kWritten);
  EXPECT_EQ(store_.Get(Config("10").workload)->interfaces[0].mac, "02:00:00:00:00:11");
}

TEST_F(NodeStoreTest, RemoveOnlyTheNamedObjectsRecord) {
  ASSERT_TRUE(store_.Put(Config("10")).ok());
  EXPECT_TRUE(store_.Remove(Config("10").workload, "another-uid").ok());
  EXPECT_TRUE(store_.Get(Config("10").workload).ok());
  EXPECT_TRUE(store_.Remove(Config("10").workload, "uid-1").ok());
  EXPECT_FALSE(store_.Get(Config("10").workload).ok());
}

TEST_F(NodeStoreTest, CorruptRecordIsDataLossAndListedAsCorrupt) {
  ASSERT_TRUE(store_.Put(Config("10")).ok());
  std::ofstream(store_.ConfigPath(Config("10").workload)) << "{\"workload\": 1";
  EXPECT_EQ(store_.Get(Config("10").workload).status().code(), StatusCode::kDataLoss);
  std::vector<std::string> corrupt;
  EXPECT_TRUE(store_.List(&corrupt).empty());
  EXPECT_EQ(corrupt.size(), 1u);
  // A fresh write repairs it.
  EXPECT_EQ(*store_.Put(Config("11")), PutOutcome::kWritten);
  EXPECT_TRUE(store_.Get(Config("10").workload).ok());
}

TEST_F(NodeStoreTest, PodsAndAppliedRecords) {
  PodEntry e{"db", "virt-launcher-db-vm-abcde", "pod-uid", {"db", "VirtualMachine", "db-vm"}};
  ASSERT_TRUE(store_.PutPod(e).ok());
  EXPECT_EQ(*store_.GetPod("db", "virt-launcher-db-vm-abcde"), e);
  EXPECT_EQ(store_.ListPods().size(), 1u);
  EXPECT_TRUE(store_.RemovePod("db", "virt-launcher-db-vm-abcde").ok());
  EXPECT_TRUE(store_.ListPods().empty());

  AppliedRecord r;
  r.container_id = "c0ffee";
  r.ifname = "net1";
  r.pod_namespace = "db";
  r.pod_name = "p";
  r.workload = e.workload;
  r.source = Config("3").source;
  r.interface = "net1";
  r.mac = "02:00:00:00:00:01";
  r.applied_at = "2026-12-06T10:00:00Z";
  ASSERT_TRUE(store_.PutApplied(r).ok());
  EXPECT_EQ(*store_.GetApplied("c0ffee", "net1"), r);
  EXPECT_EQ(store_.ListApplied().size(), 1u);
  EXPECT_TRUE(store_.RemoveApplied("c0ffee", "net1").ok());
  EXPECT_TRUE(store_.RemoveApplied("c0ffee", "net1").ok());
  r.container_id = "../etc";
  EXPECT_EQ(store_.PutApplied(r).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace strata::vnc
