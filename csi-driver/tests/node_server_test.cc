// NodeServer's staging and publishing logic against a fake host (FakeNodeHost), and the
// pure helpers (portal list, dm name, multipath table). The real host is exercised by
// tests/csi (FAILED_PRECONDITION on a kernel without nbd / dm-multipath).
#include "node_server.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <sstream>

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
    std::set<std::string> refused_portals;  // the export is refused (no access)
    std::set<std::string> tls_portals;      // the device requires TLS the node lacks
    std::map<std::string, uint64_t> sizes;  // portal -> size (default 1 MiB)
    bool fail_dm_create = false;
    bool fail_mount_fs = false;
    int next_index = 0;
    int connects = 0;
    std::set<std::string> readonly_dms;
    std::set<int> dead_nbds;                       // probes fail
    std::set<std::string> failed_paths;            // "dm MAJ:MIN" failed in dm
    std::vector<std::string> messages;             // dm messages sent
    std::map<std::string, std::string> fs_on;      // device -> fs type
    std::map<std::string, std::string> fs_mounts;  // mount point -> "dev type options"
    std::map<std::string, std::string> dm_of;      // path -> dm name (DmNameOf)
    int grows = 0;
    std::function<void()> on_connect;  // runs inside ConnectNbd
  };
  explicit FakeNodeHost(State* s) : s_(s) {}

  bool HasModule(const std::string& m) override { return s_->modules.count(m) > 0; }
  Result<NbdAttachment> ConnectNbd(const std::string& portal, const std::string&) override {
    ++s_->connects;
    if (s_->on_connect) s_->on_connect();
    if (s_->bad_portals.count(portal)) return UnavailableError("connection refused");
    if (s_->refused_portals.count(portal)) return NotFoundError("export refused (error 1)");
    if (s_->tls_portals.count(portal)) {
      return FailedPreconditionError("the device requires TLS (NBD_REP_ERR_TLS_REQD)");
    }
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
  Status DmCreate(const std::string& n, const std::string& t, bool ro) override {
    if (s_->fail_dm_create) return InternalError("dmsetup failed");
    s_->dms[n] = t;
    if (ro) s_->readonly_dms.insert(n);
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
    s_->fs_mounts.erase(target);
    return Status::Ok();
  }
  Status ReconnectNbd(int i, const std::string& portal, const std::string&) override {
    if (s_->bad_portals.count(portal)) return UnavailableError("connection refused");
    s_->dead_nbds.erase(i);
    return Status::Ok();
  }
  Status ProbeNbd(int i) override {
    if (s_->dead_nbds.count(i)) return ErrnoError("read /dev/nbd", EIO);
    return Status::Ok();
  }
  Result<std::vector<DmPath>> DmPaths(const std::string& n) override {
    auto it = s_->dms.find(n);
    if (it == s_->dms.end()) return NotFoundError("no dm " + n);
    std::vector<DmPath> out;
    std::istringstream words(it->second);
    for (std::string w; words >> w;) {
      if (w.find(':') != std::string::npos)
        out.push_back({w, !s_->failed_paths.count(n + " " + w)});
    }
    return out;
  }
  Status DmMessage(const std::string& n, const std::string& m) override {
    s_->messages.push_back(n + " " + m);
    std::istringstream words(m);
    std::string verb, dev;
    words >> verb >> dev;
    if (verb == "fail_path") s_->failed_paths.insert(n + " " + dev);
    if (verb == "reinstate_path") s_->failed_paths.erase(n + " " + dev);
    return Status::Ok();
  }
  Status DmReload(const std::string& n, const std::string& t, bool) override {
    s_->dms[n] = t;
    for (auto it = s_->failed_paths.begin(); it != s_->failed_paths.end();) {
      it = it->rfind(n + " ", 0) == 0 ? s_->failed_paths.erase(it) : std::next(it);
    }
    return Status::Ok();
  }
  Result<std::string> FsTypeOf(const std::string& dev) override {
    auto it = s_->fs_on.find(dev);
    return it == s_->fs_on.end() ? std::string() : it->second;
  }
  Status MakeFs(const std::string& dev, const std::string& type) override {
    s_->fs_on[dev] = type;
    return Status::Ok();
  }
  Status MountFs(const std::string& dev, const std::string& target, const std::string& type,
                 const std::string& options) override {
    if (!fs::is_directory(target)) return InternalError("no mount point " + target);
    if (s_->fail_mount_fs) return InternalError("mount failed");
    s_->fs_mounts[target] = dev + " " + type + " " + options;
    s_->mounts[target] = dev;
    return Status::Ok();
  }
  Status GrowFs(const std::string&, const std::string&, const std::string&) override {
    ++s_->grows;
    return Status::Ok();
  }
  Result<FsUsage> StatFs(const std::string&) override {
    FsUsage u;
    u.total_bytes = 1000;
    u.used_bytes = 100;
    u.available_bytes = 900;
    u.total_inodes = 64;
    u.used_inodes = 11;
    u.free_inodes = 53;
    return u;
  }
  Result<uint64_t> BlockDeviceSize(const std::string&) override {
    uint64_t size = 0;
    for (const auto& [n, t] : s_->dms) {
      std::istringstream words(t);
      uint64_t start = 0, sectors = 0;
      words >> start >> sectors;
      size = sectors * 512;
    }
    return size;
  }
  Result<std::string> DmNameOf(const std::string& path) override {
    auto it = s_->dm_of.find(path);
    if (it == s_->dm_of.end()) return NotFoundError(path + " does not exist");
    return it->second;
  }

 private:
  State* s_;
};

