// OpenMoveExport and the per-move NBD exports (MoveExportCatalog) over a Device on
// MemEnv: codes and field names, tokens that die on accept and delete, exports that
// never list, move writes kept out of the LUN's client statistics.

#include <gtest/gtest.h>
#include <sched.h>
#include <stdlib.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "grpc_service.h"
#include "move_exports.h"
#include "strata/common/env.h"
#include "strata/common/mem_env.h"
#include "strata/storage/copy_priority.h"

namespace strata::storage {
namespace {

constexpr char kWwn[] = "naa.3000000000000abc";

class MoveExportServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DeviceConfig c;
    c.name = "dev-m";
    c.tiers.push_back(*ParseTierFlag("ssd=/srv/ssd:1GiB"));
    auto dev = Device::Open(&env_, c);
    ASSERT_TRUE(dev.ok()) << dev.status().ToString();
    device_ = std::move(*dev);
    device_->SetPortals({{"0.0.0.0", 10809}, {"10.1.2.3", 10809}});
    catalog_ = std::make_unique<MoveExportCatalog>(device_->engine());
    service_ = std::make_unique<StorageDeviceService>(device_.get(), "test");
    service_->SetMoveExports(catalog_.get(), /*nbd_tls_required=*/false);
    ASSERT_TRUE(CreateIncoming("vol", kWwn).ok());
  }

  grpc::Status CreateIncoming(const std::string& name, const std::string& wwn) {
    v1::CreateLunRequest req;
    req.set_name(name);
    req.set_size_bytes(1 << 20);
    req.set_wwn(wwn);
    v1::Lun lun;
    return service_->CreateLun(nullptr, &req, &lun);
  }
  grpc::Status OpenExport(const std::string& name, const std::string& wwn, v1::MoveExport* out) {
    v1::OpenMoveExportRequest req;
    req.set_name(name);
    req.set_wwn(wwn);
    return service_->OpenMoveExport(nullptr, &req, out);
  }
  std::string ExportName() {
    v1::MoveExport e;
    auto s = OpenExport("vol", kWwn, &e);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return e.export_name();
  }

  MemEnv env_;
  std::unique_ptr<Device> device_;
  std::unique_ptr<MoveExportCatalog> catalog_;
  std::unique_ptr<StorageDeviceService> service_;
  const ClientInfo client_{"127.0.0.1", "127.0.0.1:10809"};
};

TEST_F(MoveExportServiceTest, OpensAnExportWithASecretNameAndThePortals) {
  v1::MoveExport e;
  ASSERT_TRUE(OpenExport("vol", kWwn, &e).ok());
  const std::string prefix = "move/vol/";
  ASSERT_EQ(e.export_name().rfind(prefix, 0), 0u) << e.export_name();
  const std::string token = e.export_name().substr(prefix.size());
  EXPECT_EQ(token.size(), 32u);
  EXPECT_EQ(token.find_first_not_of("0123456789abcdef"), std::string::npos) << token;
  ASSERT_EQ(e.portals_size(), 2);
  EXPECT_EQ(e.portals(0), "0.0.0.0:10809");
  EXPECT_EQ(e.portals(1), "10.1.2.3:10809");
  v1::MoveExport again;
  ASSERT_TRUE(OpenExport("vol", kWwn, &again).ok());
  EXPECT_EQ(again.export_name(), e.export_name());  // idempotent
}

TEST_F(MoveExportServiceTest, RefusalsNameTheField) {
  v1::MoveExport e;
  auto s = OpenExport("nope", kWwn, &e);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message().rfind("name: ", 0), 0u) << s.error_message();
  s = OpenExport("vol", "naa.3000000000000abd", &e);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message().rfind("wwn: ", 0), 0u) << s.error_message();
  s = OpenExport("vol", "", &e);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message().rfind("wwn: ", 0), 0u) << s.error_message();
  EXPECT_EQ(OpenExport("", kWwn, &e).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // A LUN of this device's own (not a move's copy) is never a move export.
  v1::CreateLunRequest req;
  req.set_name("own");
  req.set_size_bytes(1 << 20);
  v1::Lun lun;
  ASSERT_TRUE(service_->CreateLun(nullptr, &req, &lun).ok());
  s = OpenExport("own", lun.wwn(), &e);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message().rfind("name: ", 0), 0u) << s.error_message();
}

