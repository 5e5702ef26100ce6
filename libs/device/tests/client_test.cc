#include "strata/device/client.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>

#include "strata/device/channel.h"
#include "strata/device/testing/fake_client.h"
#include "strata/device/tier.h"
#include "strata/storage/v1/storage.grpc.pb.h"

namespace strata::device {
namespace {

TEST(TierTest, NamesRoundTrip) {
  for (auto t : {sv1::TIER_CLASS_SSD, sv1::TIER_CLASS_SAS, sv1::TIER_CLASS_SATA}) {
    auto parsed = ParseTier(TierName(t));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, t);
  }
  EXPECT_EQ(TierName(sv1::TIER_CLASS_SSD), "ssd");
  EXPECT_EQ(TierName(sv1::TIER_CLASS_SAS), "sas");
  EXPECT_EQ(TierName(sv1::TIER_CLASS_SATA), "sata");
  EXPECT_EQ(TierName(sv1::TIER_CLASS_UNSPECIFIED), "");
  EXPECT_EQ(*ParseTier(""), sv1::TIER_CLASS_UNSPECIFIED);
}

TEST(TierTest, UnknownTierNamesTheText) {
  auto t = ParseTier("nvme");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(t.status().message().find("nvme"), std::string::npos);
  EXPECT_FALSE(ParseTier("SSD").ok());  // names are lower case only
}

TEST(FromGrpcTest, KeepsTheCodeAndPrefixesTheCall) {
  EXPECT_TRUE(FromGrpc(grpc::Status::OK, "x").ok());
  Status s = FromGrpc(grpc::Status(grpc::StatusCode::NOT_FOUND, "no LUN"), "GetLun a");
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "GetLun a: no LUN");
  for (auto code : {grpc::StatusCode::ALREADY_EXISTS, grpc::StatusCode::RESOURCE_EXHAUSTED,
                    grpc::StatusCode::FAILED_PRECONDITION, grpc::StatusCode::UNAVAILABLE,
                    grpc::StatusCode::DEADLINE_EXCEEDED, grpc::StatusCode::ABORTED}) {
    EXPECT_EQ(static_cast<int>(FromGrpc(grpc::Status(code, "m"), "w").code()),
              static_cast<int>(code));
  }
}

TEST(ClientCacheTest, SharesOneClientPerAddressUntilForgotten) {
  int made = 0;
  ClientCache cache([&](const std::string& a) {
    ++made;
    return NewGrpcClient(a, std::chrono::milliseconds(100));
  });
  ClientPtr a1 = cache.Get("127.0.0.1:1");
  ClientPtr a2 = cache.Get("127.0.0.1:1");
  ClientPtr b = cache.Get("127.0.0.1:2");
  EXPECT_EQ(a1, a2);
  EXPECT_NE(a1, b);
  EXPECT_EQ(a1->address(), "127.0.0.1:1");
  EXPECT_EQ(made, 2);
  cache.Forget("127.0.0.1:1");
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_NE(cache.Get("127.0.0.1:1"), a1);
  EXPECT_EQ(made, 3);
}

// A device that answers a few calls: GetLun("gone") NOT_FOUND, ListLuns in pages of one.
class TinyDevice final : public sv1::StorageDevice::Service {
 public:
  grpc::Status GetLun(grpc::ServerContext*, const sv1::GetLunRequest* req, sv1::Lun* out) override {
    if (req->name() == "gone") return {grpc::StatusCode::NOT_FOUND, "no such LUN"};
    out->set_name(req->name());
    out->set_moved_to("10.0.0.2:7000");
    return grpc::Status::OK;
  }
  grpc::Status ListLuns(grpc::ServerContext*, const sv1::ListLunsRequest* req,
                        sv1::ListLunsResponse* out) override {
    ++list_calls;
    int next = req->page_token().empty() ? 0 : std::stoi(req->page_token());
    out->add_luns()->set_name("lun-" + std::to_string(next) + "-" + req->owner());
    if (next < 2) out->set_next_page_token(std::to_string(next + 1));
    return grpc::Status::OK;
  }
  grpc::Status SetLunDedup(grpc::ServerContext*, const sv1::SetLunDedupRequest* req,
                           sv1::Lun* out) override {
    out->set_name(req->name());
    out->set_dedup(req->dedup() && req->fold_existing());
    return grpc::Status::OK;
  }
  std::atomic<int> list_calls{0};
};

class GrpcClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(&service_);
    server_ = b.BuildAndStart();
    ASSERT_TRUE(server_ != nullptr);
    ASSERT_NE(port, 0);
    address_ = "127.0.0.1:" + std::to_string(port);
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
  }

  TinyDevice service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

TEST_F(GrpcClientTest, CallsReachTheDevice) {
  ClientPtr c = NewGrpcClient(address_, std::chrono::seconds(10));
  auto lun = c->GetLun("a");
  ASSERT_TRUE(lun.ok()) << lun.status().message();
  EXPECT_EQ(lun->moved_to(), "10.0.0.2:7000");
  auto d = c->SetLunDedup("a", true, true);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_TRUE(d->dedup());
}

TEST_F(GrpcClientTest, ErrorsNameTheCallTheLunAndTheAddress) {
  ClientPtr c = NewGrpcClient(address_, std::chrono::seconds(10));
  auto lun = c->GetLun("gone");
  ASSERT_FALSE(lun.ok());
  EXPECT_EQ(lun.status().code(), StatusCode::kNotFound);
  EXPECT_NE(lun.status().message().find("GetLun gone"), std::string::npos);
  EXPECT_NE(lun.status().message().find(address_), std::string::npos);
  EXPECT_NE(lun.status().message().find("no such LUN"), std::string::npos);
  // Not implemented by this device: the code passes through.
  EXPECT_EQ(c->GetMigration("a").status().code(), StatusCode::kUnimplemented);
}

