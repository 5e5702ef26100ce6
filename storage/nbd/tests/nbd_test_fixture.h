#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "nbd_test_client.h"
#include "strata/nbd/server.h"
#include "strata/nbd/testing/mem_volume.h"
#include "strata/nbd/testing/static_export_catalog.h"

namespace strata::nbd::test {

// Polls `cond` until it holds or `timeout` passes (a bounded wait on a condition,
// never a sleep standing in for synchronisation).
inline bool WaitFor(const std::function<bool()>& cond,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// A catalog that records the ClientInfo of every Open, over a StaticExportCatalog.
class RecordingCatalog final : public storage::ExportCatalog {
 public:
  explicit RecordingCatalog(StaticExportCatalog* inner) : inner_(inner) {}
  std::vector<storage::ExportInfo> List(const storage::ClientInfo& c) override {
    return inner_->List(c);
  }
  Result<std::shared_ptr<storage::Volume>> Open(std::string_view name,
                                                const storage::ClientInfo& c) override {
    std::lock_guard lock(mu_);
    opens_.push_back(c);
    return inner_->Open(name, c);
  }
  std::vector<storage::ClientInfo> opens() {
    std::lock_guard lock(mu_);
    return opens_;
  }

 private:
  StaticExportCatalog* inner_;
  std::mutex mu_;
  std::vector<storage::ClientInfo> opens_;
};

// A server on 127.0.0.1 (any port) with exports:
//   "disk"   16 MiB read-write, description "a test disk"
//   "ro"     1 MiB read-only
//   "locked" 1 MiB, only for 10.9.9.9 (so loopback clients are refused)
//   "gone"   1 MiB, unavailable
class NbdServerTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kDiskSize = 16 << 20;

  void SetUp() override {
    disk_ = std::make_shared<MemVolume>(kDiskSize);
    ro_ = std::make_shared<MemVolume>(1 << 20, 4096, /*read_only=*/true);
    catalog_.Add("disk", disk_, {}, "a test disk");
    catalog_.Add("ro", ro_);
    catalog_.Add("locked", std::make_shared<MemVolume>(1 << 20), {"10.9.9.9"});
    catalog_.Add("gone", std::make_shared<MemVolume>(1 << 20));
    catalog_.SetUnavailable("gone", true);
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }

  void StartServer(NbdServerOptions options = {},
                   std::vector<HostPort> portals = {{"127.0.0.1", 0}}) {
    auto s = NbdServer::Start(&recording_, std::move(portals), options);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s).value();
  }

  std::unique_ptr<TestClient> Connect(size_t portal = 0) {
    auto c = TestClient::Connect(server_->bound_portals().at(portal));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c).value() : nullptr;
  }

  // Connected and in transmission on `export_name`.
  std::unique_ptr<TestClient> Open(std::string_view export_name = "disk", bool structured = false,
                                   size_t portal = 0) {
    auto c = Connect(portal);
    if (!c) return nullptr;
    Status s = c->Handshake(export_name, structured);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return s.ok() ? std::move(c) : nullptr;
  }

  std::shared_ptr<MemVolume> disk_, ro_;
  StaticExportCatalog catalog_;
  RecordingCatalog recording_{&catalog_};
  std::unique_ptr<NbdServer> server_;
};

}  // namespace strata::nbd::test