// A device that only answers GetLun (what the node's move detection asks).
class LunDevice final : public DeviceClient {
 public:
  explicit LunDevice(storage_v1::Lun lun) : lun_(std::move(lun)) {}
  const std::string& name() const override { return name_; }
  Result<storage_v1::DeviceStatus> GetDeviceStatus() override { return UnimplementedError(""); }
  Result<storage_v1::Lun> CreateLun(const storage_v1::CreateLunRequest&) override {
    return UnimplementedError("");
  }
  Status DeleteLun(const std::string&) override { return UnimplementedError(""); }
  Result<storage_v1::Lun> GetLun(const std::string& name) override {
    if (name != lun_.name()) return NotFoundError("no LUN " + name);
    return lun_;
  }
  Result<std::vector<storage_v1::Lun>> ListLuns() override { return UnimplementedError(""); }
  Result<storage_v1::Lun> ResizeLun(const std::string&, uint64_t) override {
    return UnimplementedError("");
  }
  Result<storage_v1::Lun> SetLunAccess(const std::string&,
                                       const std::vector<std::string>&) override {
    return UnimplementedError("");
  }
  storage_v1::Lun lun_;

 private:
  std::string name_ = "d";
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

TEST_F(NodeServerTest, Capabilities) {
  v1::NodeGetCapabilitiesResponse resp;
  v1::NodeGetCapabilitiesRequest req;
  ASSERT_TRUE(node_->NodeGetCapabilities(nullptr, &req, &resp).ok());
  std::set<int> types;
  for (const auto& c : resp.capabilities()) types.insert(c.rpc().type());
  EXPECT_EQ(types, (std::set<int>{v1::NodeServiceCapability_RPC_Type_STAGE_UNSTAGE_VOLUME,
                                  v1::NodeServiceCapability_RPC_Type_GET_VOLUME_STATS,
                                  v1::NodeServiceCapability_RPC_Type_EXPAND_VOLUME,
                                  v1::NodeServiceCapability_RPC_Type_VOLUME_CONDITION}));
}

TEST(NodeHostHelpersTest, ParseMultipathStatus) {
  // Two paths in one round-robin group, the second failed (kernel 6.1 output).
  auto p = ParseMultipathStatus("0 131072 multipath 2 0 0 0 1 1 A 0 2 0 43:0 A 0 43:32 F 1 \n");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->size(), 2u);
  EXPECT_EQ((*p)[0].dev, "43:0");
  EXPECT_TRUE((*p)[0].active);
  EXPECT_EQ((*p)[1].dev, "43:32");
  EXPECT_FALSE((*p)[1].active);
  // Selector info per path (info_args 1), hardware handler args, two groups.
  p = ParseMultipathStatus("0 8 multipath 2 0 0 1 alua 2 1 A 0 1 1 8:0 A 0 7 E 0 1 1 8:16 F 2 9");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->size(), 2u);
  EXPECT_EQ((*p)[1].dev, "8:16");
  EXPECT_FALSE((*p)[1].active);
  EXPECT_FALSE(ParseMultipathStatus("0 8 linear 8:0 0").ok());
  EXPECT_FALSE(ParseMultipathStatus("0 8 multipath 2 0").ok());
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

