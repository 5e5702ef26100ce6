// ControllerServer and IdentityServer against in-memory devices (FakeDevice), for the
// logic the real daemons make hard to reach: placement, unreachable devices, ABORTED.
#include "controller_server.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <mutex>
#include <optional>

#include "identity_server.h"

namespace strata::csi {
namespace {

namespace v1 = ::csi::v1;
namespace sv1 = ::strata::storage::v1;

// A strata-stored in memory: one ssd tier, LUNs with access lists. Thread-safe.
class FakeDevice final : public DeviceClient {
 public:
  FakeDevice(std::string name, uint64_t capacity, uint64_t used)
      : name_(std::move(name)), capacity_(capacity), used_(used) {}

  const std::string& name() const override { return name_; }
  std::string address() const override { return address_; }
  void set_address(std::string a) { address_ = std::move(a); }
  // As strata-stored after a device-to-device move: `lun` lives on `to` now, with `to`'s
  // portals, and this device keeps a stub whose moved_to is `to`'s address.
  void MoveTo(const std::string& lun, FakeDevice* to) {
    std::lock_guard<std::mutex> l(mu_);
    sv1::Lun moved = luns_.at(lun);
    luns_[lun].set_moved_to(to->address());
    moved.clear_portals();
    moved.add_portals(to->address() + "-portal");
    to->Put(moved);
  }
  void Put(const sv1::Lun& lun) {
    std::lock_guard<std::mutex> l(mu_);
    luns_[lun.name()] = lun;
  }
  std::optional<sv1::Lun> Lun(const std::string& name) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = luns_.find(name);
    if (it == luns_.end()) return std::nullopt;
    return it->second;
  }
  std::vector<sv1::CreateLunRequest> creates() {
    std::lock_guard<std::mutex> l(mu_);
    return creates_;
  }
  void set_reachable(bool r) {
    std::lock_guard<std::mutex> l(mu_);
    reachable_ = r;
  }
  // Called inside GetLun, to run a second call while the first is in flight.
  std::function<void()> on_get_lun;

  Result<sv1::DeviceStatus> GetDeviceStatus() override {
    std::lock_guard<std::mutex> l(mu_);
    if (!reachable_) return UnavailableError("device " + name_ + ": connection refused");
    sv1::DeviceStatus st;
    st.set_name(name_);
    st.set_state(sv1::DEVICE_STATE_ONLINE);
    auto* t = st.add_tiers();
    t->set_class_(sv1::TIER_CLASS_SSD);
    t->set_capacity_bytes(capacity_);
    t->set_used_bytes(used_);
    return st;
  }
  Result<sv1::Lun> CreateLun(const sv1::CreateLunRequest& req) override {
    std::lock_guard<std::mutex> l(mu_);
    if (!reachable_) return UnavailableError("unreachable");
    if (luns_.count(req.name())) return AlreadyExistsError("exists");
    creates_.push_back(req);
    sv1::Lun lun;
    lun.set_name(req.name());
    lun.set_size_bytes(req.size_bytes());
    lun.set_tier(sv1::TIER_CLASS_SSD);
    lun.set_dedup(req.dedup());
    lun.set_owner(req.owner());
    *lun.mutable_metadata() = req.metadata();
    lun.set_wwn("naa.3000000000000001");
    lun.set_export_name(req.name());
    lun.add_portals("127.0.0.1:10809");
    lun.add_portals("127.0.0.2:10809");
    *lun.mutable_access() = req.access();
    has_access_ = req.has_access();
    luns_[req.name()] = lun;
    return lun;
  }
  Status DeleteLun(const std::string& name) override {
    std::lock_guard<std::mutex> l(mu_);
    return luns_.erase(name) ? Status::Ok() : NotFoundError("no LUN " + name);
  }
  Result<sv1::Lun> GetLun(const std::string& name) override {
    if (on_get_lun) {
      auto f = std::move(on_get_lun);
      on_get_lun = nullptr;
      f();
    }
    std::lock_guard<std::mutex> l(mu_);
    if (!reachable_) return UnavailableError("device " + name_ + ": connection refused");
    auto it = luns_.find(name);
    if (it == luns_.end()) return NotFoundError("no LUN " + name);
    return it->second;
  }
  Result<std::vector<sv1::Lun>> ListLuns() override {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<sv1::Lun> out;
    for (const auto& [n, lun] : luns_) out.push_back(lun);
    return out;
  }
  Result<sv1::Lun> ResizeLun(const std::string& name, uint64_t size) override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = luns_.find(name);
    if (it == luns_.end()) return NotFoundError("no LUN " + name);
    it->second.set_size_bytes(size);
    return it->second;
  }
  Result<sv1::Lun> SetLunAccess(const std::string& name,
                                const std::vector<std::string>& clients) override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = luns_.find(name);
    if (it == luns_.end()) return NotFoundError("no LUN " + name);
    it->second.mutable_access()->clear_allowed_clients();
    for (const auto& c : clients) it->second.mutable_access()->add_allowed_clients(c);
    return it->second;
  }

  bool created_with_explicit_access() const { return has_access_; }
  size_t lun_count() {
    std::lock_guard<std::mutex> l(mu_);
    return luns_.size();
  }

 private:
  const std::string name_;
  std::string address_;
  const uint64_t capacity_, used_;
  std::mutex mu_;
  std::vector<sv1::CreateLunRequest> creates_;
  bool reachable_ = true;
  bool has_access_ = false;
  std::map<std::string, sv1::Lun> luns_;
};

