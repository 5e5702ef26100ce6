// CSI conformance of strata-csi's Identity and Controller services in the manner of
// csi-sanity: real strata-stored devices on loopback behind `strata-csi --mode
// controller` on a unix socket, driven by a csi.v1 gRPC client. Every check of the
// access list goes to the device's own management API (GetLun), not to the driver.
//
// Usage: strata_csi_controller_sanity_test STRATA_STORED STRATA_CSI STRATA_ADMIN [gtest flags]
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "csi/v1/csi.grpc.pb.h"
#include "strata/common/process.h"
#include "strata/storage/v1/storage.grpc.pb.h"

extern char** environ;

namespace {

namespace v1 = ::csi::v1;
namespace sv1 = ::strata::storage::v1;
namespace fs = std::filesystem;
using Mode = v1::VolumeCapability::AccessMode;
using grpc::StatusCode;

std::string g_stored;
std::string g_csi;
std::string g_admin;

// Temp dirs (daemon logs) are removed after a passing run unless STRATA_KEEP_TEST_DIRS is set.
bool KeepDirs() { return std::getenv("STRATA_KEEP_TEST_DIRS") != nullptr; }

using Child = strata::testing::ChildProcess;
using strata::testing::WaitFor;

struct Stored {
  std::unique_ptr<Child> proc;
  std::string grpc;
  std::unique_ptr<sv1::StorageDevice::Stub> stub;
};

// Starts strata-stored NAME with `tiers` (CLASS=SIZE; directories under `dir`) and
// two NBD portals, and waits for its ready file. `grpc` is where its management API
// listens (a free port by default; a restart passes the address it had).
Stored StartStored(const fs::path& dir, const std::string& name,
                   const std::vector<std::pair<std::string, std::string>>& tiers,
                   const std::string& grpc = "127.0.0.1:0",
                   const std::vector<std::string>& extra = {}) {
  Stored s;
  const fs::path ready = dir / (name + ".ready");
  fs::remove(ready);
  std::vector<std::string> argv = {g_stored,      "--device",   name,           "--portal",
                                   "127.0.0.1:0", "--portal",   "127.0.0.2:0",  "--grpc",
                                   grpc,          "--insecure", "--ready-file", ready.string()};
  for (const auto& [cls, size] : tiers) {
    argv.push_back("--tier");
    argv.push_back(cls + "=" + (dir / (name + "-" + cls)).string() + ":" + size);
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  s.proc = std::make_unique<Child>(argv, (dir / (name + ".log")).string());
  bool ok = WaitFor(
      [&] {
        std::error_code ec;
        return fs::exists(ready, ec) && fs::file_size(ready, ec) > 0;
      },
      30, s.proc.get());
  if (!ok) return s;
  std::ifstream in(ready);
  auto j = nlohmann::json::parse(in);
  s.grpc = j.at("grpc").get<std::string>();
  s.stub =
      sv1::StorageDevice::NewStub(grpc::CreateChannel(s.grpc, grpc::InsecureChannelCredentials()));
  return s;
}

struct Csi {
  std::unique_ptr<Child> proc;
  std::unique_ptr<v1::Identity::Stub> identity;
  std::unique_ptr<v1::Controller::Stub> controller;
  std::unique_ptr<v1::Node::Stub> node;
};

Csi StartCsi(const fs::path& dir, const std::string& name,
             const std::vector<std::pair<std::string, std::string>>& devices,
             const std::vector<std::string>& extra = {"--mode", "controller"}) {
  Csi c;
  const std::string endpoint = "unix://" + (dir / (name + ".sock")).string();
  std::vector<std::string> argv = {g_csi,        "--endpoint",  endpoint,
                                   "--insecure", "--log-level", "debug"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  for (const auto& [dev, addr] : devices) {
    argv.push_back("--device");
    argv.push_back(dev + "=" + addr);
  }
  c.proc = std::make_unique<Child>(argv, (dir / (name + ".log")).string());
  // Connect only once the socket exists: an early failed connect puts the channel in
  // reconnect backoff (seconds).
  WaitFor([&] { return fs::exists(dir / (name + ".sock")); }, 30, c.proc.get());
  auto channel = grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials());
  c.identity = v1::Identity::NewStub(channel);
  c.controller = v1::Controller::NewStub(channel);
  c.node = v1::Node::NewStub(channel);
  WaitFor(
      [&] {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
        v1::GetPluginInfoResponse r;
        return c.identity->GetPluginInfo(&ctx, v1::GetPluginInfoRequest(), &r).ok();
      },
      30, c.proc.get());
  return c;
}

v1::VolumeCapability Block(Mode::Mode mode = Mode::SINGLE_NODE_WRITER) {
  v1::VolumeCapability c;
  c.mutable_block();
  c.mutable_access_mode()->set_mode(mode);
  return c;
}

v1::VolumeCapability Mount(Mode::Mode mode = Mode::SINGLE_NODE_WRITER) {
  v1::VolumeCapability c;
  c.mutable_mount()->set_fs_type("ext4");
  c.mutable_access_mode()->set_mode(mode);
  return c;
}

class ControllerSanityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/strata-csi-sanity.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = new fs::path(tmpl);
    // dev-a: ssd + sata; dev-b: a larger ssd only.
    dev_a_ = new Stored(StartStored(*dir_, "dev-a", {{"ssd", "1GiB"}, {"sata", "1GiB"}}));
    dev_b_ = new Stored(StartStored(*dir_, "dev-b", {{"ssd", "2GiB"}}));
    ASSERT_FALSE(dev_a_->grpc.empty()) << "strata-stored dev-a did not start; see " << *dir_;
    ASSERT_FALSE(dev_b_->grpc.empty()) << "strata-stored dev-b did not start; see " << *dir_;
    csi_ = new Csi(StartCsi(*dir_, "csi", {{"dev-a", dev_a_->grpc}, {"dev-b", dev_b_->grpc}},
                            {"--mode", "controller", "--device-topology", "dev-a=zone-a",
                             "--device-topology", "dev-b=zone-b"}));
    ASSERT_TRUE(csi_->proc->Running()) << "strata-csi did not start; see " << *dir_;
  }
  static void TearDownTestSuite() {
    delete csi_;
    delete dev_a_;
    delete dev_b_;
    if (dir_ && !KeepDirs() && !::testing::UnitTest::GetInstance()->Failed()) fs::remove_all(*dir_);
    delete dir_;
  }
  void SetUp() override {
    ASSERT_TRUE(csi_ && csi_->proc->Running()) << "the test environment did not start";
  }

  template <typename Req, typename Resp, typename Method>
  static grpc::Status Call(Method method, const Req& req, Resp* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return (csi_->controller.get()->*method)(&ctx, req, resp);
  }

  static v1::CreateVolumeRequest CreateReq(const std::string& name, int64_t required = 0) {
    v1::CreateVolumeRequest req;
    req.set_name(name);
    *req.add_volume_capabilities() = Block();
    if (required) req.mutable_capacity_range()->set_required_bytes(required);
    return req;
  }

  static v1::Volume MustCreate(const v1::CreateVolumeRequest& req) {
    v1::CreateVolumeResponse resp;
    grpc::Status s = Call(&v1::Controller::Stub::CreateVolume, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.volume();
  }

  static void MustDelete(const std::string& volume_id) {
    v1::DeleteVolumeRequest req;
    req.set_volume_id(volume_id);
    v1::DeleteVolumeResponse resp;
    grpc::Status s = Call(&v1::Controller::Stub::DeleteVolume, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
  }

  // The LUN behind a volume id, from the device's own API.
  static grpc::Status DeviceLun(const std::string& volume_id, sv1::Lun* lun) {
    auto slash = volume_id.find('/');
    Stored* dev = volume_id.substr(0, slash) == "dev-a" ? dev_a_ : dev_b_;
    grpc::ClientContext ctx;
    sv1::GetLunRequest req;
    req.set_name(volume_id.substr(slash + 1));
    return dev->stub->GetLun(&ctx, req, lun);
  }

  // One 4 KiB block of `c` at `off` of LUN `lun` of `dev`, through the device's data API.
  static grpc::Status WriteBlock(Stored* dev, const std::string& lun, uint64_t off, char c) {
    grpc::ClientContext ctx;
    sv1::WriteLunDataResponse wr;
    auto w = dev->stub->WriteLunData(&ctx, &wr);
    sv1::LunData d;
    d.set_name(lun);
    d.set_offset(off);
    d.set_data(std::string(4096, c));
    d.set_fua(true);
    EXPECT_TRUE(w->Write(d));
    w->WritesDone();
    return w->Finish();
  }
  // The first byte of the 4 KiB block at `off` ('?' when it cannot be read).
  static char ReadBlock(Stored* dev, const std::string& lun, uint64_t off) {
    grpc::ClientContext ctx;
    sv1::ReadLunDataRequest r;
    r.set_name(lun);
    r.set_offset(off);
    r.set_length(4096);
    sv1::LunData d;
    grpc::Status s = dev->stub->ReadLunData(&ctx, r, &d);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return d.data().empty() ? '?' : d.data()[0];
  }
  static std::string LunOf(const std::string& volume_id) {
    return volume_id.substr(volume_id.find('/') + 1);
  }
  // Waits until the LUN of `volume_id` is on `tier` with no tier move running.
  static bool OnTier(const std::string& volume_id, sv1::TierClass tier) {
    return WaitFor(
        [&] {
          sv1::Lun lun;
          return DeviceLun(volume_id, &lun).ok() && lun.tier() == tier &&
                 lun.migration().state() != sv1::MIGRATION_STATE_RUNNING;
        },
        60, csi_->proc.get());
  }

  static std::set<std::string> Clients(const std::string& volume_id) {
    sv1::Lun lun;
    EXPECT_TRUE(DeviceLun(volume_id, &lun).ok());
    return {lun.access().allowed_clients().begin(), lun.access().allowed_clients().end()};
  }

  static fs::path* dir_;
  static Stored* dev_a_;
  static Stored* dev_b_;
  static Csi* csi_;
};

fs::path* ControllerSanityTest::dir_ = nullptr;
Stored* ControllerSanityTest::dev_a_ = nullptr;
Stored* ControllerSanityTest::dev_b_ = nullptr;
Csi* ControllerSanityTest::csi_ = nullptr;

using Stub = v1::Controller::Stub;

TEST_F(ControllerSanityTest, IdentityInfoCapabilitiesProbe) {
  grpc::ClientContext c1, c2, c3;
  v1::GetPluginInfoResponse info;
  ASSERT_TRUE(csi_->identity->GetPluginInfo(&c1, {}, &info).ok());
  EXPECT_EQ(info.name(), "block.csi.strata.io");
  EXPECT_FALSE(info.vendor_version().empty());
  v1::GetPluginCapabilitiesResponse caps;
  ASSERT_TRUE(csi_->identity->GetPluginCapabilities(&c2, {}, &caps).ok());
  bool controller = false, topology = false;
  for (const auto& c : caps.capabilities()) {
    controller |= c.service().type() == v1::PluginCapability::Service::CONTROLLER_SERVICE;
    topology |=
        c.service().type() == v1::PluginCapability::Service::VOLUME_ACCESSIBILITY_CONSTRAINTS;
  }
  EXPECT_TRUE(controller);
  EXPECT_TRUE(topology) << "zones are configured";
  v1::ProbeResponse probe;
  ASSERT_TRUE(csi_->identity->Probe(&c3, {}, &probe).ok());
  EXPECT_TRUE(probe.ready().value());
}

TEST_F(ControllerSanityTest, ControllerCapabilities) {
  v1::ControllerGetCapabilitiesResponse resp;
  ASSERT_TRUE(
      Call(&Stub::ControllerGetCapabilities, v1::ControllerGetCapabilitiesRequest(), &resp).ok());
  std::set<int> got;
  for (const auto& c : resp.capabilities()) got.insert(c.rpc().type());
  using Rpc = v1::ControllerServiceCapability::RPC;
  for (int want :
       {Rpc::LIST_VOLUMES_PUBLISHED_NODES, Rpc::CREATE_DELETE_VOLUME, Rpc::PUBLISH_UNPUBLISH_VOLUME,
        Rpc::LIST_VOLUMES, Rpc::GET_CAPACITY, Rpc::EXPAND_VOLUME, Rpc::GET_VOLUME,
        Rpc::VOLUME_CONDITION, Rpc::SINGLE_NODE_MULTI_WRITER, Rpc::CREATE_DELETE_SNAPSHOT,
        Rpc::LIST_SNAPSHOTS, Rpc::MODIFY_VOLUME}) {
    EXPECT_TRUE(got.count(want)) << want;
  }
}

TEST_F(ControllerSanityTest, CreateVolumeRejectsBadRequests) {
  v1::CreateVolumeResponse resp;
  auto req = CreateReq("");
  grpc::Status s = Call(&Stub::CreateVolume, req, &resp);
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("name"), std::string::npos) << s.error_message();

  req = CreateReq("no-caps");
  req.clear_volume_capabilities();
  s = Call(&Stub::CreateVolume, req, &resp);
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("volume_capabilities"), std::string::npos);