TEST_F(NodeServerTest, NoPortalAnsweringFailsAndLeavesNothing) {
  host_.bad_portals = {"10.0.0.2:10809", "10.0.0.3:10809"};
  Status s = node_->Stage(StageReq());
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("10.0.0.3:10809"), std::string::npos) << s.ToString();
  EXPECT_TRUE(host_.nbds.empty());
  EXPECT_TRUE(host_.dms.empty());
  EXPECT_FALSE(fs::exists(dir_ / "staging" / NodeServer::kStateFile));
}

TEST_F(NodeServerTest, UnreachablePortalStagesDegradedAndIsAddedLater) {
  host_.bad_portals.insert("10.0.0.3:10809");
  ASSERT_TRUE(node_->Stage(StageReq()).ok());
  EXPECT_EQ(host_.dms.at("strata-naa6001405abcdef"),
            "0 2048 multipath 1 queue_if_no_path 0 1 1 round-robin 0 1 1 43:0 1");
  const std::string vol = (dir_ / "pods" / "vol").string();
  host_.dm_of[vol] = "strata-naa6001405abcdef";
  v1::NodeGetVolumeStatsRequest req;
  req.set_volume_id("dev-a/csi-1");
  req.set_volume_path(vol);
  v1::NodeGetVolumeStatsResponse resp;
  ASSERT_TRUE(node_->GetVolumeStats(req, &resp).ok());
  EXPECT_TRUE(resp.volume_condition().abnormal());
  EXPECT_NE(resp.volume_condition().message().find("10.0.0.3:10809 (not connected)"),
            std::string::npos)
      << resp.volume_condition().message();
  EXPECT_TRUE(node_->CheckPaths().empty());  // still unreachable
  host_.bad_portals.clear();
  auto actions = node_->CheckPaths();
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0], "add_path strata-naa6001405abcdef 43:32 (10.0.0.3:10809)");
  EXPECT_EQ(host_.dms.at("strata-naa6001405abcdef"),
            "0 2048 multipath 1 queue_if_no_path 0 1 1 round-robin 0 2 1 43:0 1 43:32 1");
  resp.Clear();
  ASSERT_TRUE(node_->GetVolumeStats(req, &resp).ok());
  EXPECT_FALSE(resp.volume_condition().abnormal()) << resp.volume_condition().message();
  ASSERT_TRUE(node_->Unstage(UnstageReq()).ok());
  EXPECT_TRUE(host_.nbds.empty());
}

TEST_F(NodeServerTest, RefusedExportFailsTheStage) {
  host_.refused_portals.insert("10.0.0.3:10809");
  Status s = node_->Stage(StageReq());
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_TRUE(host_.nbds.empty());
}

