// ControllerServer and IdentityServer against in-memory devices (FakeDevice), for the
// logic the real daemons make hard to reach: placement, unreachable devices, ABORTED.
#include "controller_server.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <mutex>

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
    sv1::Lun lun;
    lun.set_name(req.name());
    lun.set_size_bytes(req.size_bytes());
    lun.set_tier(sv1::TIER_CLASS_SSD);
    lun.set_dedup(req.dedup());
    lun.set_owner(req.owner());
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
  const uint64_t capacity_, used_;
  std::mutex mu_;
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