TEST_F(GrpcClientTest, ListLunsFollowsEveryPage) {
  ClientPtr c = NewGrpcClient(address_, std::chrono::seconds(10));
  auto luns = c->ListLuns("ns1");
  ASSERT_TRUE(luns.ok()) << luns.status().message();
  ASSERT_EQ(luns->size(), 3u);
  EXPECT_EQ((*luns)[0].name(), "lun-0-ns1");
  EXPECT_EQ((*luns)[2].name(), "lun-2-ns1");
  EXPECT_EQ(service_.list_calls.load(), 3);
}

TEST_F(GrpcClientTest, AGoneDeviceIsUnavailableWithinTheDeadline) {
  server_->Shutdown(std::chrono::system_clock::now());
  server_.reset();
  ClientPtr c = NewGrpcClient(address_, std::chrono::milliseconds(500));
  auto st = c->GetDeviceStatus();
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(st.status().code() == StatusCode::kUnavailable ||
              st.status().code() == StatusCode::kDeadlineExceeded)
      << st.status().message();
  EXPECT_NE(st.status().message().find("GetDeviceStatus"), std::string::npos);
}

TEST(FakeClientSnapshotTest, FollowsTheDevicesRules) {
  testing::FakeClient d("fake:1");
  sv1::CreateLunRequest lun;
  lun.set_name("vol");
  lun.set_size_bytes(1 << 20);
  lun.set_tier(sv1::TIER_CLASS_SAS);
  ASSERT_TRUE(d.CreateLun(lun).ok());

  sv1::CreateSnapshotRequest req;
  req.set_source_lun("vol");
  req.set_name("s1");
  auto s1 = d.CreateSnapshot(req);
  ASSERT_TRUE(s1.ok()) << s1.status().message();
  EXPECT_TRUE(s1->ready_to_use());
  EXPECT_EQ(s1->size_bytes(), 1u << 20);
  EXPECT_EQ(s1->tier(), sv1::TIER_CLASS_SAS);
  auto again = d.CreateSnapshot(req);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->id(), s1->id());

  ASSERT_TRUE(d.CreateLun([] {
                 sv1::CreateLunRequest r;
                 r.set_name("other");
                 r.set_size_bytes(4096);
                 return r;
               }())
                  .ok());
  req.set_source_lun("other");
  EXPECT_EQ(d.CreateSnapshot(req).status().code(), StatusCode::kAlreadyExists);
  req.set_source_lun("nope");
  req.set_name("s2");
  EXPECT_EQ(d.CreateSnapshot(req).status().code(), StatusCode::kNotFound);

  // Snapshots outlive their LUN; restore checks the snapshot and the size.
  ASSERT_TRUE(d.DeleteLun("vol").ok());
  EXPECT_TRUE(d.GetSnapshot("s1").ok());
  sv1::CreateLunRequest restore;
  restore.set_name("restored");
  restore.set_from_snapshot("s1");
  restore.set_size_bytes(4096);
  EXPECT_EQ(d.CreateLun(restore).status().code(), StatusCode::kOutOfRange);
  restore.set_size_bytes(1 << 20);
  auto restored = d.CreateLun(restore);
  ASSERT_TRUE(restored.ok());
  EXPECT_EQ(restored->tier(), sv1::TIER_CLASS_SAS);
  restore.set_from_snapshot("gone");
  EXPECT_EQ(d.CreateLun(restore).status().code(), StatusCode::kNotFound);

  req.set_source_lun("other");
  for (const char* n : {"s2", "s3"}) {
    req.set_name(n);
    ASSERT_TRUE(d.CreateSnapshot(req).ok());
  }
  sv1::ListSnapshotsRequest list;
  list.set_max_entries(2);
  auto page = d.ListSnapshots(list);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->snapshots_size(), 2);
  ASSERT_FALSE(page->next_token().empty());
  list.set_starting_token(page->next_token());
  page = d.ListSnapshots(list);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->snapshots_size(), 1);
  EXPECT_EQ(page->snapshots(0).name(), "s3");
  EXPECT_TRUE(page->next_token().empty());
  list.set_starting_token("garbage");
  EXPECT_EQ(d.ListSnapshots(list).status().code(), StatusCode::kAborted);
  sv1::ListSnapshotsRequest by_source;
  by_source.set_source_lun("other");
  EXPECT_EQ(d.ListSnapshots(by_source)->snapshots_size(), 2);

  EXPECT_TRUE(d.DeleteSnapshot("s1").ok());
  EXPECT_TRUE(d.DeleteSnapshot("s1").ok());
  EXPECT_EQ(d.GetSnapshot("s1").status().code(), StatusCode::kNotFound);
}

TEST_F(GrpcClientTest, SnapshotCallsReachTheDevice) {
  // TinyDevice implements no snapshot call: the device's UNIMPLEMENTED comes through.
  ClientPtr c = NewGrpcClient(address_, std::chrono::seconds(10));
  EXPECT_EQ(c->GetSnapshot("s").status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(c->DeleteSnapshot("s").code(), StatusCode::kUnimplemented);
  EXPECT_EQ(c->ListSnapshots(sv1::ListSnapshotsRequest()).status().code(),
            StatusCode::kUnimplemented);
  EXPECT_EQ(c->CreateSnapshot(sv1::CreateSnapshotRequest()).status().code(),
            StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace strata::device