// A TLS mismatch on one path (the device requires TLS, the node has none) is no path problem:
// the stage fails at once naming the portal, the path that connected is taken back.
TEST_F(NodeServerTest, TlsRequiredFailsTheStage) {
  host_.tls_portals.insert("10.0.0.3:10809");
  Status s = node_->Stage(StageReq());
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_NE(s.message().find("10.0.0.3:10809"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("requires TLS"), std::string::npos) << s.ToString();
  EXPECT_TRUE(host_.nbds.empty());
}

TEST_F(NodeServerTest, DmCreateFailureUndoes) {
  host_.fail_dm_create = true;
  EXPECT_FALSE(node_->Stage(StageReq()).ok());
  EXPECT_TRUE(host_.nbds.empty());
  EXPECT_FALSE(fs::exists(dir_ / "staging" / NodeServer::kStateFile));
}

// The last step failing takes back every earlier one (the undo stack, newest first): the
// dm device, both nbds, the mount point and the state file.
TEST_F(NodeServerTest, MountFailureUndoesEveryStep) {
  host_.fail_mount_fs = true;
  auto r = StageReq();
  r.mutable_volume_capability()->mutable_mount()->set_fs_type("ext4");
  r.mutable_volume_capability()->clear_block();
  r.mutable_volume_capability()->mutable_access_mode()->set_mode(
      v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  Status s = node_->Stage(r);
  EXPECT_EQ(s.code(), StatusCode::kInternal) << s.ToString();
  EXPECT_EQ(host_.connects, 2);
  EXPECT_TRUE(host_.nbds.empty());
  EXPECT_TRUE(host_.dms.empty());
  EXPECT_TRUE(host_.mounts.empty());
  EXPECT_FALSE(fs::exists(dir_ / "staging" / NodeServer::kStateFile));
  EXPECT_FALSE(fs::exists(dir_ / "staging" / NodeServer::kFsDir));
  // Nothing left to trip over: the same stage succeeds once mounting works.
  host_.fail_mount_fs = false;
  EXPECT_TRUE(node_->Stage(r).ok());
}

TEST_F(NodeServerTest, SizeMismatchBetweenPortalsIsAnError) {
  host_.sizes["10.0.0.3:10809"] = 2u << 20;
  EXPECT_EQ(node_->Stage(StageReq()).code(), StatusCode::kInternal);
  EXPECT_TRUE(host_.nbds.empty());
}

v1::VolumeCapability Mount(const std::string& fs_type) {
  v1::VolumeCapability c;
  c.mutable_mount()->set_fs_type(fs_type);
  c.mutable_mount()->add_mount_flags("noatime");
  c.mutable_access_mode()->set_mode(v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  return c;
}

TEST_F(NodeServerTest, FilesystemVolumeIsFormattedOnceMountedAndPublished) {
  auto r = StageReq();
  *r.mutable_volume_capability() = Mount("");
  ASSERT_TRUE(node_->Stage(r).ok());
  const std::string mapper = "/dev/mapper/strata-naa6001405abcdef";
  const std::string mnt = (dir_ / "staging" / NodeServer::kFsDir).string();
  EXPECT_EQ(host_.fs_on.at(mapper), "ext4");  // the default type
  EXPECT_EQ(host_.fs_mounts.at(mnt), mapper + " ext4 noatime");
  ASSERT_TRUE(node_->Stage(r).ok());
  EXPECT_EQ(host_.connects, 2);

  auto p = PublishReq();
  *p.mutable_volume_capability() = Mount("");
  p.set_readonly(true);
  ASSERT_TRUE(node_->Publish(p).ok());
  EXPECT_TRUE(fs::is_directory(p.target_path()));
  EXPECT_EQ(host_.mounts.at(p.target_path()), mnt);
  // A block publish of a filesystem-staged volume is refused.
  EXPECT_EQ(node_->Publish(PublishReq()).code(), StatusCode::kInvalidArgument);

  ASSERT_TRUE(node_->Unpublish(UnpublishReq()).ok());
  EXPECT_FALSE(fs::exists(p.target_path()));
  ASSERT_TRUE(node_->Unstage(UnstageReq()).ok());
  EXPECT_TRUE(host_.mounts.empty());
  EXPECT_FALSE(fs::exists(mnt));
  EXPECT_TRUE(host_.dms.empty());
  EXPECT_TRUE(host_.nbds.empty());
}

TEST_F(NodeServerTest, ExistingFilesystemIsNotReformatted) {
  host_.fs_on["/dev/mapper/strata-naa6001405abcdef"] = "xfs";
  auto r = StageReq();
  *r.mutable_volume_capability() = Mount("xfs");
  ASSERT_TRUE(node_->Stage(r).ok());
  EXPECT_EQ(host_.fs_on.at("/dev/mapper/strata-naa6001405abcdef"), "xfs");
  ASSERT_TRUE(node_->Unstage(UnstageReq()).ok());
  // Another type than the one on the volume: refused, nothing left behind.
  *r.mutable_volume_capability() = Mount("ext4");
  Status s = node_->Stage(r);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("xfs"), std::string::npos) << s.ToString();
  EXPECT_TRUE(host_.dms.empty());
  EXPECT_TRUE(host_.nbds.empty());
  EXPECT_FALSE(fs::exists(dir_ / "staging" / NodeServer::kStateFile));
}

TEST_F(NodeServerTest, MultiNodeWriterOnFilesystemIsRefused) {
  auto r = StageReq();
  *r.mutable_volume_capability() = Mount("ext4");
  r.mutable_volume_capability()->mutable_access_mode()->set_mode(
      v1::VolumeCapability::AccessMode::MULTI_NODE_MULTI_WRITER);
  EXPECT_EQ(node_->Stage(r).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(host_.connects, 0);
}

TEST_F(NodeServerTest, ReadOnlyPublishContextMakesTheDmDeviceReadOnly) {
  auto r = StageReq();
  (*r.mutable_publish_context())["readonly"] = "true";
  ASSERT_TRUE(node_->Stage(r).ok());
  EXPECT_EQ(host_.readonly_dms.count("strata-naa6001405abcdef"), 1u);
  // A blank filesystem volume cannot be formatted read-only.
  ASSERT_TRUE(node_->Unstage(UnstageReq()).ok());
  *r.mutable_volume_capability() = Mount("ext4");
  EXPECT_EQ(node_->Stage(r).code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(host_.dms.empty());
}

TEST_F(NodeServerTest, BadMountFlagIsInvalidArgumentNamingIt) {
  auto r = StageReq();
  *r.mutable_volume_capability() = Mount("ext4");
  r.mutable_volume_capability()->mutable_mount()->add_mount_flags("a,b");
  Status s = node_->Stage(r);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("mount_flags[1]"), std::string::npos) << s.ToString();
}

TEST_F(NodeServerTest, VolumeStatsAndConditionFollowThePaths) {
  ASSERT_TRUE(node_->Stage(StageReq()).ok());
  const std::string vol = (dir_ / "pods" / "vol").string();
  host_.dm_of[vol] = "strata-naa6001405abcdef";
  v1::NodeGetVolumeStatsRequest req;
  req.set_volume_id("dev-a/csi-1");
  req.set_volume_path(vol);
  v1::NodeGetVolumeStatsResponse resp;
  ASSERT_TRUE(node_->GetVolumeStats(req, &resp).ok());
  ASSERT_EQ(resp.usage_size(), 1);
  EXPECT_EQ(resp.usage(0).unit(), v1::VolumeUsage::BYTES);
  EXPECT_EQ(resp.usage(0).total(), 1 << 20);
  EXPECT_FALSE(resp.volume_condition().abnormal());

  // A dead path: the checker fails it in dm, the condition says which portal.
  host_.dead_nbds.insert(1);
  host_.bad_portals.insert("10.0.0.3:10809");
  auto actions = node_->CheckPaths();
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_NE(actions[0].find("fail_path strata-naa6001405abcdef 43:32"), std::string::npos);
  resp.Clear();
  ASSERT_TRUE(node_->GetVolumeStats(req, &resp).ok());
  EXPECT_TRUE(resp.volume_condition().abnormal());
  EXPECT_NE(resp.volume_condition().message().find("10.0.0.3:10809"), std::string::npos)
      << resp.volume_condition().message();
  EXPECT_TRUE(node_->CheckPaths().empty());  // still down: nothing new

  // The portal is back: reconnected and reinstated; the condition is normal again.
  host_.bad_portals.clear();
  actions = node_->CheckPaths();
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_NE(actions[0].find("reinstate_path strata-naa6001405abcdef 43:32"), std::string::npos);
  resp.Clear();
  ASSERT_TRUE(node_->GetVolumeStats(req, &resp).ok());
  EXPECT_FALSE(resp.volume_condition().abnormal());

  // Unknown paths and volumes.
  req.set_volume_path((dir_ / "nowhere").string());
  EXPECT_EQ(node_->GetVolumeStats(req, &resp).code(), StatusCode::kNotFound);
  req.set_volume_path(vol);
  req.set_volume_id("dev-a/other");
  EXPECT_EQ(node_->GetVolumeStats(req, &resp).code(), StatusCode::kNotFound);
}

TEST_F(NodeServerTest, FilesystemStatsReportBytesAndInodes) {
  auto r = StageReq();
  *r.mutable_volume_capability() = Mount("ext4");
  ASSERT_TRUE(node_->Stage(r).ok());
  const std::string vol = (dir_ / "pods" / "vol").string();
  host_.dm_of[vol] = "strata-naa6001405abcdef";
  v1::NodeGetVolumeStatsRequest req;
  req.set_volume_id("dev-a/csi-1");
  req.set_volume_path(vol);
  v1::NodeGetVolumeStatsResponse resp;
  ASSERT_TRUE(node_->GetVolumeStats(req, &resp).ok());
  ASSERT_EQ(resp.usage_size(), 2);
  EXPECT_EQ(resp.usage(0).unit(), v1::VolumeUsage::BYTES);
  EXPECT_EQ(resp.usage(0).used(), 100);
  EXPECT_EQ(resp.usage(1).unit(), v1::VolumeUsage::INODES);
  EXPECT_EQ(resp.usage(1).available(), 53);
}

TEST_F(NodeServerTest, ExpandSwapsToConnectionsOfTheNewSize) {
  auto r = StageReq();
  *r.mutable_volume_capability() = Mount("ext4");
  ASSERT_TRUE(node_->Stage(r).ok());
  const std::string vol = (dir_ / "pods" / "vol").string();
  host_.dm_of[vol] = "strata-naa6001405abcdef";
  host_.sizes["10.0.0.2:10809"] = 2u << 20;
  host_.sizes["10.0.0.3:10809"] = 2u << 20;
  v1::NodeExpandVolumeRequest req;
  req.set_volume_id("dev-a/csi-1");
  req.set_volume_path(vol);
  req.mutable_capacity_range()->set_required_bytes(2 << 20);
  v1::NodeExpandVolumeResponse resp;
  ASSERT_TRUE(node_->Expand(req, &resp).ok());
  EXPECT_EQ(resp.capacity_bytes(), 2 << 20);
  EXPECT_EQ(host_.dms.at("strata-naa6001405abcdef"),
            "0 4096 multipath 1 queue_if_no_path 0 1 1 round-robin 0 2 1 43:64 1 43:96 1");
  EXPECT_EQ(host_.nbds.size(), 2u);  // the old ones are gone
  EXPECT_EQ(host_.nbds.count(0), 0u);
  EXPECT_EQ(host_.grows, 1);
  // Asking for more than the LUN has: OUT_OF_RANGE.
  req.mutable_capacity_range()->set_required_bytes(4 << 20);
  EXPECT_EQ(node_->Expand(req, &resp).code(), StatusCode::kOutOfRange);
  // Unstage removes the new paths.
  ASSERT_TRUE(node_->Unstage(UnstageReq()).ok());
  EXPECT_TRUE(host_.nbds.empty());
}

TEST_F(NodeServerTest, PathsFollowALunThatMovedToAnotherDevice) {
  storage_v1::Lun at_a;
  at_a.set_name("csi-1");
  auto dev_a = std::make_shared<LunDevice>(at_a);
  storage_v1::Lun at_b = at_a;
  at_b.add_portals("10.0.1.2:10809");
  at_b.add_portals("10.0.1.3:10809");
  auto dev_b = std::make_shared<LunDevice>(at_b);
  NodeOptions o;
  o.node_id = "n1@10.0.0.1";
  o.device_factory = [&](const std::string& address) -> DeviceClientPtr {
    if (address == "a:1") return dev_a;
    if (address == "b:2") return dev_b;
    return nullptr;
  };
  node_ = std::make_unique<NodeServer>(o, std::make_unique<FakeNodeHost>(&host_));
  auto r = StageReq();
  (*r.mutable_publish_context())["deviceAddress"] = "a:1";
  ASSERT_TRUE(node_->Stage(r).ok());
  EXPECT_TRUE(node_->CheckPaths().empty());  // not moved: nothing to do

  dev_a->lun_.set_moved_to("b:2");
  auto actions = node_->CheckPaths();
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0], "swap strata-naa6001405abcdef from device a:1 to b:2");
  EXPECT_EQ(host_.nbds, (std::map<int, std::string>{{2, "10.0.1.2:10809"}, {3, "10.0.1.3:10809"}}));
  EXPECT_EQ(host_.dms.at("strata-naa6001405abcdef"),
            "0 2048 multipath 1 queue_if_no_path 0 1 1 round-robin 0 2 1 43:64 1 43:96 1");
  EXPECT_TRUE(node_->CheckPaths().empty());  // the state now names device b
  ASSERT_TRUE(node_->Unstage(UnstageReq()).ok());
  EXPECT_TRUE(host_.nbds.empty());
}

TEST_F(NodeServerTest, ConcurrentCallOnOneVolumeIsAborted) {
  // While the first stage is inside ConnectNbd, a second call on the same volume.
  grpc::Status second;
  bool ran = false;
  host_.on_connect = [&] {
    if (ran) return;
    ran = true;
    v1::NodeUnstageVolumeRequest u = UnstageReq();
    v1::NodeUnstageVolumeResponse uresp;
    second = node_->NodeUnstageVolume(nullptr, &u, &uresp);
  };
  auto r = StageReq();
  v1::NodeStageVolumeResponse resp;
  ASSERT_TRUE(node_->NodeStageVolume(nullptr, &r, &resp).ok());
  ASSERT_TRUE(ran);
  EXPECT_EQ(second.error_code(), grpc::StatusCode::ABORTED) << second.error_message();
  EXPECT_NE(second.error_message().find("dev-a/csi-1"), std::string::npos);
  EXPECT_EQ(host_.dms.size(), 1u);  // the first call finished its work
}

TEST_F(NodeServerTest, PathCheckerLeavesAVolumeWithACallInProgress) {
  ASSERT_TRUE(node_->Stage(StageReq()).ok());
  const std::string vol = (dir_ / "pods" / "vol").string();
  host_.dm_of[vol] = "strata-naa6001405abcdef";
  host_.dead_nbds.insert(1);  // a path the checker would fail
  std::vector<std::string> during;
  bool ran = false;
  host_.on_connect = [&] {  // inside NodeExpandVolume's reconnects
    if (ran) return;
    ran = true;
    during = node_->CheckPaths();
  };
  v1::NodeExpandVolumeRequest req;
  req.set_volume_id("dev-a/csi-1");
  req.set_volume_path(vol);
  v1::NodeExpandVolumeResponse resp;
  ASSERT_TRUE(node_->Expand(req, &resp).ok());
  ASSERT_TRUE(ran);
  EXPECT_TRUE(during.empty()) << during[0];
}

TEST_F(NodeServerTest, NoPathForTooLongFailsIOInsteadOfQueueing) {
  auto now = std::chrono::steady_clock::now();
  NodeOptions o;
  o.node_id = "n1@10.0.0.1";
  o.no_path_queue = std::chrono::seconds(60);
  o.clock = [&] { return now; };
  node_ = std::make_unique<NodeServer>(o, std::make_unique<FakeNodeHost>(&host_));
  ASSERT_TRUE(node_->Stage(StageReq()).ok());
  const std::string vol = (dir_ / "pods" / "vol").string();
  host_.dm_of[vol] = "strata-naa6001405abcdef";
  host_.dead_nbds = {0, 1};
  host_.bad_portals = {"10.0.0.2:10809", "10.0.0.3:10809"};
  auto actions = node_->CheckPaths();
  EXPECT_EQ(actions.size(), 2u);  // both paths failed; I/O queues
  v1::NodeGetVolumeStatsRequest req;
  req.set_volume_id("dev-a/csi-1");
  req.set_volume_path(vol);
  v1::NodeGetVolumeStatsResponse resp;
  ASSERT_TRUE(node_->GetVolumeStats(req, &resp).ok());
  EXPECT_NE(resp.volume_condition().message().find("I/O is queued"), std::string::npos)
      << resp.volume_condition().message();
  now += std::chrono::seconds(59);
  EXPECT_TRUE(node_->CheckPaths().empty());
  now += std::chrono::seconds(1);
  actions = node_->CheckPaths();
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].rfind("fail_if_no_path strata-naa6001405abcdef (no path for 60 s", 0), 0u)
      << actions[0];
  resp.Clear();
  ASSERT_TRUE(node_->GetVolumeStats(req, &resp).ok());
  EXPECT_NE(resp.volume_condition().message().find("I/O fails"), std::string::npos);
  EXPECT_TRUE(node_->CheckPaths().empty());  // once
  // A path returns: reinstated, and queueing is back.
  host_.bad_portals.erase("10.0.0.3:10809");
  actions = node_->CheckPaths();
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[0].rfind("reinstate_path strata-naa6001405abcdef 43:32", 0), 0u);
  EXPECT_EQ(actions[1], "queue_if_no_path strata-naa6001405abcdef (a path is back)");
  EXPECT_EQ(host_.messages.back(), "strata-naa6001405abcdef queue_if_no_path");
}