  req = CreateReq("bad-range", 1 << 20);
  req.mutable_capacity_range()->set_limit_bytes(4096);
  EXPECT_EQ(Call(&Stub::CreateVolume, req, &resp).error_code(), StatusCode::INVALID_ARGUMENT);

  for (auto mode : {Mode::MULTI_NODE_MULTI_WRITER, Mode::MULTI_NODE_SINGLE_WRITER}) {
    req = CreateReq("mount-multi");
    *req.mutable_volume_capabilities(0) = Mount(mode);
    EXPECT_EQ(Call(&Stub::CreateVolume, req, &resp).error_code(), StatusCode::INVALID_ARGUMENT);
  }

  req = CreateReq("bad-tier");
  (*req.mutable_parameters())["tier"] = "nvme";
  s = Call(&Stub::CreateVolume, req, &resp);
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("parameters.tier"), std::string::npos);

  req = CreateReq("bad-dedup");
  (*req.mutable_parameters())["dedup"] = "maybe";
  EXPECT_EQ(Call(&Stub::CreateVolume, req, &resp).error_code(), StatusCode::INVALID_ARGUMENT);

  req = CreateReq("too-big", int64_t{64} << 30);
  EXPECT_EQ(Call(&Stub::CreateVolume, req, &resp).error_code(), StatusCode::RESOURCE_EXHAUSTED);
  req = CreateReq("no-sas");
  (*req.mutable_parameters())["tier"] = "sas";
  EXPECT_EQ(Call(&Stub::CreateVolume, req, &resp).error_code(), StatusCode::RESOURCE_EXHAUSTED);
}

TEST_F(ControllerSanityTest, CreateIsIdempotentUnpublishedAndDeleteIsIdempotent) {
  auto req = CreateReq("sanity-idem", 5000);
  v1::Volume a = MustCreate(req);
  v1::Volume b = MustCreate(req);
  EXPECT_EQ(a.volume_id(), b.volume_id());
  EXPECT_EQ(a.capacity_bytes(), 8192);  // rounded up to 4 KiB
  EXPECT_FALSE(a.volume_context().at("wwn").empty());
  EXPECT_NE(a.volume_context().at("portals").find(','), std::string::npos);  // two portals
  // The larger ssd (dev-b) has the most free space.
  EXPECT_EQ(a.volume_id().rfind("dev-b/csi-", 0), 0u) << a.volume_id();

  sv1::Lun lun;
  ASSERT_TRUE(DeviceLun(a.volume_id(), &lun).ok());
  EXPECT_EQ(lun.access().allowed_clients_size(), 0) << "nobody until published";
  EXPECT_EQ(lun.size_bytes(), 8192u);

  v1::CreateVolumeResponse resp;
  auto bigger = CreateReq("sanity-idem", 1 << 20);
  EXPECT_EQ(Call(&Stub::CreateVolume, bigger, &resp).error_code(), StatusCode::ALREADY_EXISTS);

  MustDelete(a.volume_id());
  EXPECT_EQ(DeviceLun(a.volume_id(), &lun).error_code(), StatusCode::NOT_FOUND);
  MustDelete(a.volume_id());  // again: success
  MustDelete("dev-a/csi-neverexisted");
  MustDelete("not-a-volume-id");

  v1::DeleteVolumeRequest empty;
  v1::DeleteVolumeResponse dresp;
  EXPECT_EQ(Call(&Stub::DeleteVolume, empty, &dresp).error_code(), StatusCode::INVALID_ARGUMENT);
}

TEST_F(ControllerSanityTest, ParametersChooseTierDeviceDedupOwner) {
  auto req = CreateReq("sanity-sata", 1 << 20);
  (*req.mutable_parameters())["tier"] = "sata";
  (*req.mutable_parameters())["dedup"] = "true";
  (*req.mutable_parameters())["owner"] = "team-a";
  v1::Volume v = MustCreate(req);
  EXPECT_EQ(v.volume_id().rfind("dev-a/", 0), 0u) << "only dev-a has sata";
  sv1::Lun lun;
  ASSERT_TRUE(DeviceLun(v.volume_id(), &lun).ok());
  EXPECT_EQ(lun.tier(), sv1::TIER_CLASS_SATA);
  EXPECT_TRUE(lun.dedup());
  EXPECT_EQ(lun.owner(), "team-a");
  // Same name, other dedup: a conflict.
  (*req.mutable_parameters())["dedup"] = "false";
  v1::CreateVolumeResponse resp;
  EXPECT_EQ(Call(&Stub::CreateVolume, req, &resp).error_code(), StatusCode::ALREADY_EXISTS);
  MustDelete(v.volume_id());

  auto on_a = CreateReq("sanity-on-a", 1 << 20);
  (*on_a.mutable_parameters())["device"] = "dev-a";
  v = MustCreate(on_a);
  EXPECT_EQ(v.volume_id().rfind("dev-a/", 0), 0u);
  MustDelete(v.volume_id());
  (*on_a.mutable_parameters())["device"] = "dev-z";
  EXPECT_EQ(Call(&Stub::CreateVolume, on_a, &resp).error_code(), StatusCode::INVALID_ARGUMENT);
}

TEST_F(ControllerSanityTest, PublishUnpublishChangeTheDeviceAccessList) {
  v1::Volume v = MustCreate(CreateReq("sanity-publish", 1 << 20));
  v1::ControllerPublishVolumeRequest pub;
  v1::ControllerPublishVolumeResponse presp;
  // Bad requests.
  EXPECT_EQ(Call(&Stub::ControllerPublishVolume, pub, &presp).error_code(),
            StatusCode::INVALID_ARGUMENT);
  pub.set_volume_id(v.volume_id());
  EXPECT_EQ(Call(&Stub::ControllerPublishVolume, pub, &presp).error_code(),
            StatusCode::INVALID_ARGUMENT);  // no node_id
  pub.set_node_id("node-1@127.0.0.1");
  EXPECT_EQ(Call(&Stub::ControllerPublishVolume, pub, &presp).error_code(),
            StatusCode::INVALID_ARGUMENT);  // no capability
  *pub.mutable_volume_capability() = Block(Mode::SINGLE_NODE_WRITER);
  pub.set_volume_id("dev-a/csi-missing");
  EXPECT_EQ(Call(&Stub::ControllerPublishVolume, pub, &presp).error_code(), StatusCode::NOT_FOUND);
  pub.set_volume_id(v.volume_id());

  // Publish, twice (idempotent): the node's IP and nobody else.
  ASSERT_TRUE(Call(&Stub::ControllerPublishVolume, pub, &presp).ok());
  ASSERT_TRUE(Call(&Stub::ControllerPublishVolume, pub, &presp).ok());
  EXPECT_EQ(Clients(v.volume_id()), std::set<std::string>{"127.0.0.1"});
  EXPECT_EQ(presp.publish_context().at("wwn"), v.volume_context().at("wwn"));
  EXPECT_EQ(presp.publish_context().at("portals"), v.volume_context().at("portals"));
  EXPECT_FALSE(presp.publish_context().at("exportName").empty());
  // Where the node asks whether the LUN moved to another device.
  EXPECT_EQ(presp.publish_context().at("deviceAddress"),
            v.volume_context().at("device") == "dev-a" ? dev_a_->grpc : dev_b_->grpc);

  // A single-node volume cannot go to a second node; a multi-node block one can.
  auto pub2 = pub;
  pub2.set_node_id("node-2@127.0.0.2");
  EXPECT_EQ(Call(&Stub::ControllerPublishVolume, pub2, &presp).error_code(),
            StatusCode::FAILED_PRECONDITION);
  *pub2.mutable_volume_capability() = Block(Mode::MULTI_NODE_MULTI_WRITER);
  ASSERT_TRUE(Call(&Stub::ControllerPublishVolume, pub2, &presp).ok());
  EXPECT_EQ(Clients(v.volume_id()), (std::set<std::string>{"127.0.0.1", "127.0.0.2"}));

  // Deleting a published volume is refused.
  v1::DeleteVolumeRequest del;
  del.set_volume_id(v.volume_id());
  v1::DeleteVolumeResponse dresp;
  EXPECT_EQ(Call(&Stub::DeleteVolume, del, &dresp).error_code(), StatusCode::FAILED_PRECONDITION);

  // Unpublish node-1: it is off the list, node-2 stays; again: still OK.
  v1::ControllerUnpublishVolumeRequest unpub;
  v1::ControllerUnpublishVolumeResponse uresp;
  EXPECT_EQ(Call(&Stub::ControllerUnpublishVolume, unpub, &uresp).error_code(),
            StatusCode::INVALID_ARGUMENT);
  unpub.set_volume_id(v.volume_id());
  unpub.set_node_id("node-1@127.0.0.1");
  ASSERT_TRUE(Call(&Stub::ControllerUnpublishVolume, unpub, &uresp).ok());
  ASSERT_TRUE(Call(&Stub::ControllerUnpublishVolume, unpub, &uresp).ok());
  EXPECT_EQ(Clients(v.volume_id()), std::set<std::string>{"127.0.0.2"});
  unpub.set_node_id("node-2@127.0.0.2");
  ASSERT_TRUE(Call(&Stub::ControllerUnpublishVolume, unpub, &uresp).ok());
  EXPECT_TRUE(Clients(v.volume_id()).empty());
  // Unknown volume: already unpublished.
  unpub.set_volume_id("dev-b/csi-missing");
  EXPECT_TRUE(Call(&Stub::ControllerUnpublishVolume, unpub, &uresp).ok());
  MustDelete(v.volume_id());
}

TEST_F(ControllerSanityTest, ValidateVolumeCapabilities) {
  v1::Volume v = MustCreate(CreateReq("sanity-validate", 1 << 20));
  v1::ValidateVolumeCapabilitiesRequest req;
  v1::ValidateVolumeCapabilitiesResponse resp;
  req.set_volume_id(v.volume_id());
  EXPECT_EQ(Call(&Stub::ValidateVolumeCapabilities, req, &resp).error_code(),
            StatusCode::INVALID_ARGUMENT);  // no capabilities
  *req.add_volume_capabilities() = Block(Mode::MULTI_NODE_MULTI_WRITER);
  *req.add_volume_capabilities() = Mount(Mode::SINGLE_NODE_WRITER);
  ASSERT_TRUE(Call(&Stub::ValidateVolumeCapabilities, req, &resp).ok());
  EXPECT_TRUE(resp.has_confirmed());
  EXPECT_EQ(resp.confirmed().volume_capabilities_size(), 2);

  *req.add_volume_capabilities() = Mount(Mode::MULTI_NODE_MULTI_WRITER);
  resp.Clear();
  ASSERT_TRUE(Call(&Stub::ValidateVolumeCapabilities, req, &resp).ok());
  EXPECT_FALSE(resp.has_confirmed());
  EXPECT_FALSE(resp.message().empty());

  req.set_volume_id("dev-a/csi-missing");
  EXPECT_EQ(Call(&Stub::ValidateVolumeCapabilities, req, &resp).error_code(),
            StatusCode::NOT_FOUND);
  MustDelete(v.volume_id());
}