TEST_F(MoveExportServiceTest, NbdTlsRequiredOrNoCatalogFallsBackToGrpc) {
  v1::MoveExport e;
  service_->SetMoveExports(catalog_.get(), /*nbd_tls_required=*/true);
  auto s = OpenExport("vol", kWwn, &e);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("TLS"), std::string::npos) << s.error_message();
  service_->SetMoveExports(nullptr, false);
  EXPECT_EQ(OpenExport("vol", kWwn, &e).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(MoveExportServiceTest, TheExportWritesTheIncomingLunAndNeverLists) {
  const std::string name = ExportName();
  auto vol = catalog_->Open(name, client_);
  ASSERT_TRUE(vol.ok()) << vol.status().ToString();
  EXPECT_EQ((*vol)->size_bytes(), 1u << 20);
  std::string data(8192, 'm');
  ASSERT_TRUE((*vol)->Write(4096, data, false).ok());
  ASSERT_TRUE((*vol)->WriteZeroes(65536, 4096, false).ok());
  ASSERT_TRUE((*vol)->Flush().ok());
  auto direct = device_->engine()->OpenVolume("vol");
  ASSERT_TRUE(direct.ok());
  std::string back(8192, '\0');
  ASSERT_TRUE((*direct)->Read(4096, back).ok());
  EXPECT_EQ(back, data);

  for (const auto& e : catalog_->List(client_)) {
    EXPECT_EQ(e.name.find("move/"), std::string::npos) << e.name;
    EXPECT_NE(e.name, "vol");  // still incoming
  }
  // The LUN itself stays hidden from clients until accepted.
  EXPECT_EQ(catalog_->Open("vol", client_).status().code(), StatusCode::kNotFound);
  // The move's writes are copy traffic: the NBD server records them into the export's
  // own statistics, not the LUN's.
  EXPECT_NE((*vol)->io_stats(), (*direct)->io_stats());
}

TEST_F(MoveExportServiceTest, AWrongOrMalformedTokenIsNotFound) {
  const std::string name = ExportName();
  std::string wrong = name;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  for (const std::string& n :
       {wrong, std::string("move/vol/"), std::string("move/vol"), std::string("move/"),
        std::string("move/nope/") + name.substr(name.rfind('/') + 1), name + "0"}) {
    EXPECT_EQ(catalog_->Open(n, client_).status().code(), StatusCode::kNotFound) << n;
  }
  EXPECT_TRUE(catalog_->Open(name, client_).ok());
}

TEST_F(MoveExportServiceTest, AcceptClosesTheExport) {
  const std::string name = ExportName();
  auto vol = catalog_->Open(name, client_);
  ASSERT_TRUE(vol.ok());
  v1::AcceptLunRequest acc;
  acc.set_name("vol");
  acc.set_wwn(kWwn);
  v1::Lun lun;
  ASSERT_TRUE(service_->AcceptLun(nullptr, &acc, &lun).ok());
  EXPECT_EQ(catalog_->Open(name, client_).status().code(), StatusCode::kNotFound);
  EXPECT_EQ((*vol)->Write(0, std::string(4096, 'x'), false).code(), StatusCode::kUnavailable);
  v1::MoveExport e;
  EXPECT_EQ(OpenExport("vol", kWwn, &e).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  // Accepted: an ordinary export now.
  EXPECT_TRUE(catalog_->Open("vol", client_).ok());
}

TEST_F(MoveExportServiceTest, DeleteClosesTheExportAndARecreatedLunGetsANewOne) {
  const std::string name = ExportName();
  auto vol = catalog_->Open(name, client_);
  ASSERT_TRUE(vol.ok());
  v1::DeleteLunRequest del;
  del.set_name("vol");
  v1::DeleteLunResponse dr;
  ASSERT_TRUE(service_->DeleteLun(nullptr, &del, &dr).ok());
  EXPECT_EQ(catalog_->Open(name, client_).status().code(), StatusCode::kNotFound);
  EXPECT_EQ((*vol)->Write(0, std::string(4096, 'x'), false).code(), StatusCode::kUnavailable);
  ASSERT_TRUE(CreateIncoming("vol", kWwn).ok());  // the move retried
  EXPECT_EQ(catalog_->Open(name, client_).status().code(), StatusCode::kNotFound);
  const std::string fresh = ExportName();
  EXPECT_NE(fresh, name);
  EXPECT_TRUE(catalog_->Open(fresh, client_).ok());
}

TEST_F(MoveExportServiceTest, ALunDeletedBehindTheServiceKillsItsToken) {
  const std::string name = ExportName();
  ASSERT_TRUE(device_->engine()->DeleteLun("vol").ok());
  ASSERT_TRUE(CreateIncoming("vol", kWwn).ok());
  EXPECT_EQ(catalog_->Open(name, client_).status().code(), StatusCode::kNotFound);
}

// On the real file system (MemEnv's files have no mapping): a move's writes through its
// export are received straight into the target's tier (the engine's BeginWrite), are
// recorded for the move's verification as Write's are, and stop when the export closes.
class MoveExportPosixTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/strata-moveexp-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    DeviceConfig c;
    c.name = "dev-p";
    c.tiers.push_back(*ParseTierFlag("ssd=" + dir_ + "/ssd:64MiB"));
    std::filesystem::create_directories(dir_ + "/ssd");
    auto dev = Device::Open(Env::Default(), c);
    ASSERT_TRUE(dev.ok()) << dev.status().ToString();
    device_ = std::move(*dev);
    catalog_ = std::make_unique<MoveExportCatalog>(device_->engine());
  }
  void TearDown() override {
    catalog_.reset();
    device_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::shared_ptr<Volume> Incoming(const std::string& name, const std::string& wwn) {
    LunSpec spec;
    spec.name = name;
    spec.size_bytes = 2 << 20;
    spec.wwn = wwn;
    EXPECT_TRUE(device_->engine()->CreateLun(spec).ok());
    auto token = catalog_->OpenMoveExport(name, wwn);
    EXPECT_TRUE(token.ok()) << token.status().ToString();
    auto vol = catalog_->Open(*token, client_);
    EXPECT_TRUE(vol.ok()) << vol.status().ToString();
    return vol.ok() ? *vol : nullptr;
  }
  static void Land(IncomingWrite& w, const std::string& data) {
    for (size_t done = 0; done < data.size();) {
      std::span<char> space = w.NextSpace();
      ASSERT_FALSE(space.empty());
      const size_t n = std::min(space.size(), data.size() - done);
      std::memcpy(space.data(), data.data() + done, n);
      w.Received(n);
      done += n;
    }
  }

  std::string dir_;
  std::unique_ptr<Device> device_;
  std::unique_ptr<MoveExportCatalog> catalog_;
  const ClientInfo client_{"127.0.0.1", "127.0.0.1:10809"};
};

TEST_F(MoveExportPosixTest, MoveWritesLandInTheTierAndAreRecordedForVerification) {
  std::string data(1 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 2654435761u) >> 13);
  // The same bytes into two incoming LUNs: through BeginWrite, and through Write.
  auto placed = Incoming("p", "naa.3000000000000a01");
  auto written = Incoming("w", "naa.3000000000000a02");
  ASSERT_NE(placed, nullptr);
  ASSERT_NE(written, nullptr);
  auto w = placed->BeginWrite(1 << 20, 1 << 20, false, IncomingPayload{});
  ASSERT_NE(w, nullptr);
  Land(*w, data);
  ASSERT_TRUE(w->Commit().ok());
  w.reset();
  ASSERT_TRUE(written->Write(1 << 20, data, false).ok());
  auto direct = device_->engine()->OpenVolume("p");
  ASSERT_TRUE(direct.ok());
  std::string back(1 << 20, '?');
  ASSERT_TRUE((*direct)->Read(1 << 20, back).ok());
  EXPECT_TRUE(back == data);
  // StoreHashes recorded both alike (a range it had not recorded would be hashed as
  // the zeros an untouched block holds, and differ).
  auto p = device_->engine()->LunChecksums("p", 1 << 20, 0, 2 << 20);
  auto q = device_->engine()->LunChecksums("w", 1 << 20, 0, 2 << 20);
  ASSERT_TRUE(p.ok() && q.ok());
  EXPECT_EQ(*p, *q);
  auto zero = device_->engine()->LunChecksums("p", 1 << 20, 0, 1 << 20);
  ASSERT_TRUE(zero.ok());
  EXPECT_NE((*p)[1], (*zero)[0]);
}