TEST_F(NodeServerTest, RestageAfterAStageThatDiedBeforeDmDropsItsNbds) {
  ASSERT_TRUE(node_->Stage(StageReq()).ok());
  host_.dms.clear();  // as if the stage had died before dmsetup create
  ASSERT_TRUE(node_->Stage(StageReq()).ok());
  EXPECT_EQ(host_.nbds.size(), 2u);  // the two new ones only
  EXPECT_EQ(host_.nbds.count(0), 0u);
  EXPECT_EQ(host_.nbds.count(1), 0u);
}

TEST_F(NodeServerTest, PublishOfAnUnmountedFilesystemIsFailedPrecondition) {
  auto r = StageReq();
  *r.mutable_volume_capability() = Mount("ext4");
  ASSERT_TRUE(node_->Stage(r).ok());
  host_.mounts.erase((dir_ / "staging" / NodeServer::kFsDir).string());  // e.g. after a reboot
  auto p = PublishReq();
  *p.mutable_volume_capability() = Mount("ext4");
  Status s = node_->Publish(p);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_FALSE(host_.mounts.count(p.target_path()));
  ASSERT_TRUE(node_->Stage(r).ok());  // restage mounts it again
  EXPECT_TRUE(node_->Publish(p).ok());
}

TEST_F(NodeServerTest, StagedVolumesAreFoundAgainAfterARestart) {
  NodeOptions o;
  o.node_id = "n1@10.0.0.1";
  o.state_dir = (dir_ / "state").string();
  node_ = std::make_unique<NodeServer>(o, std::make_unique<FakeNodeHost>(&host_));
  ASSERT_TRUE(node_->Stage(StageReq()).ok());
  EXPECT_TRUE(fs::exists(dir_ / "state" / "strata-naa6001405abcdef"));
  node_ = std::make_unique<NodeServer>(o, std::make_unique<FakeNodeHost>(&host_));
  host_.dead_nbds.insert(0);
  host_.bad_portals.insert("10.0.0.2:10809");
  auto actions = node_->CheckPaths();
  ASSERT_EQ(actions.size(), 1u) << "the restarted node must know the staged volume";
  ASSERT_TRUE(node_->Unstage(UnstageReq()).ok());
  EXPECT_FALSE(fs::exists(dir_ / "state" / "strata-naa6001405abcdef"));
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