TEST_F(ControllerSanityTest, ListVolumesPages) {
  std::set<std::string> created;
  for (int i = 0; i < 5; ++i) {
    created.insert(MustCreate(CreateReq("sanity-list-" + std::to_string(i), 1 << 20)).volume_id());
  }
  std::set<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    v1::ListVolumesRequest req;
    req.set_max_entries(2);
    req.set_starting_token(token);
    v1::ListVolumesResponse resp;
    ASSERT_TRUE(Call(&Stub::ListVolumes, req, &resp).ok());
    EXPECT_LE(resp.entries_size(), 2);
    for (const auto& e : resp.entries()) {
      EXPECT_TRUE(seen.insert(e.volume().volume_id()).second) << "listed twice";
    }
    token = resp.next_token();
    ASSERT_LT(++pages, 100);
  } while (!token.empty());
  for (const auto& id : created) EXPECT_TRUE(seen.count(id)) << id;
  EXPECT_GE(pages, 3);

  v1::ListVolumesRequest bad;
  bad.set_starting_token("invalid-token");
  v1::ListVolumesResponse resp;
  EXPECT_EQ(Call(&Stub::ListVolumes, bad, &resp).error_code(), StatusCode::ABORTED);
  bad.set_starting_token("");
  bad.set_max_entries(-1);
  EXPECT_EQ(Call(&Stub::ListVolumes, bad, &resp).error_code(), StatusCode::INVALID_ARGUMENT);
  for (const auto& id : created) MustDelete(id);
}

