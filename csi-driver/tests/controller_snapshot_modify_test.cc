// ControllerServer's snapshot RPCs, restores and ControllerModifyVolume against the in-memory
// device of libs/device (device::testing::FakeClient), which follows the device's snapshot
// rules (storage.proto).
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "controller_server.h"
#include "strata/device/testing/fake_client.h"

namespace strata::csi {
namespace {

namespace v1 = ::csi::v1;
namespace sv1 = ::strata::storage::v1;
using device::testing::FakeClient;
using grpc::StatusCode;

constexpr uint64_t kMiB = 1ull << 20;

v1::VolumeCapability BlockCap() {
  v1::VolumeCapability c;
  c.mutable_block();
  c.mutable_access_mode()->set_mode(v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  return c;
}

bool HasCall(const FakeClient& d, const std::string& prefix) {
  auto calls = d.Calls();
  return std::any_of(calls.begin(), calls.end(),
                     [&](const std::string& c) { return c.rfind(prefix, 0) == 0; });
}

// Two devices: dev-a (ssd 1 GiB, sata 1 GiB, dedup on) and dev-b (ssd 4 GiB), no zones.
class CsiSnapshotModifyTest : public ::testing::Test {
 protected:
  CsiSnapshotModifyTest()
      : a_(std::make_shared<FakeClient>("10.0.0.1:7000")),
        b_(std::make_shared<FakeClient>("10.0.0.2:7000")),
        server_({MakeDeviceClient("dev-a", a_), MakeDeviceClient("dev-b", b_)}) {
    SetTiers(*a_, {{sv1::TIER_CLASS_SSD, 1024 * kMiB, 0}, {sv1::TIER_CLASS_SATA, 1024 * kMiB, 0}});
    a_->MutateStatus([](sv1::DeviceStatus& s) { s.set_dedup_enabled(true); });
    SetTiers(*b_, {{sv1::TIER_CLASS_SSD, 4096 * kMiB, 0}});
  }

  struct Tier {
    sv1::TierClass cls;
    uint64_t capacity, used;
  };
  static void SetTiers(FakeClient& d, const std::vector<Tier>& tiers) {
    d.MutateStatus([&](sv1::DeviceStatus& s) {
      s.clear_tiers();
      for (const auto& t : tiers) {
        auto* ts = s.add_tiers();
        ts->set_class_(t.cls);
        ts->set_capacity_bytes(t.capacity);
        ts->set_used_bytes(t.used);
      }
    });
  }

  // A volume on dev-a (the only device whose ssd has room for it when dev-b is full).
  v1::Volume MakeVolume(const std::string& name, uint64_t size = 64 * kMiB,
                        const std::string& device = "dev-a") {
    v1::CreateVolumeRequest req;
    req.set_name(name);
    *req.add_volume_capabilities() = BlockCap();
    req.mutable_capacity_range()->set_required_bytes(static_cast<int64_t>(size));
    (*req.mutable_parameters())["device"] = device;
    v1::CreateVolumeResponse resp;
    grpc::Status s = server_.CreateVolume(&ctx_, &req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.volume();
  }

  grpc::Status Snap(const std::string& name, const std::string& source,
                    v1::CreateSnapshotResponse* resp) {
    v1::CreateSnapshotRequest req;
    req.set_name(name);
    req.set_source_volume_id(source);
    return server_.CreateSnapshot(&ctx_, &req, resp);
  }

  grpc::Status Restore(const std::string& name, const std::string& snapshot_id,
                       v1::CreateVolumeResponse* resp, const std::string& tier = "",
                       int64_t required = 0) {
    v1::CreateVolumeRequest req;
    req.set_name(name);
    *req.add_volume_capabilities() = BlockCap();
    if (required) req.mutable_capacity_range()->set_required_bytes(required);
    if (!tier.empty()) (*req.mutable_parameters())["tier"] = tier;
    req.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id(snapshot_id);
    return server_.CreateVolume(&ctx_, &req, resp);
  }

  grpc::Status Modify(const std::string& volume_id,
                      const std::map<std::string, std::string>& params) {
    v1::ControllerModifyVolumeRequest req;
    req.set_volume_id(volume_id);
    for (const auto& [k, v] : params) (*req.mutable_mutable_parameters())[k] = v;
    v1::ControllerModifyVolumeResponse resp;
    return server_.ControllerModifyVolume(&ctx_, &req, &resp);
  }

  v1::ListSnapshotsResponse List(const v1::ListSnapshotsRequest& req, grpc::Status* status) {
    v1::ListSnapshotsResponse resp;
    *status = server_.ListSnapshots(&ctx_, &req, &resp);
    return resp;
  }

  grpc::ServerContext ctx_;
  std::shared_ptr<FakeClient> a_, b_;
  ControllerServer server_;
};

TEST_F(CsiSnapshotModifyTest, CapabilitiesIncludeSnapshotsAndModify) {
  v1::ControllerGetCapabilitiesRequest req;
  v1::ControllerGetCapabilitiesResponse resp;
  ASSERT_TRUE(server_.ControllerGetCapabilities(&ctx_, &req, &resp).ok());
  std::set<int> got;
  for (const auto& c : resp.capabilities()) got.insert(c.rpc().type());
  using Rpc = v1::ControllerServiceCapability::RPC;
  for (int want : {Rpc::CREATE_DELETE_SNAPSHOT, Rpc::LIST_SNAPSHOTS, Rpc::MODIFY_VOLUME}) {
    EXPECT_TRUE(got.count(want)) << want;
  }
}

TEST_F(CsiSnapshotModifyTest, CreateSnapshotOnTheHolderIsIdempotentAndKeepsTheSourceId) {
  v1::Volume vol = MakeVolume("pvc-1");
  v1::CreateSnapshotRequest req;
  req.set_name("snap-1");
  req.set_source_volume_id(vol.volume_id());
  (*req.mutable_parameters())["csi.storage.k8s.io/volumesnapshot/name"] = "vs-1";
  (*req.mutable_parameters())["csi.storage.k8s.io/snapshotter-secret-name"] = "ignored";
  v1::CreateSnapshotResponse r1, r2;
  ASSERT_TRUE(server_.CreateSnapshot(&ctx_, &req, &r1).ok());
  const v1::Snapshot& s = r1.snapshot();
  EXPECT_EQ(s.snapshot_id(), "dev-a/" + SnapshotNameFor("snap-1"));
  EXPECT_EQ(s.source_volume_id(), vol.volume_id());
  EXPECT_EQ(s.size_bytes(), static_cast<int64_t>(64 * kMiB));
  EXPECT_TRUE(s.ready_to_use());
  EXPECT_GT(s.creation_time().seconds(), 1600000000);
  auto dev_snap = a_->GetSnapshot(SnapshotNameFor("snap-1"));
  ASSERT_TRUE(dev_snap.ok());
  EXPECT_EQ(dev_snap->metadata().at("csi.storage.k8s.io/volumesnapshot/name"), "vs-1");
  EXPECT_EQ(dev_snap->metadata().at(std::string(kSnapshotSourceVolumeKey)), vol.volume_id());
  EXPECT_EQ(dev_snap->metadata().count("csi.storage.k8s.io/snapshotter-secret-name"), 0u);

  ASSERT_TRUE(server_.CreateSnapshot(&ctx_, &req, &r2).ok());  // idempotent
  EXPECT_EQ(r2.snapshot().snapshot_id(), s.snapshot_id());
  EXPECT_EQ(r2.snapshot().creation_time().seconds(), s.creation_time().seconds());
  EXPECT_EQ(r2.snapshot().creation_time().nanos(), s.creation_time().nanos());
}

TEST_F(CsiSnapshotModifyTest, CreateSnapshotErrors) {
  v1::Volume vol = MakeVolume("pvc-1");
  v1::Volume other = MakeVolume("pvc-2", 64 * kMiB, "dev-b");
  v1::CreateSnapshotResponse resp;
  ASSERT_TRUE(Snap("snap-1", vol.volume_id(), &resp).ok());
  // The same name of another volume (on another device): ALREADY_EXISTS.
  grpc::Status s = Snap("snap-1", other.volume_id(), &resp);
  EXPECT_EQ(s.error_code(), StatusCode::ALREADY_EXISTS) << s.error_message();
  EXPECT_EQ(Snap("", vol.volume_id(), &resp).error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Snap("snap-2", "", &resp).error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Snap("snap-2", "dev-a/csi-missing", &resp).error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(Snap("snap-2", "nodevice/csi-x", &resp).error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(Snap("snap-2", "not-an-id", &resp).error_code(), StatusCode::NOT_FOUND);
  v1::CreateSnapshotRequest req;
  req.set_name("snap-3");
  req.set_source_volume_id(vol.volume_id());
  (*req.mutable_parameters())["flavour"] = "x";
  s = server_.CreateSnapshot(&ctx_, &req, &resp);
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("parameters.flavour"), std::string::npos) << s.error_message();
  // A device that may hold the name cannot be asked: UNAVAILABLE, nothing created.
  b_->unreachable = true;
  EXPECT_EQ(Snap("snap-4", vol.volume_id(), &resp).error_code(), StatusCode::UNAVAILABLE);
  EXPECT_FALSE(HasCall(*a_, "CreateSnapshot " + SnapshotNameFor("snap-4")));
}

TEST_F(CsiSnapshotModifyTest, DeleteSnapshotIsIdempotent) {
  v1::Volume vol = MakeVolume("pvc-1");
  v1::CreateSnapshotResponse snap;
  ASSERT_TRUE(Snap("snap-1", vol.volume_id(), &snap).ok());
  v1::DeleteSnapshotRequest req;
  v1::DeleteSnapshotResponse resp;
  req.set_snapshot_id(snap.snapshot().snapshot_id());
  ASSERT_TRUE(server_.DeleteSnapshot(&ctx_, &req, &resp).ok());
  EXPECT_EQ(a_->GetSnapshot(SnapshotNameFor("snap-1")).status().code(),
            ::strata::StatusCode::kNotFound);
  EXPECT_TRUE(server_.DeleteSnapshot(&ctx_, &req, &resp).ok());  // again
  for (std::string unknown : {"dev-a/csi-snap-0000", "nodevice/csi-snap-1", "garbage"}) {
    req.set_snapshot_id(unknown);
    EXPECT_TRUE(server_.DeleteSnapshot(&ctx_, &req, &resp).ok()) << unknown;
  }
  req.set_snapshot_id("");
  EXPECT_EQ(server_.DeleteSnapshot(&ctx_, &req, &resp).error_code(), StatusCode::INVALID_ARGUMENT);
  a_->unreachable = true;
  req.set_snapshot_id(snap.snapshot().snapshot_id());
  EXPECT_EQ(server_.DeleteSnapshot(&ctx_, &req, &resp).error_code(), StatusCode::UNAVAILABLE);
}

TEST_F(CsiSnapshotModifyTest, ListSnapshotsFiltersAndPages) {
  v1::Volume v1_ = MakeVolume("pvc-1");
  v1::Volume v2 = MakeVolume("pvc-2", 64 * kMiB, "dev-b");
  v1::CreateSnapshotResponse s;
  std::set<std::string> ids;
  for (auto [name, vol] : {std::pair{"s1", &v1_}, {"s2", &v1_}, {"s3", &v2}}) {
    ASSERT_TRUE(Snap(name, vol->volume_id(), &s).ok());
    ids.insert(s.snapshot().snapshot_id());
  }
  // A device snapshot that is not ours is not listed.
  sv1::Snapshot foreign;
  foreign.set_name("backup-1");
  foreign.set_source_lun("x");
  a_->PutSnapshot(foreign);

  grpc::Status st;
  v1::ListSnapshotsRequest req;
  auto all = List(req, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  std::set<std::string> got;
  for (const auto& e : all.entries()) got.insert(e.snapshot().snapshot_id());
  EXPECT_EQ(got, ids);

  // Pages of 2, then the rest, in id order.
  req.set_max_entries(2);
  auto p1 = List(req, &st);
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(p1.entries_size(), 2);
  ASSERT_FALSE(p1.next_token().empty());
  req.set_starting_token(p1.next_token());
  auto p2 = List(req, &st);
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(p2.entries_size(), 1);
  EXPECT_TRUE(p2.next_token().empty());
  EXPECT_EQ(std::set<std::string>({p1.entries(0).snapshot().snapshot_id(),
                                   p1.entries(1).snapshot().snapshot_id(),
                                   p2.entries(0).snapshot().snapshot_id()}),
            ids);

  req.Clear();
  req.set_starting_token("not-a-token");
  List(req, &st);
  EXPECT_EQ(st.error_code(), StatusCode::ABORTED);
  req.Clear();
  req.set_max_entries(-1);
  List(req, &st);
  EXPECT_EQ(st.error_code(), StatusCode::INVALID_ARGUMENT);

  req.Clear();
  req.set_source_volume_id(v1_.volume_id());
  auto of_v1 = List(req, &st);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(of_v1.entries_size(), 2);
  for (const auto& e : of_v1.entries()) {
    EXPECT_EQ(e.snapshot().source_volume_id(), v1_.volume_id());
  }

  req.Clear();
  req.set_snapshot_id(*ids.begin());
  auto one = List(req, &st);
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(one.entries_size(), 1);
  EXPECT_EQ(one.entries(0).snapshot().snapshot_id(), *ids.begin());
  for (std::string unknown : {"dev-a/csi-snap-00", "nodevice/csi-snap-1", "garbage"}) {
    req.set_snapshot_id(unknown);
    auto none = List(req, &st);
    ASSERT_TRUE(st.ok()) << unknown;
    EXPECT_EQ(none.entries_size(), 0) << unknown;
  }
  req.Clear();
  req.set_source_volume_id("dev-a/csi-missing");
  EXPECT_EQ(List(req, &st).entries_size(), 0);
  EXPECT_TRUE(st.ok());
}

TEST_F(CsiSnapshotModifyTest, RestoreFromASnapshotOnItsDeviceAndTier) {
  v1::Volume vol = MakeVolume("pvc-1");
  v1::CreateSnapshotResponse snap;
  ASSERT_TRUE(Snap("snap-1", vol.volume_id(), &snap).ok());
  const std::string snap_name = SnapshotNameFor("snap-1");

  v1::CreateVolumeResponse r;
  ASSERT_TRUE(Restore("restored", snap.snapshot().snapshot_id(), &r).ok());
  EXPECT_EQ(r.volume().volume_id(), "dev-a/" + LunNameFor("restored"));
  EXPECT_EQ(r.volume().capacity_bytes(), static_cast<int64_t>(64 * kMiB));  // the snapshot's
  EXPECT_EQ(r.volume().content_source().snapshot().snapshot_id(), snap.snapshot().snapshot_id());
  EXPECT_TRUE(HasCall(*a_, "CreateLun " + LunNameFor("restored") + " from_snapshot " + snap_name));
  v1::CreateVolumeResponse again;
  ASSERT_TRUE(Restore("restored", snap.snapshot().snapshot_id(), &again).ok());
  EXPECT_EQ(again.volume().volume_id(), r.volume().volume_id());

  // Another tier of the same device: the device takes the tier with from_snapshot.
  ASSERT_TRUE(Restore("on-sata", snap.snapshot().snapshot_id(), &r, "sata").ok());
  auto lun = a_->GetLun(LunNameFor("on-sata"));
  ASSERT_TRUE(lun.ok());
  EXPECT_EQ(lun->tier(), sv1::TIER_CLASS_SATA);

  // Larger than the snapshot: fine; smaller limit: OUT_OF_RANGE.
  ASSERT_TRUE(Restore("bigger", snap.snapshot().snapshot_id(), &r, "", 128 * kMiB).ok());
  EXPECT_EQ(r.volume().capacity_bytes(), static_cast<int64_t>(128 * kMiB));
  v1::CreateVolumeRequest small;
  small.set_name("small");
  *small.add_volume_capabilities() = BlockCap();
  small.mutable_capacity_range()->set_limit_bytes(4096);
  small.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id(
      snap.snapshot().snapshot_id());
  EXPECT_EQ(server_.CreateVolume(&ctx_, &small, &r).error_code(), StatusCode::OUT_OF_RANGE);
}

TEST_F(CsiSnapshotModifyTest, RestoreFromAnUnknownSnapshotIsNotFound) {
  v1::CreateVolumeResponse r;
  for (std::string id : {"dev-a/csi-snap-missing", "nodevice/csi-snap-1", "garbage"}) {
    grpc::Status s = Restore("r", id, &r);
    EXPECT_EQ(s.error_code(), StatusCode::NOT_FOUND) << id;
    EXPECT_NE(s.error_message().find("volume_content_source.snapshot.snapshot_id"),
              std::string::npos)
        << s.error_message();
  }
}

TEST_F(CsiSnapshotModifyTest, RestoreWhereTheSnapshotsDeviceLacksRoomMovesToAnotherDevice) {
  v1::Volume vol = MakeVolume("pvc-1", 512 * kMiB);
  v1::CreateSnapshotResponse snap;
  ASSERT_TRUE(Snap("snap-1", vol.volume_id(), &snap).ok());
  // dev-a's ssd fills up: the restore is made there (shared blocks) and moved to dev-b.
  SetTiers(*a_, {{sv1::TIER_CLASS_SSD, 1024 * kMiB, 1000 * kMiB}});
  v1::CreateVolumeResponse r;
  grpc::Status s = Restore("restored", snap.snapshot().snapshot_id(), &r);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(r.volume().volume_id(), "dev-a/" + LunNameFor("restored"));
  EXPECT_TRUE(HasCall(*a_, "CreateLun " + LunNameFor("restored") + " from_snapshot"));
  EXPECT_TRUE(HasCall(*a_, "MigrateLun " + LunNameFor("restored") + " 0 10.0.0.2:7000"));

  // No device with room anywhere: RESOURCE_EXHAUSTED naming both, nothing created.
  SetTiers(*b_, {{sv1::TIER_CLASS_SSD, 4096 * kMiB, 4000 * kMiB}});
  s = Restore("restored-2", snap.snapshot().snapshot_id(), &r);
  EXPECT_EQ(s.error_code(), StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(s.error_message().find("dev-a"), std::string::npos) << s.error_message();
  EXPECT_NE(s.error_message().find("dev-b"), std::string::npos) << s.error_message();
  EXPECT_EQ(a_->GetLun(LunNameFor("restored-2")).status().code(), ::strata::StatusCode::kNotFound);
}

TEST_F(CsiSnapshotModifyTest, ModifyChangesTierAndDedupInPlace) {
  v1::Volume vol = MakeVolume("pvc-1");
  const std::string lun = LunNameFor("pvc-1");
  grpc::Status s = Modify(vol.volume_id(), {{"tier", "sata"}, {"dedup", "true"}});
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(HasCall(*a_, "SetLunDedup " + lun + " on fold"));
  EXPECT_TRUE(HasCall(*a_, "MigrateLun " + lun + " " + std::to_string(sv1::TIER_CLASS_SATA)));
  // A retry while the move runs: nothing new.
  const size_t calls = a_->Calls().size();
  ASSERT_TRUE(Modify(vol.volume_id(), {{"tier", "sata"}, {"dedup", "true"}}).ok());
  EXPECT_EQ(a_->Calls().size(), calls);
  // Another change while it moves: ABORTED (the CO retries).
  EXPECT_EQ(Modify(vol.volume_id(), {{"tier", "ssd"}}).error_code(), StatusCode::ABORTED);
  EXPECT_EQ(Modify(vol.volume_id(), {{"dedup", "false"}}).error_code(), StatusCode::ABORTED);
  a_->FinishMigration(lun);
  EXPECT_EQ(a_->GetLun(lun)->tier(), sv1::TIER_CLASS_SATA);
  ASSERT_TRUE(Modify(vol.volume_id(), {{"tier", "sata"}}).ok());  // done already
  EXPECT_EQ(a_->Calls().size(), calls);
  ASSERT_TRUE(Modify(vol.volume_id(), {{"dedup", "false"}}).ok());
  EXPECT_TRUE(HasCall(*a_, "SetLunDedup " + lun + " off"));
}

TEST_F(CsiSnapshotModifyTest, ModifyRejectsUnknownAndImmutableKeysNamingThem) {
  v1::Volume vol = MakeVolume("pvc-1");
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, std::string>>{{"owner", "team-b"},
                                                        {"device", "dev-b"},
                                                        {"iops", "100"},
                                                        {"tier", "nvme"},
                                                        {"tier", ""},
                                                        {"dedup", "maybe"}}) {
    grpc::Status s = Modify(vol.volume_id(), {{key, value}});
    EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT) << key;
    EXPECT_NE(s.error_message().find("mutable_parameters." + key), std::string::npos)
        << s.error_message();
  }
  EXPECT_EQ(Modify(vol.volume_id(), {}).error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Modify("", {{"tier", "ssd"}}).error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Modify("dev-a/csi-missing", {{"tier", "ssd"}}).error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(Modify("nodevice/x", {{"tier", "ssd"}}).error_code(), StatusCode::NOT_FOUND);
  EXPECT_TRUE(a_->Calls().size() == 1u) << "only the CreateLun";
}

TEST_F(CsiSnapshotModifyTest, ModifyToATierTheDeviceLacksChangesNothing) {
  v1::Volume vol = MakeVolume("pvc-1", 64 * kMiB, "dev-b");
  grpc::Status s = Modify(vol.volume_id(), {{"tier", "sata"}, {"dedup", "true"}});
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("no sata tier"), std::string::npos) << s.error_message();
  EXPECT_FALSE(HasCall(*b_, "SetLunDedup"));
  // A full target tier: RESOURCE_EXHAUSTED, dedup untouched.
  SetTiers(*a_,
           {{sv1::TIER_CLASS_SSD, 1024 * kMiB, 0}, {sv1::TIER_CLASS_SATA, 64 * kMiB, 32 * kMiB}});
  v1::Volume on_a = MakeVolume("pvc-2");
  s = Modify(on_a.volume_id(), {{"tier", "sata"}, {"dedup", "true"}});
  EXPECT_EQ(s.error_code(), StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_FALSE(HasCall(*a_, "SetLunDedup"));
  // Dedup refused by the device (disabled there): its code, naming the parameter.
  s = Modify(vol.volume_id(), {{"dedup", "true"}});
  EXPECT_EQ(s.error_code(), StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("mutable_parameters.dedup"), std::string::npos);
}

TEST_F(CsiSnapshotModifyTest, CreateVolumeTakesMutableParametersOverParameters) {
  v1::CreateVolumeRequest req;
  req.set_name("pvc-vac");
  *req.add_volume_capabilities() = BlockCap();
  req.mutable_capacity_range()->set_required_bytes(64 * kMiB);
  (*req.mutable_parameters())["tier"] = "ssd";
  (*req.mutable_parameters())["device"] = "dev-a";
  (*req.mutable_mutable_parameters())["tier"] = "sata";
  v1::CreateVolumeResponse resp;
  ASSERT_TRUE(server_.CreateVolume(&ctx_, &req, &resp).ok());
  EXPECT_EQ(a_->GetLun(LunNameFor("pvc-vac"))->tier(), sv1::TIER_CLASS_SATA);
  (*req.mutable_mutable_parameters())["owner"] = "x";
  grpc::Status s = server_.CreateVolume(&ctx_, &req, &resp);
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("mutable_parameters.owner"), std::string::npos);
}

}  // namespace
}  // namespace strata::csi