v1::VolumeCapability BlockCap(v1::VolumeCapability::AccessMode::Mode mode) {
  v1::VolumeCapability c;
  c.mutable_block();
  c.mutable_access_mode()->set_mode(mode);
  return c;
}

class CsiControllerServerTest : public ::testing::Test {
 protected:
  CsiControllerServerTest()
      : small_(std::make_shared<FakeDevice>("small", 8ull << 30, 6ull << 30)),
        big_(std::make_shared<FakeDevice>("big", 8ull << 30, 1ull << 30)),
        server_({small_, big_}) {}

  grpc::Status Create(const std::string& name, v1::CreateVolumeResponse* resp,
                      int64_t required = 0) {
    v1::CreateVolumeRequest req;
    req.set_name(name);
    *req.add_volume_capabilities() = BlockCap(v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
    if (required) req.mutable_capacity_range()->set_required_bytes(required);
    return server_.CreateVolume(&ctx_, &req, resp);
  }

  grpc::ServerContext ctx_;
  std::shared_ptr<FakeDevice> small_, big_;
  ControllerServer server_;
};

TEST_F(CsiControllerServerTest, CreatePlacesOnMostFreeDeviceWithEmptyAccessList) {
  v1::CreateVolumeResponse resp;
  ASSERT_TRUE(Create("pvc-1", &resp).ok());
  EXPECT_EQ(resp.volume().volume_id(), "big/" + LunNameFor("pvc-1"));
  EXPECT_EQ(resp.volume().capacity_bytes(), int64_t{1} << 30);
  EXPECT_EQ(resp.volume().volume_context().at("portals"), "127.0.0.1:10809,127.0.0.2:10809");
  EXPECT_EQ(resp.volume().volume_context().at("wwn"), "naa.3000000000000001");
  EXPECT_TRUE(big_->created_with_explicit_access());
  auto lun = big_->GetLun(LunNameFor("pvc-1"));
  ASSERT_TRUE(lun.ok());
  EXPECT_EQ(lun->access().allowed_clients_size(), 0);
}

TEST_F(CsiControllerServerTest, CreateIsIdempotentAndConflictsOnSize) {
  v1::CreateVolumeResponse a, b, c;
  ASSERT_TRUE(Create("pvc-1", &a, 8192).ok());
  ASSERT_TRUE(Create("pvc-1", &b, 8192).ok());
  EXPECT_EQ(a.volume().volume_id(), b.volume().volume_id());
  EXPECT_EQ(Create("pvc-1", &c, 1 << 20).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(big_->lun_count(), 1u);
}

TEST_F(CsiControllerServerTest, CreateFailsUnavailableWhenADeviceThatMayHoldItIsDown) {
  small_->set_reachable(false);
  v1::CreateVolumeResponse resp;
  EXPECT_EQ(Create("pvc-1", &resp).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(CsiControllerServerTest, CreateTooBigIsResourceExhausted) {
  v1::CreateVolumeResponse resp;
  EXPECT_EQ(Create("pvc-1", &resp, int64_t{64} << 30).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
}

TEST_F(CsiControllerServerTest, ConcurrentOperationOnOneVolumeIsAborted) {
  v1::CreateVolumeResponse created;
  ASSERT_TRUE(Create("pvc-1", &created).ok());
  grpc::Status inner;
  big_->on_get_lun = [&] {
    v1::ControllerExpandVolumeRequest req;
    req.set_volume_id(created.volume().volume_id());
    req.mutable_capacity_range()->set_required_bytes(int64_t{2} << 30);
    v1::ControllerExpandVolumeResponse r;
    grpc::ServerContext ctx;
    inner = server_.ControllerExpandVolume(&ctx, &req, &r);
  };
  v1::DeleteVolumeRequest del;
  del.set_volume_id(created.volume().volume_id());
  v1::DeleteVolumeResponse dresp;
  EXPECT_TRUE(server_.DeleteVolume(&ctx_, &del, &dresp).ok());
  EXPECT_EQ(inner.error_code(), grpc::StatusCode::ABORTED) << inner.error_message();
}

TEST_F(CsiControllerServerTest, PublishSingleNodeElsewhereIsFailedPrecondition) {
  v1::CreateVolumeResponse created;
  ASSERT_TRUE(Create("pvc-1", &created).ok());
  v1::ControllerPublishVolumeRequest pub;
  pub.set_volume_id(created.volume().volume_id());
  pub.set_node_id("n1@10.0.0.1");
  *pub.mutable_volume_capability() = BlockCap(v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  v1::ControllerPublishVolumeResponse r;
  ASSERT_TRUE(server_.ControllerPublishVolume(&ctx_, &pub, &r).ok());
  EXPECT_EQ(r.publish_context().at("exportName"), LunNameFor("pvc-1"));
  ASSERT_TRUE(server_.ControllerPublishVolume(&ctx_, &pub, &r).ok());  // idempotent
  pub.set_node_id("n2@10.0.0.2");
  EXPECT_EQ(server_.ControllerPublishVolume(&ctx_, &pub, &r).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  *pub.mutable_volume_capability() =
      BlockCap(v1::VolumeCapability::AccessMode::MULTI_NODE_MULTI_WRITER);
  ASSERT_TRUE(server_.ControllerPublishVolume(&ctx_, &pub, &r).ok());
  EXPECT_EQ(big_->GetLun(LunNameFor("pvc-1"))->access().allowed_clients_size(), 2);
}

TEST_F(CsiControllerServerTest, GetVolumeOfUnreachableDeviceIsAbnormal) {
  v1::CreateVolumeResponse created;
  ASSERT_TRUE(Create("pvc-1", &created).ok());
  big_->set_reachable(false);
  v1::ControllerGetVolumeRequest req;
  req.set_volume_id(created.volume().volume_id());
  v1::ControllerGetVolumeResponse resp;
  ASSERT_TRUE(server_.ControllerGetVolume(&ctx_, &req, &resp).ok());
  EXPECT_TRUE(resp.status().volume_condition().abnormal());
  big_->set_reachable(true);
  ASSERT_TRUE(server_.ControllerGetVolume(&ctx_, &req, &resp).ok());
  EXPECT_FALSE(resp.status().volume_condition().abnormal());
}

v1::Topology Zone(const std::string& zone) {
  v1::Topology t;
  (*t.mutable_segments())[kZoneKey] = zone;
  return t;
}

TEST_F(CsiControllerServerTest, TopologyRequisiteAndPreferredChooseTheDevice) {
  ControllerServer zoned({small_, big_}, {{"small", "zone-a"}, {"big", "zone-b"}});
  v1::CreateVolumeRequest req;
  req.set_name("pvc-zoned");
  *req.add_volume_capabilities() = BlockCap(v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  *req.mutable_accessibility_requirements()->add_requisite() = Zone("zone-a");
  v1::CreateVolumeResponse resp;
  ASSERT_TRUE(zoned.CreateVolume(&ctx_, &req, &resp).ok());
  EXPECT_EQ(resp.volume().volume_id().rfind("small/", 0), 0u);  // though big has more free
  ASSERT_EQ(resp.volume().accessible_topology_size(), 1);
  EXPECT_EQ(resp.volume().accessible_topology(0).segments().at(kZoneKey), "zone-a");

  // Preferred zone-a among requisite a and b; then a repeat asking for zone-b only conflicts.
  req.set_name("pvc-preferred");
  *req.mutable_accessibility_requirements()->add_requisite() = Zone("zone-b");
  *req.mutable_accessibility_requirements()->add_preferred() = Zone("zone-a");
  ASSERT_TRUE(zoned.CreateVolume(&ctx_, &req, &resp).ok());
  EXPECT_EQ(resp.volume().volume_id().rfind("small/", 0), 0u);
  req.clear_accessibility_requirements();
  *req.mutable_accessibility_requirements()->add_requisite() = Zone("zone-b");
  EXPECT_EQ(zoned.CreateVolume(&ctx_, &req, &resp).error_code(), grpc::StatusCode::ALREADY_EXISTS);

  req.set_name("pvc-nowhere");
  req.clear_accessibility_requirements();
  *req.mutable_accessibility_requirements()->add_requisite() = Zone("zone-c");
  EXPECT_EQ(zoned.CreateVolume(&ctx_, &req, &resp).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);

  v1::GetCapacityRequest cap;
  *cap.mutable_accessible_topology() = Zone("zone-a");
  v1::GetCapacityResponse cresp;
  ASSERT_TRUE(zoned.GetCapacity(&ctx_, &cap, &cresp).ok());
  EXPECT_EQ(cresp.available_capacity(), int64_t{2} << 30);  // small: 8 GiB - 6 GiB
}

// --- Volumes that moved to another device ------------------------------------------

// Devices a, b (known) and c (known to the driver only by address, as a LUN's moved_to);
// volume a/<lun> created on a, then moved.
class CsiControllerMoveTest : public ::testing::Test {
 protected:
  CsiControllerMoveTest()
      : a_(std::make_shared<FakeDevice>("a", 8ull << 30, 0)),
        b_(std::make_shared<FakeDevice>("b", 8ull << 30, 0)),
        c_(std::make_shared<FakeDevice>("10.0.0.3:7000", 8ull << 30, 0)) {
    a_->set_address("10.0.0.1:7000");
    b_->set_address("10.0.0.2:7000");
    c_->set_address("10.0.0.3:7000");
    auto set = std::make_shared<DeviceSet>(
        [this](const std::string& name, const std::string& address) -> DeviceClientPtr {
          ++made_;
          if (address == c_->address()) return c_;
          return std::make_shared<FakeDevice>(name, 0, 0);
        });
    EXPECT_TRUE(set->AddFixed(DeviceInfo{a_, "za", "", ""}).ok());
    EXPECT_TRUE(set->AddFixed(DeviceInfo{b_, "zb", "", ""}).ok());
    server_ = std::make_unique<ControllerServer>(set);
    v1::CreateVolumeRequest req;
    req.set_name("pvc-1");
    *req.add_volume_capabilities() = BlockCap(v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
    (*req.mutable_parameters())["device"] = "a";
    v1::CreateVolumeResponse resp;
    EXPECT_TRUE(server_->CreateVolume(&ctx_, &req, &resp).ok());
    id_ = resp.volume().volume_id();
    lun_ = id_.substr(2);
  }

  grpc::Status Publish(const std::string& node, v1::ControllerPublishVolumeResponse* resp) {
    v1::ControllerPublishVolumeRequest req;
    req.set_volume_id(id_);
    req.set_node_id(node);
    *req.mutable_volume_capability() =
        BlockCap(v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
    return server_->ControllerPublishVolume(&ctx_, &req, resp);
  }
  grpc::Status Unpublish(const std::string& node) {
    v1::ControllerUnpublishVolumeRequest req;
    req.set_volume_id(id_);
    req.set_node_id(node);
    v1::ControllerUnpublishVolumeResponse resp;
    return server_->ControllerUnpublishVolume(&ctx_, &req, &resp);
  }
  grpc::Status Delete() {
    v1::DeleteVolumeRequest req;
    req.set_volume_id(id_);
    v1::DeleteVolumeResponse resp;
    return server_->DeleteVolume(&ctx_, &req, &resp);
  }

  grpc::ServerContext ctx_;
  std::shared_ptr<FakeDevice> a_, b_, c_;
  int made_ = 0;
  std::unique_ptr<ControllerServer> server_;
  std::string id_, lun_;
};

TEST_F(CsiControllerMoveTest, PublishSetsAccessOnTheHolderAndReturnsItsPortals) {
  ASSERT_EQ(id_.substr(0, 2), "a/");
  a_->MoveTo(lun_, b_.get());
  v1::ControllerPublishVolumeResponse resp;
  ASSERT_TRUE(Publish("n1@10.1.0.1", &resp).ok());
  EXPECT_EQ(resp.publish_context().at("portals"), "10.0.0.2:7000-portal");
  EXPECT_EQ(resp.publish_context().at("deviceAddress"), "10.0.0.2:7000");
  EXPECT_EQ(resp.publish_context().at("device"), "a");
  ASSERT_EQ(b_->Lun(lun_)->access().allowed_clients_size(), 1);
  EXPECT_EQ(b_->Lun(lun_)->access().allowed_clients(0), "10.1.0.1");
  EXPECT_EQ(a_->Lun(lun_)->access().allowed_clients_size(), 0);
}

TEST_F(CsiControllerMoveTest, UnpublishRemovesAccessOnTheHolderAndTheSource) {
  v1::ControllerPublishVolumeResponse resp;
  ASSERT_TRUE(Publish("n1@10.1.0.1", &resp).ok());  // before the move: on a
  a_->MoveTo(lun_, b_.get());                       // the access list moves with it
  ASSERT_EQ(b_->Lun(lun_)->access().allowed_clients_size(), 1);
  ASSERT_TRUE(Unpublish("n1@10.1.0.1").ok());
  EXPECT_EQ(a_->Lun(lun_)->access().allowed_clients_size(), 0);
  EXPECT_EQ(b_->Lun(lun_)->access().allowed_clients_size(), 0);
  EXPECT_TRUE(Unpublish("n1@10.1.0.1").ok());
}

TEST_F(CsiControllerMoveTest, DeleteRemovesHolderAndStubAndIsIdempotent) {
  a_->MoveTo(lun_, b_.get());
  ASSERT_TRUE(Delete().ok());
  EXPECT_FALSE(a_->Lun(lun_).has_value());
  EXPECT_FALSE(b_->Lun(lun_).has_value());
  EXPECT_TRUE(Delete().ok());
}

TEST_F(CsiControllerMoveTest, DeleteAfterAPartialDeleteRemovesTheStub) {
  a_->MoveTo(lun_, b_.get());
  ASSERT_TRUE(b_->DeleteLun(lun_).ok());  // the holder went, the stub stayed
  ASSERT_TRUE(Delete().ok());
  EXPECT_FALSE(a_->Lun(lun_).has_value());
}

TEST_F(CsiControllerMoveTest, DeleteOfAPublishedHolderIsFailedPrecondition) {
  a_->MoveTo(lun_, b_.get());
  v1::ControllerPublishVolumeResponse resp;
  ASSERT_TRUE(Publish("n1@10.1.0.1", &resp).ok());
  EXPECT_EQ(Delete().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(a_->Lun(lun_).has_value());
}

TEST_F(CsiControllerMoveTest, ExpandGrowsTheLunOnTheHolder) {
  a_->MoveTo(lun_, b_.get());
  v1::ControllerExpandVolumeRequest req;
  req.set_volume_id(id_);
  req.mutable_capacity_range()->set_required_bytes(int64_t{4} << 30);
  v1::ControllerExpandVolumeResponse resp;
  ASSERT_TRUE(server_->ControllerExpandVolume(&ctx_, &req, &resp).ok());
  EXPECT_EQ(resp.capacity_bytes(), int64_t{4} << 30);
  EXPECT_EQ(b_->Lun(lun_)->size_bytes(), uint64_t{4} << 30);
  EXPECT_NE(a_->Lun(lun_)->size_bytes(), uint64_t{4} << 30);
}

TEST_F(CsiControllerMoveTest, GetVolumeAndValidateFollowTwoMovesToAnUnknownDevice) {
  a_->MoveTo(lun_, b_.get());
  b_->MoveTo(lun_, c_.get());  // c is not a device of the driver: reached by address
  v1::ControllerGetVolumeRequest req;
  req.set_volume_id(id_);
  v1::ControllerGetVolumeResponse resp;
  ASSERT_TRUE(server_->ControllerGetVolume(&ctx_, &req, &resp).ok());
  EXPECT_EQ(resp.volume().volume_id(), id_);
  EXPECT_EQ(resp.volume().volume_context().at("portals"), "10.0.0.3:7000-portal");
  EXPECT_FALSE(resp.status().volume_condition().abnormal());
  EXPECT_NE(resp.status().volume_condition().message().find("10.0.0.3:7000"), std::string::npos);
  EXPECT_EQ(made_, 1);

  v1::ValidateVolumeCapabilitiesRequest vreq;
  vreq.set_volume_id(id_);
  *vreq.add_volume_capabilities() = BlockCap(v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  v1::ValidateVolumeCapabilitiesResponse vresp;
  ASSERT_TRUE(server_->ValidateVolumeCapabilities(&ctx_, &vreq, &vresp).ok());
  EXPECT_TRUE(vresp.has_confirmed());
  ASSERT_TRUE(c_->DeleteLun(lun_).ok());
  EXPECT_EQ(server_->ValidateVolumeCapabilities(&ctx_, &vreq, &vresp).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(CsiControllerMoveTest, ListVolumesListsAMovedVolumeOnceUnderItsId) {
  a_->MoveTo(lun_, b_.get());
  v1::ListVolumesRequest req;
  v1::ListVolumesResponse resp;
  ASSERT_TRUE(server_->ListVolumes(&ctx_, &req, &resp).ok());
  ASSERT_EQ(resp.entries_size(), 1);
  EXPECT_EQ(resp.entries(0).volume().volume_id(), id_);
  EXPECT_EQ(resp.entries(0).volume().volume_context().at("portals"), "10.0.0.2:7000-portal");
  EXPECT_EQ(resp.entries(0).volume().accessible_topology(0).segments().at(kZoneKey), "zb");
}

TEST_F(CsiControllerMoveTest, AMoveLoopIsFailedPrecondition) {
  a_->MoveTo(lun_, b_.get());
  sv1::Lun back = *b_->Lun(lun_);
  back.set_moved_to(a_->address());
  b_->Put(back);
  v1::ControllerPublishVolumeResponse resp;
  EXPECT_EQ(Publish("n1@10.1.0.1", &resp).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

// --- Placement over a registry ---------------------------------------------------------

v1::CreateVolumeRequest CreateRequest(const std::string& name) {
  v1::CreateVolumeRequest req;
  req.set_name(name);
  *req.add_volume_capabilities() = BlockCap(v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  return req;
}

TEST(CsiControllerPlacementTest, KubernetesOwnerGoesIntoMetadataAndOwner) {
  auto d = std::make_shared<FakeDevice>("d", 8ull << 30, 0);
  ControllerServer server({d});
  grpc::ServerContext ctx;
  auto req = CreateRequest("pvc-x");
  auto& p = *req.mutable_parameters();
  p["csi.storage.k8s.io/pvc/name"] = "data";
  p["csi.storage.k8s.io/pvc/namespace"] = "team-a";
  p["csi.storage.k8s.io/pv/name"] = "pvc-x";
  p["csi.storage.k8s.io/fstype"] = "ext4";  // other CO keys are still ignored
  v1::CreateVolumeResponse resp;
  ASSERT_TRUE(server.CreateVolume(&ctx, &req, &resp).ok());
  ASSERT_EQ(d->creates().size(), 1u);
  const sv1::CreateLunRequest c = d->creates()[0];
  EXPECT_EQ(c.owner(), "team-a");
  EXPECT_EQ(c.metadata().size(), 3u);
  EXPECT_EQ(c.metadata().at("csi.storage.k8s.io/pvc/name"), "data");
  EXPECT_EQ(c.metadata().at("csi.storage.k8s.io/pvc/namespace"), "team-a");
  EXPECT_EQ(c.metadata().at("csi.storage.k8s.io/pv/name"), "pvc-x");
  // Retried: the same volume. An explicit owner wins over the namespace.
  ASSERT_TRUE(server.CreateVolume(&ctx, &req, &resp).ok());
  auto req2 = CreateRequest("pvc-y");
  (*req2.mutable_parameters())["csi.storage.k8s.io/pvc/namespace"] = "team-a";
  (*req2.mutable_parameters())["owner"] = "billing";
  ASSERT_TRUE(server.CreateVolume(&ctx, &req2, &resp).ok());
  EXPECT_EQ(d->creates().back().owner(), "billing");
}

TEST(CsiControllerPlacementTest, RefusedDevicesAreSkippedAndNamedWhenNoneIsLeft) {
  auto busy = std::make_shared<FakeDevice>("busy", 8ull << 30, 0);
  auto idle = std::make_shared<FakeDevice>("idle", 8ull << 30, 4ull << 30);
  auto set = std::make_shared<DeviceSet>();
  ASSERT_TRUE(set->AddFixed(DeviceInfo{busy, "", "", "StorageDevice busy is Maintenance"}).ok());
  ASSERT_TRUE(set->AddFixed(DeviceInfo{idle, "", "", ""}).ok());
  ControllerServer server(set);
  grpc::ServerContext ctx;
  auto req = CreateRequest("pvc-1");
  v1::CreateVolumeResponse resp;
  ASSERT_TRUE(server.CreateVolume(&ctx, &req, &resp).ok());  // idle has less free, busy refused
  EXPECT_EQ(resp.volume().volume_id().substr(0, 5), "idle/");

  auto set2 = std::make_shared<DeviceSet>();
  ASSERT_TRUE(set2->AddFixed(DeviceInfo{busy, "", "", "StorageDevice busy is Maintenance"}).ok());
  ControllerServer refused(set2);
  auto st = refused.CreateVolume(&ctx, &req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(st.error_message().find("busy is Maintenance"), std::string::npos)
      << st.error_message();
}

TEST(CsiControllerPlacementTest, AllDevicesUnreachableIsUnavailable) {
  auto d = std::make_shared<FakeDevice>("d", 8ull << 30, 0);
  ControllerServer server({d});
  grpc::ServerContext ctx;
  auto req = CreateRequest("pvc-1");
  v1::CreateVolumeResponse resp;
  d->set_reachable(false);
  EXPECT_EQ(server.CreateVolume(&ctx, &req, &resp).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST(CsiControllerPlacementTest, EqualFreeSpaceGoesToTheFirstName) {
  auto x = std::make_shared<FakeDevice>("x", 8ull << 30, 0);
  auto w = std::make_shared<FakeDevice>("w", 8ull << 30, 0);
  ControllerServer server({x, w});
  grpc::ServerContext ctx;
  auto req = CreateRequest("pvc-1");
  v1::CreateVolumeResponse resp;
  ASSERT_TRUE(server.CreateVolume(&ctx, &req, &resp).ok());
  EXPECT_EQ(resp.volume().volume_id().substr(0, 2), "w/");
}

TEST(CsiIdentityServerTest, ProbeIsNotReadyWhileNoDeviceAnswers) {
  auto d = std::make_shared<FakeDevice>("d", 1 << 30, 0);
  IdentityServer identity("0.1.0", true, false, {d});
  grpc::ServerContext ctx;
  v1::ProbeRequest req;
  v1::ProbeResponse resp;
  d->set_reachable(false);
  ASSERT_TRUE(identity.Probe(&ctx, &req, &resp).ok());
  EXPECT_FALSE(resp.ready().value());
  d->set_reachable(true);
  ASSERT_TRUE(identity.Probe(&ctx, &req, &resp).ok());
  EXPECT_TRUE(resp.ready().value());
}

}  // namespace
}  // namespace strata::csi
