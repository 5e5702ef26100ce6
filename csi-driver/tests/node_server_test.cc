// NodeServer's staging and publishing logic against a fake host (FakeNodeHost), and the
// pure helpers (portal list, dm name, multipath table). The real host is exercised by
// tests/csi (FAILED_PRECONDITION on a kernel without nbd / dm-multipath).
#include "node_server.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <set>

namespace strata::csi {
namespace {

namespace v1 = ::csi::v1;
namespace fs = std::filesystem;

class FakeNodeHost final : public NodeHost {
 public:
  struct State {
    std::set<std::string> modules{"nbd", "dm_multipath", "dm_round_robin"};
    std::map<int, std::string> nbds;            // index -> portal
    std::map<std::string, std::string> dms;     // name -> table
    std::map<std::string, std::string> mounts;  // target -> source
    std::set<std::string> bad_portals;
    std::map<std::string, uint64_t> sizes;  // portal -> size (default 1 MiB)
    bool fail_dm_create = false;
    int next_index = 0;
    int connects = 0;
  };
  explicit FakeNodeHost(State* s) : s_(s) {}

  bool HasModule(const std::string& m) override { return s_->modules.count(m) > 0; }
  Result<NbdAttachment> ConnectNbd(const std::string& portal, const std::string&) override {
    ++s_->connects;
    if (s_->bad_portals.count(portal)) return UnavailableError("connection refused");
    NbdAttachment a;
    a.index = s_->next_index++;
    a.dev = "43:" + std::to_string(a.index * 32);
    auto it = s_->sizes.find(portal);
    a.size = it == s_->sizes.end() ? (1u << 20) : it->second;
    s_->nbds[a.index] = portal;
    return a;
  }
  bool NbdConnected(int i) override { return s_->nbds.count(i) > 0; }
  Status DisconnectNbd(int i) override {
    s_->nbds.erase(i);
    return Status::Ok();
  }
  bool DmExists(const std::string& n) override { return s_->dms.count(n) > 0; }
  Status DmCreate(const std::string& n, const std::string& t) override {
    if (s_->fail_dm_create) return InternalError("dmsetup failed");
    s_->dms[n] = t;
    return Status::Ok();
  }
  Status DmRemove(const std::string& n) override {
    s_->dms.erase(n);
    return Status::Ok();
  }
  bool IsMountPoint(const std::string& p) override { return s_->mounts.count(p) > 0; }
  Status BindMount(const std::string& src, const std::string& target, bool) override {
    if (!fs::exists(target)) return InternalError("no target file");
    s_->mounts[target] = src;
    return Status::Ok();
  }
  Status Unmount(const std::string& target) override {
    s_->mounts.erase(target);
    return Status::Ok();
  }

 private:
  State* s_;
};

v1::VolumeCapability Block() {
  v1::VolumeCapability c;
  c.mutable_block();
  c.mutable_access_mode()->set_mode(v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  return c;
}

class NodeServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/strata-node-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fs::create_directories(dir_ / "staging");
    node_ = std::make_unique<NodeServer>("n1@10.0.0.1", "", std::make_unique<FakeNodeHost>(&host_));
  }
  void TearDown() override { fs::remove_all(dir_); }

  v1::NodeStageVolumeRequest StageReq() {
    v1::NodeStageVolumeRequest r;
    r.set_volume_id("dev-a/csi-1");
    r.set_staging_target_path((dir_ / "staging").string());
    *r.mutable_volume_capability() = Block();
    auto& ctx = *r.mutable_publish_context();
    ctx["wwn"] = "naa.6001405ABCDEF";
    ctx["exportName"] = "csi-1";
    ctx["portals"] = "10.0.0.2:10809,10.0.0.3:10809";
    return r;
  }
  v1::NodeUnstageVolumeRequest UnstageReq() {
    v1::NodeUnstageVolumeRequest r;
    r.set_volume_id("dev-a/csi-1");
    r.set_staging_target_path((dir_ / "staging").string());
    return r;
  }
  v1::NodePublishVolumeRequest PublishReq() {
    v1::NodePublishVolumeRequest r;
    r.set_volume_id("dev-a/csi-1");
    r.set_staging_target_path((dir_ / "staging").string());
    r.set_target_path((dir_ / "pods" / "vol").string());
    *r.mutable_volume_capability() = Block();
    return r;
  }
  v1::NodeUnpublishVolumeRequest UnpublishReq() {
    v1::NodeUnpublishVolumeRequest r;
    r.set_volume_id("dev-a/csi-1");
    r.set_target_path((dir_ / "pods" / "vol").string());
    return r;
  }

  fs::path dir_;
  FakeNodeHost::State host_;
  std::unique_ptr<NodeServer> node_;
};

TEST(NodeHostHelpersTest, SplitPortals) {
  EXPECT_EQ(SplitPortals("a:1, b:2,,c:3"), (std::vector<std::string>{"a:1", "b:2", "c:3"}));
  EXPECT_TRUE(SplitPortals("").empty());
}

TEST(NodeHostHelpersTest, DmNameIsStableAndSafe) {
  auto n = DmNameForWwn("naa.6001405ABCDEF");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, "strata-naa6001405abcdef");
  EXPECT_EQ(DmNameForWwn("...").status().code(), StatusCode::kInvalidArgument);
}