// The whole write is copy traffic: the thread that begins it (its slots' pages
// populated), receives its payload and commits it runs at the copy priority until the
// write is dropped, then at SCHED_OTHER again. On a fresh thread, so the test's own
// stays as it was.
TEST_F(MoveExportPosixTest, AWriteReceivedInPlaceRunsAtTheCopyPriorityUntilDropped) {
  auto vol = Incoming("p", "naa.3000000000000a04");
  ASSERT_NE(vol, nullptr);
  SetCopyPriority(CopyPriority::kBatch);
  int before = -1, receiving = -1, committed = -1, dropped = -1;
  bool began = false, commit_ok = false;
  std::thread([&] {
    before = sched_getscheduler(0);
    auto w = vol->BeginWrite(0, 1 << 20, false, IncomingPayload{});
    began = w != nullptr;
    if (!began) return;
    receiving = sched_getscheduler(0);
    Land(*w, std::string(1 << 20, 'y'));
    commit_ok = w->Commit().ok();
    committed = sched_getscheduler(0);
    w.reset();
    dropped = sched_getscheduler(0);
  }).join();
  SetCopyPriority(CopyPriority::kNormal);
  ASSERT_TRUE(began);
  EXPECT_TRUE(commit_ok);
  EXPECT_EQ(before, SCHED_OTHER);
  EXPECT_EQ(receiving, SCHED_BATCH);
  EXPECT_EQ(committed, SCHED_BATCH);
  EXPECT_EQ(dropped, SCHED_OTHER);
}

TEST_F(MoveExportPosixTest, AWriteCommittedAfterTheExportClosedIsRefused) {
  auto vol = Incoming("p", "naa.3000000000000a03");
  ASSERT_NE(vol, nullptr);
  auto w = vol->BeginWrite(0, 1 << 20, false, IncomingPayload{});
  ASSERT_NE(w, nullptr);
  Land(*w, std::string(1 << 20, 'x'));
  catalog_->Revoke("p");
  EXPECT_EQ(w->Commit().code(), StatusCode::kUnavailable);
  w.reset();
  EXPECT_EQ(vol->BeginWrite(0, 1 << 20, false, IncomingPayload{}), nullptr);  // Write says why
  auto direct = device_->engine()->OpenVolume("p");
  ASSERT_TRUE(direct.ok());
  std::string back(1 << 20, '?');
  ASSERT_TRUE((*direct)->Read(0, back).ok());
  EXPECT_TRUE(back == std::string(1 << 20, '\0'));
}

}  // namespace
}  // namespace strata::storage
