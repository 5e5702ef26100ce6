// GetMigration's long poll (wait_ms) over a Device on MemEnv: the reply comes once the
// move ended (within the wait), bad waits are refused naming the field.
#include <gtest/gtest.h>

#include <string>

#include "grpc_service.h"
#include "strata/common/mem_env.h"

namespace strata::storage {
namespace {

class MigrationWaitServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DeviceConfig c;
    c.name = "dev-w";
    c.tiers.push_back(*ParseTierFlag("ssd=/srv/ssd:1GiB"));
    c.tiers.push_back(*ParseTierFlag("sata=/srv/sata:1GiB"));
    auto dev = Device::Open(&env_, c);
    ASSERT_TRUE(dev.ok()) << dev.status().ToString();
    device_ = std::move(*dev);
    service_ = std::make_unique<StorageDeviceService>(device_.get(), "test");
    v1::CreateLunRequest req;
    req.set_name("vol");
    req.set_size_bytes(8 << 20);
    v1::Lun lun;
    ASSERT_TRUE(service_->CreateLun(nullptr, &req, &lun).ok());
    auto v = device_->engine()->OpenVolume("vol");
    ASSERT_TRUE(v.ok());
    ASSERT_TRUE((*v)->Write(0, std::string(8 << 20, 'x'), false).ok());
  }

  grpc::Status Get(const std::string& name, uint32_t wait_ms, v1::Migration* out) {
    v1::GetMigrationRequest req;
    req.set_name(name);
    req.set_wait_ms(wait_ms);
    return service_->GetMigration(nullptr, &req, out);
  }

  MemEnv env_;
  std::unique_ptr<Device> device_;
  std::unique_ptr<StorageDeviceService> service_;
};

TEST_F(MigrationWaitServiceTest, AWaitingGetRepliesOnceTheMoveEnded) {
  v1::MigrateLunRequest req;
  req.set_name("vol");
  req.set_to_tier(v1::TIER_CLASS_SATA);
  v1::Migration m;
  ASSERT_TRUE(service_->MigrateLun(nullptr, &req, &m).ok());
  // A deadline, not a sleep: the wait ends as the move does.
  for (int i = 0; i < 60 && m.state() == v1::MIGRATION_STATE_RUNNING; ++i) {
    ASSERT_TRUE(Get("vol", 1000, &m).ok());
  }
  EXPECT_EQ(m.state(), v1::MIGRATION_STATE_DONE);
  // Nothing running: a waiting get replies at once with the last move.
  ASSERT_TRUE(Get("vol", 60'000, &m).ok());
  EXPECT_EQ(m.state(), v1::MIGRATION_STATE_DONE);
}

TEST_F(MigrationWaitServiceTest, BadWaitsAndNamesAreRefused) {
  v1::Migration m;
  auto s = Get("vol", 60'001, &m);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("wait_ms"), std::string::npos) << s.error_message();
  EXPECT_EQ(Get("nope", 10, &m).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Get("", 10, &m).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace strata::storage