TEST_F(ControllerSanityTest, GetCapacityPerTier) {
  auto capacity = [](const std::string& tier) {
    v1::GetCapacityRequest req;
    if (!tier.empty()) (*req.mutable_parameters())["tier"] = tier;
    *req.add_volume_capabilities() = Block();
    v1::GetCapacityResponse resp;
    grpc::Status s = Call(&Stub::GetCapacity, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.available_capacity();
  };
  EXPECT_GT(capacity("ssd"), int64_t{2} << 30);  // 1 GiB + 2 GiB, minus little
  EXPECT_LE(capacity("ssd"), int64_t{3} << 30);
  EXPECT_GT(capacity("sata"), 0);
  EXPECT_LE(capacity("sata"), int64_t{1} << 30);
  EXPECT_EQ(capacity("sas"), 0);
  v1::GetCapacityRequest bad;
  (*bad.mutable_parameters())["tier"] = "floppy";
  v1::GetCapacityResponse resp;
  EXPECT_EQ(Call(&Stub::GetCapacity, bad, &resp).error_code(), StatusCode::INVALID_ARGUMENT);
}

TEST_F(ControllerSanityTest, ExpandVolume) {
  v1::Volume v = MustCreate(CreateReq("sanity-expand", 1 << 20));
  v1::ControllerExpandVolumeRequest req;
  v1::ControllerExpandVolumeResponse resp;
  req.set_volume_id(v.volume_id());
  EXPECT_EQ(Call(&Stub::ControllerExpandVolume, req, &resp).error_code(),
            StatusCode::INVALID_ARGUMENT);  // no capacity_range
  req.mutable_capacity_range()->set_required_bytes(2 << 20);
  *req.mutable_volume_capability() = Block();
  ASSERT_TRUE(Call(&Stub::ControllerExpandVolume, req, &resp).ok());
  ASSERT_TRUE(Call(&Stub::ControllerExpandVolume, req, &resp).ok());  // idempotent
  EXPECT_EQ(resp.capacity_bytes(), 2 << 20);
  // The node's nbd devices must reconnect to see the new size.
  EXPECT_TRUE(resp.node_expansion_required());
  sv1::Lun lun;
  ASSERT_TRUE(DeviceLun(v.volume_id(), &lun).ok());
  EXPECT_EQ(lun.size_bytes(), 2u << 20);
  req.set_volume_id("dev-b/csi-missing");
  EXPECT_EQ(Call(&Stub::ControllerExpandVolume, req, &resp).error_code(), StatusCode::NOT_FOUND);
  MustDelete(v.volume_id());
}

// The CSI spec's error tables, in the order a CO sees them: a malformed request is
// INVALID_ARGUMENT whatever exists; then a volume that does not exist is NOT_FOUND whatever
// the node id; then a node that does not exist is NOT_FOUND; removals of what is gone are OK.
TEST_F(ControllerSanityTest, ErrorsFollowTheSpecOrder) {
  v1::Volume v = MustCreate(CreateReq("sanity-errors", 1 << 20));

  v1::ControllerPublishVolumeRequest pub;
  v1::ControllerPublishVolumeResponse presp;
  pub.set_volume_id("dev-a/csi-missing");
  pub.set_node_id("not-a-node-id");
  EXPECT_EQ(Call(&Stub::ControllerPublishVolume, pub, &presp).error_code(),
            StatusCode::INVALID_ARGUMENT);  // no capability, on a missing volume
  *pub.mutable_volume_capability() = Block();
  EXPECT_EQ(Call(&Stub::ControllerPublishVolume, pub, &presp).error_code(),
            StatusCode::NOT_FOUND);  // missing volume before unknown node
  pub.set_node_id("node-1@127.0.0.1");
  EXPECT_EQ(Call(&Stub::ControllerPublishVolume, pub, &presp).error_code(), StatusCode::NOT_FOUND);
  pub.set_volume_id("dev-z/csi-missing");  // a device this driver does not know
  EXPECT_EQ(Call(&Stub::ControllerPublishVolume, pub, &presp).error_code(), StatusCode::NOT_FOUND);
  pub.set_volume_id("no-slash");  // never an id of ours
  EXPECT_EQ(Call(&Stub::ControllerPublishVolume, pub, &presp).error_code(), StatusCode::NOT_FOUND);
  pub.set_volume_id(v.volume_id());
  for (const char* node : {"some-fake-node-id", "name@not-an-ip", "@127.0.0.1"}) {
    pub.set_node_id(node);
    grpc::Status s = Call(&Stub::ControllerPublishVolume, pub, &presp);
    EXPECT_EQ(s.error_code(), StatusCode::NOT_FOUND) << node << ": " << s.error_message();
    EXPECT_NE(s.error_message().find("node_id"), std::string::npos) << s.error_message();
  }
  EXPECT_TRUE(Clients(v.volume_id()).empty());  // nothing was half-published

  v1::ControllerUnpublishVolumeRequest unpub;
  v1::ControllerUnpublishVolumeResponse uresp;
  unpub.set_volume_id(v.volume_id());
  unpub.set_node_id("some-fake-node-id");  // a node we never published to
  EXPECT_TRUE(Call(&Stub::ControllerUnpublishVolume, unpub, &uresp).ok());
  unpub.set_volume_id("dev-z/csi-missing");
  EXPECT_TRUE(Call(&Stub::ControllerUnpublishVolume, unpub, &uresp).ok());

  v1::ValidateVolumeCapabilitiesRequest val;
  v1::ValidateVolumeCapabilitiesResponse vresp;
  val.set_volume_id("dev-a/csi-missing");
  EXPECT_EQ(Call(&Stub::ValidateVolumeCapabilities, val, &vresp).error_code(),
            StatusCode::INVALID_ARGUMENT);  // no capabilities, on a missing volume
  *val.add_volume_capabilities() = Block();
  EXPECT_EQ(Call(&Stub::ValidateVolumeCapabilities, val, &vresp).error_code(),
            StatusCode::NOT_FOUND);

  v1::ControllerExpandVolumeRequest exp;
  v1::ControllerExpandVolumeResponse eresp;
  exp.set_volume_id("dev-a/csi-missing");
  EXPECT_EQ(Call(&Stub::ControllerExpandVolume, exp, &eresp).error_code(),
            StatusCode::INVALID_ARGUMENT);  // no capacity_range
  exp.mutable_capacity_range()->set_required_bytes(8192);
  exp.mutable_capacity_range()->set_limit_bytes(4096);
  EXPECT_EQ(Call(&Stub::ControllerExpandVolume, exp, &eresp).error_code(),
            StatusCode::INVALID_ARGUMENT);  // limit < required
  exp.mutable_capacity_range()->set_required_bytes(4097);
  exp.mutable_capacity_range()->set_limit_bytes(4100);
  EXPECT_EQ(Call(&Stub::ControllerExpandVolume, exp, &eresp).error_code(),
            StatusCode::NOT_FOUND);  // missing volume before a size we could not make
  exp.set_volume_id(v.volume_id());
  EXPECT_EQ(Call(&Stub::ControllerExpandVolume, exp, &eresp).error_code(),
            StatusCode::OUT_OF_RANGE);

  v1::ControllerGetVolumeRequest get;
  v1::ControllerGetVolumeResponse gresp;
  EXPECT_EQ(Call(&Stub::ControllerGetVolume, get, &gresp).error_code(),
            StatusCode::INVALID_ARGUMENT);
  get.set_volume_id("dev-z/csi-missing");
  EXPECT_EQ(Call(&Stub::ControllerGetVolume, get, &gresp).error_code(), StatusCode::NOT_FOUND);

  v1::DeleteVolumeRequest del;
  v1::DeleteVolumeResponse dresp;
  EXPECT_EQ(Call(&Stub::DeleteVolume, del, &dresp).error_code(), StatusCode::INVALID_ARGUMENT);
  del.set_volume_id("dev-z/csi-missing");
  EXPECT_TRUE(Call(&Stub::DeleteVolume, del, &dresp).ok());
  MustDelete(v.volume_id());
}

// CreateVolume from a volume: the device clones the LUN (shared blocks); the clone holds
// the source's data as it was, diverges on write, and follows the source's device.
TEST_F(ControllerSanityTest, CloneFromAVolume) {
  auto create = CreateReq("sanity-clone-src", 1 << 20);
  (*create.mutable_parameters())["device"] = "dev-a";
  v1::Volume src = MustCreate(create);
  const std::string src_lun = src.volume_id().substr(src.volume_id().find('/') + 1);
  auto write = [&](const std::string& lun, uint64_t off, char c) {
    grpc::ClientContext ctx;
    sv1::WriteLunDataResponse wr;
    auto w = dev_a_->stub->WriteLunData(&ctx, &wr);
    sv1::LunData d;
    d.set_name(lun);
    d.set_offset(off);
    d.set_data(std::string(4096, c));
    d.set_fua(true);
    EXPECT_TRUE(w->Write(d));
    w->WritesDone();
    return w->Finish();
  };
  auto read = [&](const std::string& lun, uint64_t off) {
    grpc::ClientContext ctx;
    sv1::ReadLunDataRequest r;
    r.set_name(lun);
    r.set_offset(off);
    r.set_length(4096);
    sv1::LunData d;
    grpc::Status s = dev_a_->stub->ReadLunData(&ctx, r, &d);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return d.data().empty() ? '?' : d.data()[0];
  };
  ASSERT_TRUE(write(src_lun, 0, 's').ok());
  ASSERT_TRUE(write(src_lun, 65536, 't').ok());

  v1::ControllerGetCapabilitiesResponse caps;
  ASSERT_TRUE(
      Call(&Stub::ControllerGetCapabilities, v1::ControllerGetCapabilitiesRequest(), &caps).ok());
  bool clone = false;
  for (const auto& c : caps.capabilities()) {
    clone |= c.rpc().type() == v1::ControllerServiceCapability::RPC::CLONE_VOLUME;
  }
  EXPECT_TRUE(clone);

  auto req = CreateReq("sanity-clone");  // no capacity_range: the source's size
  req.mutable_volume_content_source()->mutable_volume()->set_volume_id(src.volume_id());
  v1::CreateVolumeResponse resp;
  grpc::Status s = Call(&Stub::CreateVolume, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  v1::Volume c = resp.volume();
  EXPECT_EQ(c.capacity_bytes(), 1 << 20);
  EXPECT_EQ(c.volume_id().substr(0, 6), "dev-a/");
  EXPECT_EQ(c.content_source().volume().volume_id(), src.volume_id());
  EXPECT_NE(c.volume_context().at("wwn"), src.volume_context().at("wwn"));
  ASSERT_TRUE(Call(&Stub::CreateVolume, req, &resp).ok());  // idempotent
  EXPECT_EQ(resp.volume().volume_id(), c.volume_id());
  const std::string c_lun = c.volume_id().substr(c.volume_id().find('/') + 1);
  EXPECT_EQ(read(c_lun, 0), 's');
  EXPECT_EQ(read(c_lun, 65536), 't');
  ASSERT_TRUE(write(c_lun, 0, 'c').ok());
  EXPECT_EQ(read(src_lun, 0), 's');  // the source is untouched
  EXPECT_EQ(read(c_lun, 0), 'c');

  // Errors: a missing source, a snapshot source, a limit below the source, another tier.
  auto bad = CreateReq("sanity-clone-bad");
  bad.mutable_volume_content_source()->mutable_volume()->set_volume_id("dev-a/csi-missing");
  EXPECT_EQ(Call(&Stub::CreateVolume, bad, &resp).error_code(), StatusCode::NOT_FOUND);
  bad.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id("snap-1");
  EXPECT_EQ(Call(&Stub::CreateVolume, bad, &resp).error_code(), StatusCode::NOT_FOUND);
  bad.mutable_volume_content_source()->mutable_volume()->set_volume_id(src.volume_id());
  bad.mutable_capacity_range()->set_limit_bytes(4096);
  EXPECT_EQ(Call(&Stub::CreateVolume, bad, &resp).error_code(), StatusCode::OUT_OF_RANGE);
  bad.clear_capacity_range();
  // A tier neither dev-a nor another device of zone-a has: RESOURCE_EXHAUSTED, nothing made.
  (*bad.mutable_parameters())["tier"] = "sas";
  s = Call(&Stub::CreateVolume, bad, &resp);
  EXPECT_EQ(s.error_code(), StatusCode::RESOURCE_EXHAUSTED) << s.error_message();

  // Another tier of the source's device: the clone is made on the source's tier and moves.
  auto on_sata = CreateReq("sanity-clone-sata");
  on_sata.mutable_volume_content_source()->mutable_volume()->set_volume_id(src.volume_id());
  (*on_sata.mutable_parameters())["tier"] = "sata";
  s = Call(&Stub::CreateVolume, on_sata, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const std::string sata_id = resp.volume().volume_id();
  EXPECT_TRUE(OnTier(sata_id, sv1::TIER_CLASS_SATA));
  EXPECT_EQ(read(LunOf(sata_id), 65536), 't');
  ASSERT_TRUE(Call(&Stub::CreateVolume, on_sata, &resp).ok());  // idempotent after the move
  EXPECT_EQ(resp.volume().volume_id(), sata_id);

  MustDelete(sata_id);
  MustDelete(c.volume_id());
  MustDelete(src.volume_id());
}

// Snapshots as the CSI spec states them: create (idempotent; the same name of another source is
// ALREADY_EXISTS), point in time, list with filters and pages, restore (same tier and another),
// delete (idempotent, unknown ids OK), and the device's own view of each.
TEST_F(ControllerSanityTest, SnapshotsCreateListRestoreDelete) {
  auto create = CreateReq("sanity-snap-src", 1 << 20);
  (*create.mutable_parameters())["device"] = "dev-a";
  v1::Volume src = MustCreate(create);
  auto other_req = CreateReq("sanity-snap-other", 1 << 20);
  (*other_req.mutable_parameters())["device"] = "dev-b";
  v1::Volume other = MustCreate(other_req);
  ASSERT_TRUE(WriteBlock(dev_a_, LunOf(src.volume_id()), 0, 's').ok());

  v1::CreateSnapshotRequest sreq;
  sreq.set_name("sanity-snap-1");
  sreq.set_source_volume_id(src.volume_id());
  (*sreq.mutable_parameters())["csi.storage.k8s.io/volumesnapshot/name"] = "vs-1";
  v1::CreateSnapshotResponse sresp;
  grpc::Status s = Call(&Stub::CreateSnapshot, sreq, &sresp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const v1::Snapshot snap = sresp.snapshot();
  EXPECT_EQ(snap.snapshot_id().substr(0, 6), "dev-a/");
  EXPECT_EQ(snap.source_volume_id(), src.volume_id());
  EXPECT_EQ(snap.size_bytes(), 1 << 20);
  EXPECT_TRUE(snap.ready_to_use());
  EXPECT_GT(snap.creation_time().seconds(), 1600000000);
  {  // the device's snapshot
    grpc::ClientContext ctx;
    sv1::GetSnapshotRequest g;
    g.set_name(LunOf(snap.snapshot_id()));
    sv1::Snapshot ds;
    ASSERT_TRUE(dev_a_->stub->GetSnapshot(&ctx, g, &ds).ok());
    EXPECT_EQ(ds.source_lun(), LunOf(src.volume_id()));
    EXPECT_EQ(ds.metadata().at("csi.storage.k8s.io/volumesnapshot/name"), "vs-1");
  }
  // Written after the snapshot: not in it.
  ASSERT_TRUE(WriteBlock(dev_a_, LunOf(src.volume_id()), 0, 'x').ok());

  ASSERT_TRUE(Call(&Stub::CreateSnapshot, sreq, &sresp).ok());  // idempotent
  EXPECT_EQ(sresp.snapshot().snapshot_id(), snap.snapshot_id());
  EXPECT_EQ(sresp.snapshot().creation_time().seconds(), snap.creation_time().seconds());
  auto other_src = sreq;
  other_src.set_source_volume_id(other.volume_id());
  EXPECT_EQ(Call(&Stub::CreateSnapshot, other_src, &sresp).error_code(),
            StatusCode::ALREADY_EXISTS);
  auto missing = sreq;
  missing.set_name("sanity-snap-missing");
  missing.set_source_volume_id("dev-a/csi-missing");
  EXPECT_EQ(Call(&Stub::CreateSnapshot, missing, &sresp).error_code(), StatusCode::NOT_FOUND);
  missing.set_source_volume_id("");
  EXPECT_EQ(Call(&Stub::CreateSnapshot, missing, &sresp).error_code(),
            StatusCode::INVALID_ARGUMENT);
  missing.set_source_volume_id(src.volume_id());
  missing.set_name("");
  EXPECT_EQ(Call(&Stub::CreateSnapshot, missing, &sresp).error_code(),
            StatusCode::INVALID_ARGUMENT);

  // Two more, one of each volume, for the listing.
  std::set<std::string> ids = {snap.snapshot_id()};
  for (const auto& [name, vol] :
       {std::pair{"sanity-snap-2", src.volume_id()}, {"sanity-snap-3", other.volume_id()}}) {
    auto r = sreq;
    r.set_name(name);
    r.set_source_volume_id(vol);
    ASSERT_TRUE(Call(&Stub::CreateSnapshot, r, &sresp).ok());
    ids.insert(sresp.snapshot().snapshot_id());
  }
  std::set<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    v1::ListSnapshotsRequest l;
    l.set_max_entries(1);
    l.set_starting_token(token);
    v1::ListSnapshotsResponse lr;
    ASSERT_TRUE(Call(&Stub::ListSnapshots, l, &lr).ok());
    EXPECT_LE(lr.entries_size(), 1);
    for (const auto& e : lr.entries()) {
      EXPECT_TRUE(seen.insert(e.snapshot().snapshot_id()).second) << "listed twice";
    }
    token = lr.next_token();
    ASSERT_LT(++pages, 100);
  } while (!token.empty());
  for (const auto& id : ids) EXPECT_TRUE(seen.count(id)) << id;

  v1::ListSnapshotsRequest by_source;
  by_source.set_source_volume_id(src.volume_id());
  v1::ListSnapshotsResponse lr;
  ASSERT_TRUE(Call(&Stub::ListSnapshots, by_source, &lr).ok());
  EXPECT_EQ(lr.entries_size(), 2);
  for (const auto& e : lr.entries()) EXPECT_EQ(e.snapshot().source_volume_id(), src.volume_id());
  v1::ListSnapshotsRequest by_id;
  by_id.set_snapshot_id(snap.snapshot_id());
  ASSERT_TRUE(Call(&Stub::ListSnapshots, by_id, &lr).ok());
  ASSERT_EQ(lr.entries_size(), 1);
  EXPECT_EQ(lr.entries(0).snapshot().snapshot_id(), snap.snapshot_id());
  by_id.set_snapshot_id("dev-a/csi-snap-unknown");
  ASSERT_TRUE(Call(&Stub::ListSnapshots, by_id, &lr).ok());
  EXPECT_EQ(lr.entries_size(), 0);
  v1::ListSnapshotsRequest bad_token;
  bad_token.set_starting_token("invalid-token");
  EXPECT_EQ(Call(&Stub::ListSnapshots, bad_token, &lr).error_code(), StatusCode::ABORTED);

  // Restore: the snapshot's content, its size, on its device; again on the sata tier.
  auto restore = CreateReq("sanity-restore");
  restore.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id(snap.snapshot_id());
  v1::CreateVolumeResponse cresp;
  s = Call(&Stub::CreateVolume, restore, &cresp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const v1::Volume restored = cresp.volume();
  EXPECT_EQ(restored.volume_id().substr(0, 6), "dev-a/");
  EXPECT_EQ(restored.capacity_bytes(), 1 << 20);
  EXPECT_EQ(restored.content_source().snapshot().snapshot_id(), snap.snapshot_id());
  EXPECT_EQ(ReadBlock(dev_a_, LunOf(restored.volume_id()), 0), 's');
  EXPECT_EQ(ReadBlock(dev_a_, LunOf(src.volume_id()), 0), 'x');
  ASSERT_TRUE(Call(&Stub::CreateVolume, restore, &cresp).ok());  // idempotent
  EXPECT_EQ(cresp.volume().volume_id(), restored.volume_id());
  auto to_sata = CreateReq("sanity-restore-sata");
  (*to_sata.mutable_parameters())["tier"] = "sata";
  *to_sata.mutable_volume_content_source() = restore.volume_content_source();
  s = Call(&Stub::CreateVolume, to_sata, &cresp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const std::string sata_id = cresp.volume().volume_id();
  EXPECT_TRUE(OnTier(sata_id, sv1::TIER_CLASS_SATA));
  EXPECT_EQ(ReadBlock(dev_a_, LunOf(sata_id), 0), 's');
  auto unknown = CreateReq("sanity-restore-unknown");
  unknown.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id(
      "dev-a/csi-snap-unknown");
  EXPECT_EQ(Call(&Stub::CreateVolume, unknown, &cresp).error_code(), StatusCode::NOT_FOUND);

  // Delete: idempotent; unknown ids are deleted already.
  for (const auto& id : ids) {
    v1::DeleteSnapshotRequest d;
    d.set_snapshot_id(id);
    v1::DeleteSnapshotResponse dr;
    s = Call(&Stub::DeleteSnapshot, d, &dr);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_TRUE(Call(&Stub::DeleteSnapshot, d, &dr).ok());
  }
  for (std::string id : {"dev-a/csi-snap-unknown", "nodevice/csi-snap-x", "garbage"}) {
    v1::DeleteSnapshotRequest d;
    d.set_snapshot_id(id);
    v1::DeleteSnapshotResponse dr;
    EXPECT_TRUE(Call(&Stub::DeleteSnapshot, d, &dr).ok()) << id;
  }
  by_id.set_snapshot_id(snap.snapshot_id());
  ASSERT_TRUE(Call(&Stub::ListSnapshots, by_id, &lr).ok());
  EXPECT_EQ(lr.entries_size(), 0);
  // A restored volume does not depend on its snapshot.
  EXPECT_EQ(ReadBlock(dev_a_, LunOf(restored.volume_id()), 0), 's');

  for (const auto& id : {restored.volume_id(), sata_id, src.volume_id(), other.volume_id()}) {
    MustDelete(id);
  }
}

// ControllerModifyVolume: tier (a live move on the device) and dedup in place; unknown and
// immutable keys INVALID_ARGUMENT naming the key; an unknown volume NOT_FOUND.
TEST_F(ControllerSanityTest, ModifyVolumeMovesTierAndSetsDedup) {
  auto create = CreateReq("sanity-modify", 1 << 20);
  (*create.mutable_parameters())["device"] = "dev-a";
  (*create.mutable_parameters())["tier"] = "ssd";
  v1::Volume vol = MustCreate(create);
  ASSERT_TRUE(WriteBlock(dev_a_, LunOf(vol.volume_id()), 8192, 'm').ok());
  auto modify = [&](const std::map<std::string, std::string>& params, const std::string& id = "") {
    v1::ControllerModifyVolumeRequest req;
    req.set_volume_id(id.empty() ? vol.volume_id() : id);
    for (const auto& [k, v] : params) (*req.mutable_mutable_parameters())[k] = v;
    v1::ControllerModifyVolumeResponse resp;
    return Call(&Stub::ControllerModifyVolume, req, &resp);
  };
  grpc::Status s = modify({{"tier", "sata"}, {"dedup", "true"}});
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(OnTier(vol.volume_id(), sv1::TIER_CLASS_SATA));
  sv1::Lun lun;
  ASSERT_TRUE(DeviceLun(vol.volume_id(), &lun).ok());
  EXPECT_TRUE(lun.dedup());
  EXPECT_EQ(ReadBlock(dev_a_, LunOf(vol.volume_id()), 8192), 'm');
  EXPECT_TRUE(modify({{"tier", "sata"}}).ok());  // as it is already
  ASSERT_TRUE(modify({{"dedup", "false"}, {"tier", "ssd"}}).ok());
  EXPECT_TRUE(OnTier(vol.volume_id(), sv1::TIER_CLASS_SSD));
  ASSERT_TRUE(DeviceLun(vol.volume_id(), &lun).ok());
  EXPECT_FALSE(lun.dedup());

  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"owner", "x"}, {"device", "dev-b"}, {"flavour", "y"}, {"tier", "floppy"}}) {
    s = modify({{key, value}});
    EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT) << key;
    EXPECT_NE(s.error_message().find("mutable_parameters." + key), std::string::npos)
        << s.error_message();
  }
  EXPECT_EQ(modify({{"tier", "sata"}}, "dev-a/csi-missing").error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(modify({{"tier", "sata"}}, "nodevice/csi-x").error_code(), StatusCode::NOT_FOUND);
  // dev-b has no sata tier.
  auto on_b = CreateReq("sanity-modify-b", 1 << 20);
  (*on_b.mutable_parameters())["device"] = "dev-b";
  v1::Volume vb = MustCreate(on_b);
  s = modify({{"tier", "sata"}}, vb.volume_id());
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT) << s.error_message();
  MustDelete(vb.volume_id());
  MustDelete(vol.volume_id());
}

// Fields marked csi_secret never reach the driver's log, even at debug level.
TEST_F(ControllerSanityTest, SecretsAreNotLogged) {
  auto req = CreateReq("sanity-secrets", 1 << 20);
  (*req.mutable_secrets())["password"] = "hunter2-sanity";
  v1::Volume v = MustCreate(req);
  v1::ControllerPublishVolumeRequest pub;
  pub.set_volume_id(v.volume_id());
  pub.set_node_id("node-1@127.0.0.1");
  *pub.mutable_volume_capability() = Block();
  (*pub.mutable_secrets())["token"] = "s3cr3t-sanity";
  v1::ControllerPublishVolumeResponse presp;
  ASSERT_TRUE(Call(&Stub::ControllerPublishVolume, pub, &presp).ok());
  v1::ControllerUnpublishVolumeRequest unpub;
  unpub.set_volume_id(v.volume_id());
  unpub.set_node_id(pub.node_id());
  v1::ControllerUnpublishVolumeResponse uresp;
  ASSERT_TRUE(Call(&Stub::ControllerUnpublishVolume, unpub, &uresp).ok());
  MustDelete(v.volume_id());

  std::ifstream log(*dir_ / "csi.log");
  std::stringstream text;
  text << log.rdbuf();
  EXPECT_NE(text.str().find("sanity-secrets"), std::string::npos) << "requests are logged";
  EXPECT_EQ(text.str().find("hunter2-sanity"), std::string::npos);
  EXPECT_EQ(text.str().find("s3cr3t-sanity"), std::string::npos);
}

v1::Topology Zone(const std::string& zone) {
  v1::Topology t;
  (*t.mutable_segments())["topology.block.csi.strata.io/zone"] = zone;
  return t;
}

TEST_F(ControllerSanityTest, TopologyPlacesAndReports) {
  auto req = CreateReq("sanity-zone-a", 1 << 20);
  *req.mutable_accessibility_requirements()->add_requisite() = Zone("zone-a");
  v1::Volume v = MustCreate(req);
  EXPECT_EQ(v.volume_id().rfind("dev-a/", 0), 0u) << "zone-a is dev-a, though dev-b has more free";
  ASSERT_EQ(v.accessible_topology_size(), 1);
  EXPECT_EQ(v.accessible_topology(0).segments().at("topology.block.csi.strata.io/zone"), "zone-a");
  req.clear_accessibility_requirements();
  *req.mutable_accessibility_requirements()->add_requisite() = Zone("zone-b");
  v1::CreateVolumeResponse resp;
  EXPECT_EQ(Call(&Stub::CreateVolume, req, &resp).error_code(), StatusCode::ALREADY_EXISTS);
  MustDelete(v.volume_id());

  auto nowhere = CreateReq("sanity-zone-c", 1 << 20);
  *nowhere.mutable_accessibility_requirements()->add_requisite() = Zone("zone-c");
  EXPECT_EQ(Call(&Stub::CreateVolume, nowhere, &resp).error_code(), StatusCode::RESOURCE_EXHAUSTED);

  v1::GetCapacityRequest cap;
  (*cap.mutable_parameters())["tier"] = "ssd";
  *cap.mutable_accessible_topology() = Zone("zone-b");
  v1::GetCapacityResponse cresp;
  ASSERT_TRUE(Call(&Stub::GetCapacity, cap, &cresp).ok());
  EXPECT_GT(cresp.available_capacity(), int64_t{1} << 30);  // dev-b's 2 GiB ssd only
  EXPECT_LE(cresp.available_capacity(), int64_t{2} << 30);
}

TEST_F(ControllerSanityTest, GetVolume) {
  v1::Volume v = MustCreate(CreateReq("sanity-get", 1 << 20));
  v1::ControllerGetVolumeRequest req;
  v1::ControllerGetVolumeResponse resp;
  req.set_volume_id(v.volume_id());
  ASSERT_TRUE(Call(&Stub::ControllerGetVolume, req, &resp).ok());
  EXPECT_EQ(resp.volume().volume_id(), v.volume_id());
  EXPECT_EQ(resp.volume().capacity_bytes(), 1 << 20);
  EXPECT_FALSE(resp.status().volume_condition().abnormal());
  MustDelete(v.volume_id());
  EXPECT_EQ(Call(&Stub::ControllerGetVolume, req, &resp).error_code(), StatusCode::NOT_FOUND);
}

// A driver whose only device goes away: Probe not ready, volumes abnormal.
// Issue #10: a volume that strata-admin moved from dev-a to dev-b is still volume
// dev-a/LUN to the CO; the driver follows dev-a's moved_to to act on dev-b.
TEST_F(ControllerSanityTest, AVolumeMovedToAnotherDeviceIsFollowed) {
  auto create = CreateReq("moved-1", 64 << 20);
  (*create.mutable_parameters())["device"] = "dev-a";
  (*create.mutable_parameters())["tier"] = "ssd";
  (*create.mutable_parameters())["csi.storage.k8s.io/pvc/name"] = "data";
  (*create.mutable_parameters())["csi.storage.k8s.io/pvc/namespace"] = "team-a";
  (*create.mutable_parameters())["csi.storage.k8s.io/pv/name"] = "pv-moved-1";
  v1::Volume vol = MustCreate(create);
  ASSERT_EQ(vol.volume_id().rfind("dev-a/", 0), 0u) << vol.volume_id();
  const std::string lun_name = vol.volume_id().substr(6);
  sv1::Lun lun;
  ASSERT_TRUE(DeviceLun(vol.volume_id(), &lun).ok());
  EXPECT_EQ(lun.owner(), "team-a");
  // Lun.metadata is kept by strata-stored once branch storage-meta lands; not checked here yet.

  // strata-admin lun migrate --to-device dev-b --wait, bounded by WaitFor.
  Child migrate({g_admin, "--insecure", "--server", dev_a_->grpc, "lun", "migrate", lun_name,
                 "--to-device", dev_b_->grpc, "--wait"},
                (*dir_ / "migrate.log").string());
  ASSERT_TRUE(WaitFor([&] { return !migrate.Running(); }, 120, nullptr));
  ASSERT_EQ(migrate.exit_code(), 0) << "see " << (*dir_ / "migrate.log");
  ASSERT_TRUE(WaitFor(
      [&] {
        sv1::Lun l;
        return DeviceLun(vol.volume_id(), &l).ok() && l.moved_to() == dev_b_->grpc;
      },
      60, nullptr))
      << "dev-a's LUN never named dev-b in moved_to";
  const std::string on_b = "dev-b/" + lun_name;
  sv1::Lun b_lun;
  ASSERT_TRUE(DeviceLun(on_b, &b_lun).ok());

  // Publish: access on dev-b, dev-b's portals.
  v1::ControllerPublishVolumeRequest pub;
  pub.set_volume_id(vol.volume_id());
  pub.set_node_id("node-1@127.0.0.1");
  *pub.mutable_volume_capability() = Block();
  v1::ControllerPublishVolumeResponse pub_resp;
  grpc::Status s = Call(&Stub::ControllerPublishVolume, pub, &pub_resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::string b_portals;
  for (const auto& p : b_lun.portals()) b_portals += (b_portals.empty() ? "" : ",") + p;
  EXPECT_EQ(pub_resp.publish_context().at("portals"), b_portals);
  EXPECT_EQ(pub_resp.publish_context().at("deviceAddress"), dev_b_->grpc);
  EXPECT_EQ(Clients(on_b), std::set<std::string>{"127.0.0.1"});

  // Expand: grows the LUN on dev-b.
  v1::ControllerExpandVolumeRequest exp;
  exp.set_volume_id(vol.volume_id());
  exp.mutable_capacity_range()->set_required_bytes(128 << 20);
  v1::ControllerExpandVolumeResponse exp_resp;
  s = Call(&Stub::ControllerExpandVolume, exp, &exp_resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_TRUE(DeviceLun(on_b, &b_lun).ok());
  EXPECT_EQ(b_lun.size_bytes(), uint64_t{128} << 20);

  // GetVolume: the volume keeps its id, with dev-b's portals.
  v1::ControllerGetVolumeRequest get;
  get.set_volume_id(vol.volume_id());
  v1::ControllerGetVolumeResponse get_resp;
  s = Call(&Stub::ControllerGetVolume, get, &get_resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(get_resp.volume().volume_id(), vol.volume_id());
  EXPECT_EQ(get_resp.volume().capacity_bytes(), int64_t{128} << 20);

  // Unpublish, then Delete: gone from dev-b and dev-a.
  v1::ControllerUnpublishVolumeRequest unpub;
  unpub.set_volume_id(vol.volume_id());
  unpub.set_node_id("node-1@127.0.0.1");
  v1::ControllerUnpublishVolumeResponse unpub_resp;
  s = Call(&Stub::ControllerUnpublishVolume, unpub, &unpub_resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(Clients(on_b).empty());
  MustDelete(vol.volume_id());
  EXPECT_EQ(DeviceLun(on_b, &b_lun).error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(DeviceLun(vol.volume_id(), &lun).error_code(), StatusCode::NOT_FOUND);
  MustDelete(vol.volume_id());  // idempotent
}

// Issue #10, controlplane: strata-csi --devices-from-cluster against the real apiserver. Two
// StorageDevice objects for two real devices, one with desiredState Maintenance: new volumes
// land on the other until the spec flips to Online. Runs only with STRATA_KUBECONFIG (ctest
// test csi_cluster_devices, fixtures kube_testenv + strata_crds).
TEST(CsiClusterDevicesTest, MaintenanceDeviceGetsNoNewVolumesUntilOnline) {
  const char* kubeconfig = std::getenv("STRATA_KUBECONFIG");
  ASSERT_NE(kubeconfig, nullptr) << "STRATA_KUBECONFIG is required (ctest: csi_cluster_devices)";
  char tmpl[] = "/tmp/strata-csi-cluster.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const fs::path dir(tmpl);
  const std::string run = "csi-" + std::to_string(getpid());
  // Every kubectl call is bounded by --request-timeout.
  auto kubectl = [&](const std::string& args, const std::string& stdin_text = "") {
    const fs::path in = dir / "kubectl.in";
    std::ofstream(in) << stdin_text;
    std::string cmd = "kubectl --request-timeout=15s --kubeconfig '" + std::string(kubeconfig) +
                      "' " + args + " < '" + in.string() + "' >> '" +
                      (dir / "kubectl.log").string() + "' 2>&1";
    return std::system(cmd.c_str());
  };
  Stored a = StartStored(dir, "cl-a", {{"ssd", "1GiB"}});
  Stored b = StartStored(dir, "cl-b", {{"ssd", "2GiB"}});  // more free space: preferred
  ASSERT_FALSE(a.grpc.empty());
  ASSERT_FALSE(b.grpc.empty());
  auto object = [&](const std::string& name, const std::string& endpoint,
                    const std::string& desired) {
    return "apiVersion: strata.io/v1alpha1\nkind: StorageDevice\nmetadata:\n  name: " + name +
           "\n  labels: {strata.io/test-run: " + run +
           ", topology.kubernetes.io/zone: zone-x}\nspec:\n  endpoint: " + endpoint +
           "\n  desiredState: " + desired +
           "\n  tiers:\n    - class: ssd\n      capacityBytes: 1073741824\n";
  };
  const std::string name_a = run + "-a", name_b = run + "-b";
  ASSERT_EQ(kubectl("create -f -", object(name_a, a.grpc, "Online")), 0) << dir;
  ASSERT_EQ(kubectl("create -f -", object(name_b, b.grpc, "Maintenance")), 0) << dir;

  Csi csi = StartCsi(dir, "csi", {},
                     {"--mode", "controller", "--devices-from-cluster", "--kubeconfig", kubeconfig,
                      "--devices-selector", "strata.io/test-run=" + run});
  ASSERT_TRUE(csi.proc->Running()) << "strata-csi did not start; see " << dir;
  auto create = [&](const std::string& name, const std::string& device,
                    v1::CreateVolumeResponse* resp) {
    v1::CreateVolumeRequest req;
    req.set_name(name);
    *req.add_volume_capabilities() = Block();
    if (!device.empty()) (*req.mutable_parameters())["device"] = device;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return csi.controller->CreateVolume(&ctx, req, resp);
  };
  // b has more free space but is going into maintenance: the volume lands on a.
  v1::CreateVolumeResponse resp;
  grpc::Status s = create("cl-vol-1", "", &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.volume().volume_id().rfind(name_a + "/", 0), 0u) << resp.volume().volume_id();
  EXPECT_EQ(resp.volume().accessible_topology(0).segments().at("topology.block.csi.strata.io/zone"),
            "zone-x");
  s = create("cl-vol-2", name_b, &resp);
  EXPECT_EQ(s.error_code(), StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(s.error_message().find("Maintenance"), std::string::npos) << s.error_message();

  // Flip b to Online: the watch brings it back for new volumes.
  ASSERT_EQ(kubectl("patch storagedevice " + name_b +
                    " --type merge -p '{\"spec\":{\"desiredState\":\"Online\"}}'"),
            0);
  EXPECT_TRUE(WaitFor([&] { return create("cl-vol-2", name_b, &resp).ok(); }, 30, csi.proc.get()))
      << "see " << dir;
  EXPECT_EQ(resp.volume().volume_id().rfind(name_b + "/", 0), 0u) << resp.volume().volume_id();

  kubectl("delete storagedevice " + name_a + " " + name_b + " --ignore-not-found");
  if (!KeepDirs() && !::testing::Test::HasFailure()) fs::remove_all(dir);
}

// A restore whose snapshot's device lacks room: made there (sharing the snapshot's blocks, no
// space needed) and moved at once to the other device of the zone through the device-to-device
// move; the volume id keeps naming the snapshot's device and the data arrives on the other one.
// No device with room (or with the tier): RESOURCE_EXHAUSTED, nothing made.
TEST(ControllerSanityCrossDeviceTest, RestoreMovesToADeviceWithRoom) {
  char tmpl[] = "/tmp/strata-csi-xdev.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const fs::path dir(tmpl);
  // No dedup: the data written below really takes the small device's space.
  Stored small = StartStored(dir, "dev-s", {{"ssd", "64MiB"}}, "127.0.0.1:0", {"--dedup", "off"});
  Stored large = StartStored(dir, "dev-l", {{"ssd", "1GiB"}}, "127.0.0.1:0", {"--dedup", "off"});
  ASSERT_FALSE(small.grpc.empty());
  ASSERT_FALSE(large.grpc.empty());
  Csi csi = StartCsi(dir, "csi-x", {{"dev-s", small.grpc}, {"dev-l", large.grpc}});
  ASSERT_TRUE(csi.proc->Running());
  auto deadline = [](grpc::ClientContext* ctx) {
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  };

  constexpr int64_t kSize = 40 << 20;
  v1::CreateVolumeRequest create;
  create.set_name("xdev-src");
  *create.add_volume_capabilities() = Block();
  create.mutable_capacity_range()->set_required_bytes(kSize);
  (*create.mutable_parameters())["device"] = "dev-s";
  v1::CreateVolumeResponse src;
  {
    grpc::ClientContext ctx;
    deadline(&ctx);
    grpc::Status s = csi.controller->CreateVolume(&ctx, create, &src);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  const std::string src_lun = src.volume().volume_id().substr(6);
  {  // 40 MiB of data, 1 MiB per message, a different byte per MiB
    grpc::ClientContext ctx;
    deadline(&ctx);
    sv1::WriteLunDataResponse wr;
    auto w = small.stub->WriteLunData(&ctx, &wr);
    for (int i = 0; i < 40; ++i) {
      sv1::LunData d;
      d.set_name(src_lun);
      d.set_offset(static_cast<uint64_t>(i) << 20);
      d.set_data(std::string(1 << 20, static_cast<char>('a' + i % 26)));
      ASSERT_TRUE(w->Write(d));
    }
    w->WritesDone();
    grpc::Status s = w->Finish();
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  v1::CreateSnapshotRequest snap_req;
  snap_req.set_name("xdev-snap");
  snap_req.set_source_volume_id(src.volume().volume_id());
  v1::CreateSnapshotResponse snap;
  {
    grpc::ClientContext ctx;
    deadline(&ctx);
    grpc::Status s = csi.controller->CreateSnapshot(&ctx, snap_req, &snap);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  v1::CreateVolumeRequest restore;
  restore.set_name("xdev-restore");
  *restore.add_volume_capabilities() = Block();
  restore.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id(
      snap.snapshot().snapshot_id());
  v1::CreateVolumeResponse restored;
  {
    grpc::ClientContext ctx;
    deadline(&ctx);
    grpc::Status s = csi.controller->CreateVolume(&ctx, restore, &restored);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  EXPECT_EQ(restored.volume().volume_id().substr(0, 6), "dev-s/");
  EXPECT_EQ(restored.volume().capacity_bytes(), kSize);
  const std::string lun = restored.volume().volume_id().substr(6);
  auto moved = [&] {
    grpc::ClientContext ctx;
    deadline(&ctx);
    sv1::GetLunRequest g;
    g.set_name(lun);
    sv1::Lun l;
    return small.stub->GetLun(&ctx, g, &l).ok() && l.moved_to() == large.grpc;
  };
  EXPECT_TRUE(WaitFor(moved, 120, csi.proc.get())) << "the restore did not move to dev-l";
  auto read_large = [&](uint64_t off) {
    grpc::ClientContext ctx;
    deadline(&ctx);
    sv1::ReadLunDataRequest r;
    r.set_name(lun);
    r.set_offset(off);
    r.set_length(4096);
    sv1::LunData d;
    grpc::Status s = large.stub->ReadLunData(&ctx, r, &d);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return d.data().empty() ? '?' : d.data()[0];
  };
  EXPECT_EQ(read_large(0), 'a');
  EXPECT_EQ(read_large(39u << 20), static_cast<char>('a' + 39 % 26));
  {  // idempotent: the retry follows the move
    grpc::ClientContext ctx;
    deadline(&ctx);
    v1::CreateVolumeResponse again;
    grpc::Status s = csi.controller->CreateVolume(&ctx, restore, &again);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(again.volume().volume_id(), restored.volume().volume_id());
  }

  // A tier no device has: RESOURCE_EXHAUSTED naming both devices, nothing made.
  auto none = restore;
  none.set_name("xdev-none");
  (*none.mutable_parameters())["tier"] = "sata";
  {
    grpc::ClientContext ctx;
    deadline(&ctx);
    v1::CreateVolumeResponse r;
    grpc::Status s = csi.controller->CreateVolume(&ctx, none, &r);
    EXPECT_EQ(s.error_code(), StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
    EXPECT_NE(s.error_message().find("dev-s"), std::string::npos) << s.error_message();
    EXPECT_NE(s.error_message().find("dev-l"), std::string::npos) << s.error_message();
  }

  for (const auto& id : {restored.volume().volume_id(), src.volume().volume_id()}) {
    grpc::ClientContext ctx;
    deadline(&ctx);
    v1::DeleteVolumeRequest d;
    d.set_volume_id(id);
    v1::DeleteVolumeResponse dr;
    grpc::Status s = csi.controller->DeleteVolume(&ctx, d, &dr);
    EXPECT_TRUE(s.ok()) << s.error_message();
  }
  {
    grpc::ClientContext ctx;
    deadline(&ctx);
    v1::DeleteSnapshotRequest d;
    d.set_snapshot_id(snap.snapshot().snapshot_id());
    v1::DeleteSnapshotResponse dr;
    EXPECT_TRUE(csi.controller->DeleteSnapshot(&ctx, d, &dr).ok());
  }
  if (!KeepDirs() && !::testing::Test::HasFailure()) fs::remove_all(dir);
}

TEST(ControllerSanityDeviceLossTest, ProbeAndVolumeConditionFollowTheDevice) {
  char tmpl[] = "/tmp/strata-csi-loss.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const fs::path dir(tmpl);
  Stored dev = StartStored(dir, "dev-c", {{"ssd", "1GiB"}});
  ASSERT_FALSE(dev.grpc.empty());
  Csi csi = StartCsi(dir, "csi-c", {{"dev-c", dev.grpc}});
  ASSERT_TRUE(csi.proc->Running());

  v1::CreateVolumeRequest create;
  create.set_name("loss");
  *create.add_volume_capabilities() = Block();
  v1::CreateVolumeResponse created;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(csi.controller->CreateVolume(&ctx, create, &created).ok());
  }
  dev.proc->Stop(SIGKILL);
  {
    grpc::ClientContext ctx;
    v1::ProbeResponse probe;
    ASSERT_TRUE(csi.identity->Probe(&ctx, {}, &probe).ok());
    EXPECT_FALSE(probe.ready().value());
  }
  // The volume's condition as ControllerGetVolume reports it (the call itself must succeed).
  auto condition = [&] {
    grpc::ClientContext ctx;
    v1::ControllerGetVolumeRequest req;
    req.set_volume_id(created.volume().volume_id());
    v1::ControllerGetVolumeResponse resp;
    grpc::Status s = csi.controller->ControllerGetVolume(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.status().volume_condition();
  };
  EXPECT_TRUE(condition().abnormal());
  EXPECT_FALSE(condition().message().empty());
  auto probe_ready = [&] {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    v1::ProbeResponse probe;
    return csi.identity->Probe(&ctx, {}, &probe).ok() && probe.ready().value();
  };
  // The device stays away long enough for gRPC's default reconnect backoff to grow past
  // 10 s (1 s x 1.6 per attempt); the driver's calls keep failing meanwhile.
  const auto down_until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < down_until) {
    ASSERT_FALSE(probe_ready()) << "Probe ready while the device is down";
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // polling pace, not a wait
  }
  // Back on the same address: the driver must use it again within a few seconds (its
  // channel retries at least every device::kMaxReconnectBackoffMs = 1 s).
  Stored again = StartStored(dir, "dev-c", {{"ssd", "1GiB"}}, dev.grpc);
  ASSERT_EQ(again.grpc, dev.grpc);
  const auto back = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor(probe_ready, 30, csi.proc.get())) << "the driver never reconnected";
  const double reconnect_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - back).count();
  std::printf("the driver used the restarted device after %.2f s\n", reconnect_s);
  EXPECT_LT(reconnect_s, 5.0) << "the driver took " << reconnect_s
                              << " s to use a device that came back";
  const v1::VolumeCondition back_condition = condition();
  EXPECT_FALSE(back_condition.abnormal()) << back_condition.message();
  again.proc->Stop(SIGTERM);
  csi.proc->Stop(SIGTERM);
  if (!KeepDirs() && !::testing::Test::HasFailure()) fs::remove_all(dir);
}

// LIST_VOLUMES_PUBLISHED_NODES: the device records the node ids a volume is published to;
// ListVolumes and ControllerGetVolume report them, through a crash of strata-stored.
TEST(ControllerSanityPublishedNodesTest, ListedUnpublishedAndKeptAcrossARestart) {
  char tmpl[] = "/tmp/strata-csi-pubnodes.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const fs::path dir(tmpl);
  Stored dev = StartStored(dir, "dev-p", {{"ssd", "1GiB"}});
  ASSERT_FALSE(dev.grpc.empty());
  Csi csi = StartCsi(dir, "csi-p", {{"dev-p", dev.grpc}});
  ASSERT_TRUE(csi.proc->Running());
  auto deadline = [] { return std::chrono::system_clock::now() + std::chrono::seconds(20); };

  v1::CreateVolumeRequest create;
  create.set_name("pubnodes");
  *create.add_volume_capabilities() = Block(Mode::MULTI_NODE_MULTI_WRITER);
  v1::CreateVolumeResponse created;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    ASSERT_TRUE(csi.controller->CreateVolume(&ctx, create, &created).ok());
  }
  const std::string id = created.volume().volume_id();
  auto publish = [&](const std::string& node, Mode::Mode mode) {
    v1::ControllerPublishVolumeRequest req;
    req.set_volume_id(id);
    req.set_node_id(node);
    *req.mutable_volume_capability() = Block(mode);
    v1::ControllerPublishVolumeResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    return csi.controller->ControllerPublishVolume(&ctx, req, &resp);
  };
  auto unpublish = [&](const std::string& node) {
    v1::ControllerUnpublishVolumeRequest req;
    req.set_volume_id(id);
    req.set_node_id(node);
    v1::ControllerUnpublishVolumeResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    return csi.controller->ControllerUnpublishVolume(&ctx, req, &resp);
  };
  // The volume's published_node_ids from ListVolumes (paged by one, to check the status
  // rides along every page) and from ControllerGetVolume; they must agree.
  auto listed = [&](grpc::Status* status) {
    std::set<std::string> nodes;
    std::string token;
    bool found = false;
    do {
      v1::ListVolumesRequest req;
      req.set_max_entries(1);
      req.set_starting_token(token);
      v1::ListVolumesResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(deadline());
      *status = csi.controller->ListVolumes(&ctx, req, &resp);
      if (!status->ok()) return nodes;
      for (const auto& e : resp.entries()) {
        if (e.volume().volume_id() != id) continue;
        found = true;
        nodes.insert(e.status().published_node_ids().begin(),
                     e.status().published_node_ids().end());
      }
      token = resp.next_token();
    } while (!token.empty());
    EXPECT_TRUE(found) << id << " not listed";
    v1::ControllerGetVolumeRequest greq;
    greq.set_volume_id(id);
    v1::ControllerGetVolumeResponse gresp;
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    grpc::Status g = csi.controller->ControllerGetVolume(&ctx, greq, &gresp);
    EXPECT_TRUE(g.ok()) << g.error_message();
    EXPECT_EQ(std::set<std::string>(gresp.status().published_node_ids().begin(),
                                    gresp.status().published_node_ids().end()),
              nodes);
    return nodes;
  };
  auto device_clients = [&] {
    sv1::GetLunRequest req;
    req.set_name(id.substr(id.find('/') + 1));
    sv1::Lun lun;
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    EXPECT_TRUE(dev.stub->GetLun(&ctx, req, &lun).ok());
    return std::set<std::string>(lun.access().allowed_clients().begin(),
                                 lun.access().allowed_clients().end());
  };
  grpc::Status st;
  EXPECT_TRUE(listed(&st).empty());
  ASSERT_TRUE(st.ok()) << st.error_message();

  // Two nodes: both listed, both on the access list; publishing again changes nothing.
  ASSERT_TRUE(publish("node-1@127.0.0.1", Mode::MULTI_NODE_MULTI_WRITER).ok());
  ASSERT_TRUE(publish("node-2@127.0.0.2", Mode::MULTI_NODE_MULTI_WRITER).ok());
  ASSERT_TRUE(publish("node-2@127.0.0.2", Mode::MULTI_NODE_MULTI_WRITER).ok());
  EXPECT_EQ(listed(&st), (std::set<std::string>{"node-1@127.0.0.1", "node-2@127.0.0.2"}));
  EXPECT_EQ(device_clients(), (std::set<std::string>{"127.0.0.1", "127.0.0.2"}));
  // Single-node access is checked by node id: another node behind the same IP is refused.
  grpc::Status single = publish("node-3@127.0.0.2", Mode::SINGLE_NODE_WRITER);
  EXPECT_EQ(single.error_code(), StatusCode::FAILED_PRECONDITION) << single.error_message();

  // Unpublish one: one left, in the listing and on the access list; again: still OK.
  ASSERT_TRUE(unpublish("node-1@127.0.0.1").ok());
  ASSERT_TRUE(unpublish("node-1@127.0.0.1").ok());
  EXPECT_EQ(listed(&st), std::set<std::string>{"node-2@127.0.0.2"});
  EXPECT_EQ(device_clients(), std::set<std::string>{"127.0.0.2"});

  // strata-stored killed and started again on the same address: the record is still there.
  dev.proc->Stop(SIGKILL);
  Stored again = StartStored(dir, "dev-p", {{"ssd", "1GiB"}}, dev.grpc);
  ASSERT_EQ(again.grpc, dev.grpc);
  dev.stub = std::move(again.stub);
  std::set<std::string> after;
  ASSERT_TRUE(WaitFor(
      [&] {
        after = listed(&st);
        return st.ok();
      },
      30, csi.proc.get()))
      << "ListVolumes never succeeded after the restart: " << st.error_message();
  EXPECT_EQ(after, std::set<std::string>{"node-2@127.0.0.2"});
  EXPECT_EQ(device_clients(), std::set<std::string>{"127.0.0.2"});

  // The last node goes: none listed, nobody on the list, and the volume can be deleted.
  ASSERT_TRUE(unpublish("node-2@127.0.0.2").ok());
  EXPECT_TRUE(listed(&st).empty());
  EXPECT_TRUE(device_clients().empty());
  {
    v1::DeleteVolumeRequest req;
    req.set_volume_id(id);
    v1::DeleteVolumeResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    grpc::Status d = csi.controller->DeleteVolume(&ctx, req, &resp);
    EXPECT_TRUE(d.ok()) << d.error_message();
  }
  again.proc->Stop(SIGTERM);
  csi.proc->Stop(SIGTERM);
  if (!KeepDirs() && !::testing::Test::HasFailure()) fs::remove_all(dir);
}

// --mode node: Identity and the Node service's info calls; no Controller service.
TEST(CsiNodeModeTest, NodeGetInfoAndNoControllerService) {
  char tmpl[] = "/tmp/strata-csi-node.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const fs::path dir(tmpl);
  Csi csi = StartCsi(dir, "csi-n", {},
                     {"--mode", "node", "--node-id", "worker-1@127.0.0.9", "--zone", "zone-a",
                      "--state-dir", (dir / "state").string(), "--max-volumes", "64"});
  ASSERT_TRUE(csi.proc->Running());
  {
    grpc::ClientContext ctx;
    v1::NodeGetInfoResponse info;
    ASSERT_TRUE(csi.node->NodeGetInfo(&ctx, {}, &info).ok());
    EXPECT_EQ(info.node_id(), "worker-1@127.0.0.9");
    EXPECT_EQ(info.accessible_topology().segments().at("topology.block.csi.strata.io/zone"),
              "zone-a");
    EXPECT_EQ(info.max_volumes_per_node(), 64);
  }
  {
    grpc::ClientContext ctx;
    v1::NodeGetCapabilitiesResponse caps;
    EXPECT_TRUE(csi.node->NodeGetCapabilities(&ctx, {}, &caps).ok());
    std::set<int> types;
    for (const auto& c : caps.capabilities()) types.insert(c.rpc().type());
    EXPECT_EQ(types, (std::set<int>{v1::NodeServiceCapability::RPC::STAGE_UNSTAGE_VOLUME,
                                    v1::NodeServiceCapability::RPC::GET_VOLUME_STATS,
                                    v1::NodeServiceCapability::RPC::EXPAND_VOLUME,
                                    v1::NodeServiceCapability::RPC::VOLUME_CONDITION}));
  }
  // Volume stats and expansion of paths that hold no volume of this plugin: NOT_FOUND;
  // missing fields: INVALID_ARGUMENT naming them.
  {
    grpc::ClientContext ctx;
    v1::NodeGetVolumeStatsRequest req;
    req.set_volume_id("dev-a/csi-0123");
    req.set_volume_path((dir / "no-such-volume").string());
    v1::NodeGetVolumeStatsResponse resp;
    EXPECT_EQ(csi.node->NodeGetVolumeStats(&ctx, req, &resp).error_code(), StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    v1::NodeGetVolumeStatsRequest req;
    req.set_volume_id("dev-a/csi-0123");
    req.set_volume_path(dir.string());  // exists, but is no dm device
    v1::NodeGetVolumeStatsResponse resp;
    grpc::Status s = csi.node->NodeGetVolumeStats(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), StatusCode::NOT_FOUND) << s.error_message();
  }
  {
    grpc::ClientContext ctx;
    v1::NodeGetVolumeStatsRequest req;
    req.set_volume_id("dev-a/csi-0123");
    v1::NodeGetVolumeStatsResponse resp;
    grpc::Status s = csi.node->NodeGetVolumeStats(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(s.error_message().find("volume_path"), std::string::npos) << s.error_message();
  }
  {
    grpc::ClientContext ctx;
    v1::NodeExpandVolumeRequest req;
    req.set_volume_id("dev-a/csi-0123");
    req.set_volume_path((dir / "no-such-volume").string());
    v1::NodeExpandVolumeResponse resp;
    EXPECT_EQ(csi.node->NodeExpandVolume(&ctx, req, &resp).error_code(), StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    v1::NodeUnpublishVolumeRequest req;
    req.set_volume_id("dev-a/csi-0123");
    req.set_target_path((dir / "never-published").string());
    v1::NodeUnpublishVolumeResponse resp;
    EXPECT_TRUE(csi.node->NodeUnpublishVolume(&ctx, req, &resp).ok());
  }
  {
    grpc::ClientContext ctx;
    v1::NodePublishVolumeRequest req;
    req.set_volume_id("dev-a/csi-0123");
    req.set_staging_target_path((dir / "not-staged").string());
    req.set_target_path((dir / "target").string());
    *req.mutable_volume_capability() = Mount();
    v1::NodePublishVolumeResponse resp;
    EXPECT_EQ(csi.node->NodePublishVolume(&ctx, req, &resp).error_code(),
              StatusCode::FAILED_PRECONDITION);
  }
  {
    grpc::ClientContext ctx;
    v1::GetPluginCapabilitiesResponse caps;
    ASSERT_TRUE(csi.identity->GetPluginCapabilities(&ctx, {}, &caps).ok());
    for (const auto& c : caps.capabilities()) {
      EXPECT_NE(c.service().type(), v1::PluginCapability::Service::CONTROLLER_SERVICE);
    }
  }
  {
    grpc::ClientContext ctx;
    v1::ProbeResponse probe;
    ASSERT_TRUE(csi.identity->Probe(&ctx, {}, &probe).ok());
    EXPECT_TRUE(probe.ready().value());
  }
  {
    grpc::ClientContext ctx;
    v1::ControllerGetCapabilitiesResponse caps;
    EXPECT_EQ(csi.controller->ControllerGetCapabilities(&ctx, {}, &caps).error_code(),
              StatusCode::UNIMPLEMENTED);
  }
  csi.proc->Stop(SIGTERM);
  if (!KeepDirs() && !::testing::Test::HasFailure()) fs::remove_all(dir);
}

// --mode node on a kernel without nbd (this CI host): NodeStageVolume of a block volume
// answers FAILED_PRECONDITION naming the missing module, and leaves nothing behind;
// NodeGetCapabilities offers STAGE_UNSTAGE_VOLUME; unstaging what was never staged is OK.
TEST(CsiNodeModeTest, StageWithoutKernelModulesIsFailedPrecondition) {
  if (fs::exists("/sys/module/nbd") && fs::exists("/sys/module/dm_multipath") &&
      fs::exists("/sys/module/dm_round_robin")) {
    GTEST_SKIP() << "this kernel has nbd and dm-multipath (the VM tier tests staging)";
  }
  char tmpl[] = "/tmp/strata-csi-stage.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const fs::path dir(tmpl);
  fs::create_directories(dir / "staging");
  Csi csi = StartCsi(dir, "csi-s", {},
                     {"--mode", "node", "--node-id", "worker-3@127.0.0.11", "--state-dir",
                      (dir / "state").string()});
  ASSERT_TRUE(csi.proc->Running());
  {
    grpc::ClientContext ctx;
    v1::NodeGetCapabilitiesResponse caps;
    ASSERT_TRUE(csi.node->NodeGetCapabilities(&ctx, {}, &caps).ok());
    bool stage = false;
    for (const auto& c : caps.capabilities()) {
      stage |= c.rpc().type() == v1::NodeServiceCapability::RPC::STAGE_UNSTAGE_VOLUME;
    }
    EXPECT_TRUE(stage);
  }
  {
    grpc::ClientContext ctx;
    v1::NodeStageVolumeRequest req;
    req.set_volume_id("dev-a/csi-0123");
    req.set_staging_target_path((dir / "staging").string());
    *req.mutable_volume_capability() = Block();
    auto& pc = *req.mutable_publish_context();
    pc["wwn"] = "naa.6001405000000001";
    pc["exportName"] = "csi-0123";
    pc["portals"] = "127.0.0.1:1,127.0.0.1:2";
    v1::NodeStageVolumeResponse resp;
    grpc::Status s = csi.node->NodeStageVolume(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), StatusCode::FAILED_PRECONDITION) << s.error_message();
    const bool names_module = s.error_message().find("nbd") != std::string::npos ||
                              s.error_message().find("dm_multipath") != std::string::npos;
    EXPECT_TRUE(names_module) << s.error_message();
    if (!fs::exists("/sys/module/nbd")) {
      EXPECT_NE(s.error_message().find("kernel module nbd"), std::string::npos)
          << s.error_message();
    }
    EXPECT_TRUE(fs::is_empty(dir / "staging"));
  }
  {
    grpc::ClientContext ctx;
    v1::NodeUnstageVolumeRequest req;
    req.set_volume_id("dev-a/csi-0123");
    req.set_staging_target_path((dir / "staging").string());
    v1::NodeUnstageVolumeResponse resp;
    EXPECT_TRUE(csi.node->NodeUnstageVolume(&ctx, req, &resp).ok());
  }
  csi.proc->Stop(SIGTERM);
  if (!KeepDirs() && !::testing::Test::HasFailure()) fs::remove_all(dir);
}

// --mode all: both services in one process. Its only device never answers: not ready.
TEST(CsiNodeModeTest, AllModeServesBothAndIsNotReadyWithoutADevice) {
  char tmpl[] = "/tmp/strata-csi-all.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const fs::path dir(tmpl);
  Csi csi = StartCsi(dir, "csi-all", {{"dev-x", "127.0.0.1:1"}},
                     {"--mode", "all", "--node-id", "worker-2@127.0.0.10", "--state-dir",
                      (dir / "state").string()});
  ASSERT_TRUE(csi.proc->Running());
  {
    grpc::ClientContext ctx;
    v1::NodeGetInfoResponse info;
    ASSERT_TRUE(csi.node->NodeGetInfo(&ctx, {}, &info).ok());
    EXPECT_EQ(info.node_id(), "worker-2@127.0.0.10");
  }
  {
    grpc::ClientContext ctx;
    v1::ControllerGetCapabilitiesResponse caps;
    EXPECT_TRUE(csi.controller->ControllerGetCapabilities(&ctx, {}, &caps).ok());
    EXPECT_GT(caps.capabilities_size(), 0);
  }
  {
    grpc::ClientContext ctx;
    v1::ProbeResponse probe;
    ASSERT_TRUE(csi.identity->Probe(&ctx, {}, &probe).ok());
    EXPECT_FALSE(probe.ready().value());
  }
  csi.proc->Stop(SIGTERM);
  if (!KeepDirs() && !::testing::Test::HasFailure()) fs::remove_all(dir);
}

// Bad flags: exit code 2 and a message naming the flag.
TEST(CsiFlagsTest, BadFlagsExitWithUsage) {
  char tmpl[] = "/tmp/strata-csi-flags.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const fs::path dir(tmpl);
  const std::string sock = "unix://" + (dir / "x.sock").string();
  const std::vector<std::vector<std::string>> bad = {
      {"--endpoint", "tcp://127.0.0.1:1", "--device", "d=127.0.0.1:1"},
      {"--endpoint", sock},                                 // controller without devices
      {"--endpoint", sock, "--device", "d"},                // not NAME=HOST:PORT
      {"--endpoint", sock, "--device", "a/b=127.0.0.1:1"},  // '/' in a device name
      {"--endpoint", sock, "--mode", "node"},               // no --node-id
      {"--endpoint", sock, "--mode", "node", "--node-id", "worker-1"},  // no IP
      {"--endpoint", sock, "--mode", "bogus", "--device", "d=127.0.0.1:1"},
      {"--endpoint", sock, "--mode", "node", "--node-id", "w@127.0.0.1", "--max-volumes", "-1"},
      {"--endpoint", sock, "--mode", "node", "--node-id", "w@127.0.0.1", "--dm-prefix", "a/b"},
      {"--endpoint", sock, "--mode", "node", "--node-id", "w@127.0.0.1", "--no-path-queue-seconds",
       "-5"},
      {"--endpoint", sock, "--device", "d=127.0.0.1:1", "--device-topology", "e=zone-a"},
  };
  for (const auto& args : bad) {
    std::vector<std::string> argv = {g_csi};
    argv.insert(argv.end(), args.begin(), args.end());
    Child child(argv, (dir / "flags.log").string());
    ASSERT_TRUE(WaitFor([&] { return !child.Running(); }, 10, nullptr)) << args[1];
    EXPECT_EQ(child.exit_code(), 2) << args.back();
  }
  std::ifstream log(dir / "flags.log");
  std::stringstream text;
  text << log.rdbuf();
  EXPECT_NE(text.str().find("--node-id"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("--endpoint"), std::string::npos) << text.str();
  if (!KeepDirs() && !::testing::Test::HasFailure()) fs::remove_all(dir);
}

// Every mode dials the devices (node mode's path checker reads the LUNs it stages): with neither
// --tls-* nor --insecure strata-csi refuses to start, naming the flag, never plaintext by default.
TEST(CsiFlagsTest, EveryModeNeedsTlsOrInsecure) {
  char tmpl[] = "/tmp/strata-csi-tls.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const fs::path dir(tmpl);
  const std::string sock = "unix://" + (dir / "x.sock").string();
  const std::vector<std::vector<std::string>> modes = {
      {"--mode", "node", "--node-id", "w@127.0.0.1", "--state-dir", (dir / "state").string()},
      {"--mode", "controller", "--device", "d=127.0.0.1:1"},
      {"--mode", "all", "--node-id", "w@127.0.0.1", "--state-dir", (dir / "state").string(),
       "--device", "d=127.0.0.1:1"},
  };
  for (const auto& mode : modes) {
    const fs::path log = dir / (mode[1] + ".log");
    std::vector<std::string> argv = {g_csi, "--endpoint", sock};
    argv.insert(argv.end(), mode.begin(), mode.end());
    Child child(argv, log.string());
    ASSERT_TRUE(WaitFor([&] { return !child.Running(); }, 10, nullptr)) << mode[1];
    EXPECT_EQ(child.exit_code(), 2) << mode[1];
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_NE(text.str().find("--tls-ca: is required"), std::string::npos) << text.str();
    EXPECT_NE(text.str().find("only with an explicit --insecure"), std::string::npos) << text.str();
  }
  if (!KeepDirs() && !::testing::Test::HasFailure()) fs::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  strata::IgnoreSigpipe();
  ::testing::InitGoogleTest(&argc, argv);
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s STRATA_STORED STRATA_CSI STRATA_ADMIN [gtest flags]\n",
                 argv[0]);
    return 2;
  }
  g_stored = argv[1];
  g_csi = argv[2];
  g_admin = argv[3];
  return RUN_ALL_TESTS();
}
