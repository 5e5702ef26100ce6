// The snapshot RPCs of StorageDeviceService over a Device on MemEnv: codes, field
// names, idempotence, paging tokens (CSI ListSnapshots semantics), restores.

#include <gtest/gtest.h>

#include "grpc_service.h"
#include "strata/common/mem_env.h"

namespace strata::storage {
namespace {

class SnapshotServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DeviceConfig c;
    c.name = "dev-s";
    c.tiers.push_back(*ParseTierFlag("ssd=/srv/ssd:1GiB"));
    c.tiers.push_back(*ParseTierFlag("sata=/srv/sata:1GiB"));
    auto dev = Device::Open(&env_, c);
    ASSERT_TRUE(dev.ok()) << dev.status().ToString();
    device_ = std::move(*dev);
    service_ = std::make_unique<StorageDeviceService>(device_.get(), "test");
    v1::CreateLunRequest req;
    req.set_name("vol");
    req.set_size_bytes(1 << 20);
    req.set_owner("team-a");
    v1::Lun lun;
    ASSERT_TRUE(service_->CreateLun(nullptr, &req, &lun).ok());
  }

  grpc::Status Create(const std::string& name, const std::string& source, v1::Snapshot* out) {
    v1::CreateSnapshotRequest req;
    req.set_name(name);
    req.set_source_lun(source);
    return service_->CreateSnapshot(nullptr, &req, out);
  }
  grpc::Status List(const std::string& source, const std::string& name, uint32_t max,
                    const std::string& token, v1::ListSnapshotsResponse* out) {
    v1::ListSnapshotsRequest req;
    req.set_source_lun(source);
    req.set_name(name);
    req.set_max_entries(max);
    req.set_starting_token(token);
    return service_->ListSnapshots(nullptr, &req, out);
  }

  MemEnv env_;
  std::unique_ptr<Device> device_;
  std::unique_ptr<StorageDeviceService> service_;
};

TEST_F(SnapshotServiceTest, CreateGetDeleteFollowTheContract) {
  v1::Snapshot s;
  ASSERT_TRUE(Create("s1", "vol", &s).ok());
  EXPECT_TRUE(s.ready_to_use());
  EXPECT_EQ(s.size_bytes(), 1u << 20);
  EXPECT_EQ(s.source_lun(), "vol");
  EXPECT_EQ(s.owner(), "team-a");
  EXPECT_EQ(s.tier(), v1::TIER_CLASS_SSD);
  v1::Snapshot again;
  ASSERT_TRUE(Create("s1", "vol", &again).ok());
  EXPECT_EQ(again.id(), s.id());

  v1::CreateLunRequest other;
  other.set_name("other");
  other.set_size_bytes(1 << 20);
  v1::Lun lun;
  ASSERT_TRUE(service_->CreateLun(nullptr, &other, &lun).ok());
  auto st = Create("s1", "other", &again);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(st.error_message().rfind("name: ", 0), 0u) << st.error_message();
  st = Create("s2", "nope", &again);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(st.error_message().rfind("source_lun: ", 0), 0u) << st.error_message();
  EXPECT_EQ(Create("", "vol", &again).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  v1::GetSnapshotRequest get;
  get.set_name("nope");
  EXPECT_EQ(service_->GetSnapshot(nullptr, &get, &again).error_code(), grpc::StatusCode::NOT_FOUND);
  get.set_name("s1");
  ASSERT_TRUE(service_->GetSnapshot(nullptr, &get, &again).ok());
  EXPECT_EQ(again.id(), s.id());

  v1::DeleteSnapshotRequest del;
  v1::DeleteSnapshotResponse resp;
  del.set_name("s1");
  EXPECT_TRUE(service_->DeleteSnapshot(nullptr, &del, &resp).ok());
  EXPECT_TRUE(service_->DeleteSnapshot(nullptr, &del, &resp).ok());  // idempotent
  del.set_name("");
  EXPECT_EQ(service_->DeleteSnapshot(nullptr, &del, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(SnapshotServiceTest, ListPagesWithOpaqueTokensAndFilters) {
  v1::CreateLunRequest other;
  other.set_name("other");
  other.set_size_bytes(1 << 20);
  v1::Lun lun;
  ASSERT_TRUE(service_->CreateLun(nullptr, &other, &lun).ok());
  v1::Snapshot s;
  for (const char* n : {"a", "b", "c", "d", "e"}) ASSERT_TRUE(Create(n, "vol", &s).ok());
  ASSERT_TRUE(Create("x", "other", &s).ok());

  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    v1::ListSnapshotsResponse page;
    ASSERT_TRUE(List("vol", "", 2, token, &page).ok());
    EXPECT_LE(page.snapshots_size(), 2);
    for (const auto& sn : page.snapshots()) seen.push_back(sn.name());
    token = page.next_token();
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(pages, 3);

  v1::ListSnapshotsResponse page;
  EXPECT_EQ(List("", "", 0, "garbage", &page).error_code(), grpc::StatusCode::ABORTED);
  page.Clear();
  ASSERT_TRUE(List("", "x", 0, "", &page).ok());
  ASSERT_EQ(page.snapshots_size(), 1);
  EXPECT_EQ(page.snapshots(0).source_lun(), "other");
  page.Clear();
  ASSERT_TRUE(List("", "", 0, "", &page).ok());
  EXPECT_EQ(page.snapshots_size(), 6);
  EXPECT_TRUE(page.next_token().empty());
  page.Clear();
  ASSERT_TRUE(List("", "missing", 0, "", &page).ok());
  EXPECT_EQ(page.snapshots_size(), 0);
}

TEST_F(SnapshotServiceTest, CreateLunFromSnapshotChecksItsFields) {
  v1::Snapshot s;
  ASSERT_TRUE(Create("s", "vol", &s).ok());
  v1::CreateLunRequest req;
  req.set_name("restored");
  req.set_size_bytes(1 << 20);
  req.set_from_snapshot("s");
  req.set_clone_from("vol");
  v1::Lun lun;
  auto st = service_->CreateLun(nullptr, &req, &lun);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message().rfind("from_snapshot: ", 0), 0u) << st.error_message();
  req.clear_clone_from();
  req.set_size_bytes(4096);
  EXPECT_EQ(service_->CreateLun(nullptr, &req, &lun).error_code(), grpc::StatusCode::OUT_OF_RANGE);
  req.set_size_bytes(1 << 20);
  req.set_from_snapshot("nope");
  EXPECT_EQ(service_->CreateLun(nullptr, &req, &lun).error_code(), grpc::StatusCode::NOT_FOUND);
  req.set_from_snapshot("s");
  ASSERT_TRUE(service_->CreateLun(nullptr, &req, &lun).ok());
  EXPECT_EQ(lun.tier(), v1::TIER_CLASS_SSD);
}

TEST_F(SnapshotServiceTest, MaintenanceRefusesNewSnapshotsAndAnswersRetries) {
  v1::Snapshot s;
  ASSERT_TRUE(Create("s", "vol", &s).ok());
  ASSERT_TRUE(device_->SetState(DeviceState::kMaintenance, "disk swap").ok());
  auto st = Create("t", "vol", &s);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find("disk swap"), std::string::npos) << st.error_message();
  EXPECT_TRUE(Create("s", "vol", &s).ok());
  ASSERT_TRUE(device_->SetState(DeviceState::kOnline, "").ok());
  EXPECT_TRUE(Create("t", "vol", &s).ok());
}

}  // namespace
}  // namespace strata::storage