TEST(NodeHostHelpersTest, MultipathTable) {
  EXPECT_EQ(MultipathTable(1 << 20, {"43:0", "43:32"}),
            "0 2048 multipath 1 queue_if_no_path 0 1 1 round-robin 0 2 1 43:0 1 43:32 1");
}

TEST_F(NodeServerTest, CapabilitiesIncludeStageUnstage) {
  v1::NodeGetCapabilitiesResponse resp;
  v1::NodeGetCapabilitiesRequest req;
  ASSERT_TRUE(node_->NodeGetCapabilities(nullptr, &req, &resp).ok());
  ASSERT_EQ(resp.capabilities_size(), 1);
  EXPECT_EQ(resp.capabilities(0).rpc().type(),
            v1::NodeServiceCapability_RPC_Type_STAGE_UNSTAGE_VOLUME);
}

TEST_F(NodeServerTest, StagePublishUnpublishUnstageIdempotent) {
  ASSERT_TRUE(node_->Stage(StageReq()).ok());
  EXPECT_EQ(host_.nbds.size(), 2u);
  ASSERT_EQ(host_.dms.size(), 1u);
  EXPECT_EQ(host_.dms.begin()->first, "strata-naa6001405abcdef");
  EXPECT_EQ(host_.dms.begin()->second,
            "0 2048 multipath 1 queue_if_no_path 0 1 1 round-robin 0 2 1 43:0 1 43:32 1");
  // Repeated stage: nothing new connected.
  ASSERT_TRUE(node_->Stage(StageReq()).ok());
  EXPECT_EQ(host_.connects, 2);

  ASSERT_TRUE(node_->Publish(PublishReq()).ok());
  const std::string target = PublishReq().target_path();
  EXPECT_TRUE(fs::exists(target));
  EXPECT_EQ(host_.mounts.at(target), "/dev/mapper/strata-naa6001405abcdef");
  ASSERT_TRUE(node_->Publish(PublishReq()).ok());
  EXPECT_EQ(host_.mounts.size(), 1u);

  ASSERT_TRUE(node_->Unpublish(UnpublishReq()).ok());
  EXPECT_TRUE(host_.mounts.empty());
  EXPECT_FALSE(fs::exists(target));
  ASSERT_TRUE(node_->Unpublish(UnpublishReq()).ok());

  ASSERT_TRUE(node_->Unstage(UnstageReq()).ok());
  EXPECT_TRUE(host_.dms.empty());
  EXPECT_TRUE(host_.nbds.empty());
  ASSERT_TRUE(node_->Unstage(UnstageReq()).ok());
}

TEST_F(NodeServerTest, MissingModuleIsFailedPreconditionNamingIt) {
  host_.modules.erase("dm_multipath");
  Status s = node_->Stage(StageReq());
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("dm_multipath"), std::string::npos) << s.ToString();
  EXPECT_EQ(host_.connects, 0);
}

TEST_F(NodeServerTest, FailedPortalUndoesConnectedPaths) {
  host_.bad_portals.insert("10.0.0.3:10809");
  Status s = node_->Stage(StageReq());
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("10.0.0.3:10809"), std::string::npos);
  EXPECT_TRUE(host_.nbds.empty());
  EXPECT_TRUE(host_.dms.empty());
  EXPECT_FALSE(fs::exists(dir_ / "staging" / NodeServer::kStateFile));
}

TEST_F(NodeServerTest, DmCreateFailureUndoes) {
  host_.fail_dm_create = true;
  EXPECT_FALSE(node_->Stage(StageReq()).ok());
  EXPECT_TRUE(host_.nbds.empty());
  EXPECT_FALSE(fs::exists(dir_ / "staging" / NodeServer::kStateFile));
}

TEST_F(NodeServerTest, SizeMismatchBetweenPortalsIsAnError) {
  host_.sizes["10.0.0.3:10809"] = 2u << 20;
  EXPECT_EQ(node_->Stage(StageReq()).code(), StatusCode::kInternal);
  EXPECT_TRUE(host_.nbds.empty());
}

TEST_F(NodeServerTest, MountVolumesAreRejectedClearly) {
  auto r = StageReq();
  r.mutable_volume_capability()->mutable_mount()->set_fs_type("ext4");
  Status s = node_->Stage(r);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("block"), std::string::npos);
}

TEST_F(NodeServerTest, MissingArgumentsAreInvalid) {
  auto r = StageReq();
  r.clear_staging_target_path();
  EXPECT_EQ(node_->Stage(r).code(), StatusCode::kInvalidArgument);
  r = StageReq();
  r.mutable_publish_context()->erase("portals");
  EXPECT_EQ(node_->Stage(r).code(), StatusCode::kInvalidArgument);
  auto p = PublishReq();
  p.clear_target_path();
  EXPECT_EQ(node_->Publish(p).code(), StatusCode::kInvalidArgument);
}

TEST_F(NodeServerTest, PublishBeforeStageIsFailedPrecondition) {
  EXPECT_EQ(node_->Publish(PublishReq()).code(), StatusCode::kFailedPrecondition);
}

TEST_F(NodeServerTest, UnstageAfterDmVanishedStillDisconnects) {
  ASSERT_TRUE(node_->Stage(StageReq()).ok());
  host_.dms.clear();
  ASSERT_TRUE(node_->Unstage(UnstageReq()).ok());
  EXPECT_TRUE(host_.nbds.empty());
}

}  // namespace
}  // namespace strata::csi
