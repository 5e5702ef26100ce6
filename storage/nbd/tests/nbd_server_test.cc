// Server lifecycle: portals, connection limits, Stop, many clients at once.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <thread>

#include "nbd_test_fixture.h"

namespace strata::nbd::test {
namespace {

bool HaveIpv6Loopback() {
  int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return ok;
}

TEST_F(NbdServerTest, BoundPortalsReportTheActualPorts) {
  StartServer({}, {{"127.0.0.1", 0}, {"127.0.0.1", 0}});
  auto bound = server_->bound_portals();
  ASSERT_EQ(bound.size(), 2u);
  EXPECT_EQ(bound[0].host, "127.0.0.1");
  EXPECT_NE(bound[0].port, 0);
  EXPECT_NE(bound[1].port, 0);
  EXPECT_NE(bound[0].port, bound[1].port);
}

TEST_F(NbdServerTest, SameDataThroughTwoPortalsAndEachConnectionKnowsItsPortal) {
  std::vector<HostPort> portals = {{"127.0.0.1", 0}};
  bool v6 = HaveIpv6Loopback();
  portals.push_back(v6 ? HostPort{"::1", 0} : HostPort{"127.0.0.1", 0});
  StartServer({}, portals);
  auto bound = server_->bound_portals();
  auto a = Open("disk", false, 0);
  auto b = Open("disk", false, 1);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  std::string data = Pattern(65536, 21);
  ASSERT_EQ(a->Write(12345, data)->error, 0u);
  auto r = b->Read(12345, 65536);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->data == data);
  // And flushed through the other one (multi-conn: one shared volume).
  EXPECT_EQ(b->Call(kCmdFlush, 0, 0, 0)->error, 0u);

  auto opens = recording_.opens();
  ASSERT_EQ(opens.size(), 2u);
  EXPECT_EQ(opens[0].portal_address, bound[0].ToString());
  EXPECT_EQ(opens[0].peer_address, "127.0.0.1");
  EXPECT_EQ(opens[1].portal_address, bound[1].ToString());
  EXPECT_EQ(opens[1].peer_address, v6 ? "::1" : "127.0.0.1");
}

TEST_F(NbdServerTest, StartFailsWhenAPortalIsTakenAndLeavesNothingListening) {
  StartServer();
  HostPort taken = server_->bound_portals()[0];
  // Find a free port, then ask for it and the taken one.
  int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  socklen_t len = sizeof(a);
  ::getsockname(probe, reinterpret_cast<sockaddr*>(&a), &len);
  uint16_t free_port = ntohs(a.sin_port);
  ::close(probe);

  auto second = NbdServer::Start(&catalog_, {{"127.0.0.1", free_port}, taken});
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find(taken.ToString()), std::string::npos)
      << second.status().ToString();
  // The first portal was released with the failure.
  auto third = NbdServer::Start(&catalog_, {{"127.0.0.1", free_port}});
  EXPECT_TRUE(third.ok()) << third.status().ToString();
}

TEST_F(NbdServerTest, StartRejectsBadArguments) {
  EXPECT_FALSE(NbdServer::Start(&catalog_, {}).ok());
  NbdServerOptions opt;
  opt.threads_per_connection = 0;
  EXPECT_FALSE(NbdServer::Start(&catalog_, {{"127.0.0.1", 0}}, opt).ok());
  EXPECT_FALSE(NbdServer::Start(&catalog_, {{"no-such-host.invalid", 0}}).ok());
}

TEST_F(NbdServerTest, StopLetsInFlightRequestsFinishThenClosesEverything) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  auto slow = std::make_shared<MemVolume>(1 << 20);
  slow->SetBeforeOpHook([&](storage::IoKind) {
    std::unique_lock lock(mu);
    cv.wait_for(lock, std::chrono::seconds(10), [&] { return release; });
  });
  catalog_.Add("slow", slow);
  StartServer();
  auto busy = Open("slow");
  auto idle = Open("disk");
  auto negotiating = Connect();
  ASSERT_TRUE(negotiating->Greet().ok());
  ASSERT_TRUE(busy->SendRequest(kCmdRead, 0, 7, 0, 4096).ok());
  ASSERT_TRUE(WaitFor([&] { return slow->in_flight() == 1; }));
  EXPECT_EQ(server_->connection_count(), 3);

  std::thread stopper([&] { server_->Stop(); });
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  auto r = busy->ReadReply();  // the in-flight read still gets its reply
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->handle, 7u);
  EXPECT_EQ(r->error, 0u);
  stopper.join();
  EXPECT_EQ(server_->connection_count(), 0);
  EXPECT_TRUE(busy->WaitClosed());
  EXPECT_TRUE(idle->WaitClosed());
  EXPECT_TRUE(negotiating->WaitClosed());
  EXPECT_FALSE(TestClient::Connect(server_->bound_portals()[0]).ok());
  server_->Stop();  // idempotent
}

TEST_F(NbdServerTest, StopDropsAClientThatDoesNotReadItsReplies) {
  NbdServerOptions opt;
  opt.stop_grace = std::chrono::milliseconds(200);
  StartServer(opt);
  auto c = Open("disk");
  // Far more reply data than socket buffers hold; the client reads none of it.
  for (uint64_t h = 1; h <= 64; ++h) ASSERT_TRUE(c->SendRequest(kCmdRead, 0, h, 0, 1 << 20).ok());
  ASSERT_TRUE(WaitFor([&] { return disk_->counters().reads >= 8; }));
  server_->Stop();  // returns: blocked senders are failed after the grace period
  EXPECT_EQ(server_->connection_count(), 0);
}

TEST_F(NbdServerTest, ConnectionsBeyondTheLimitAreClosed) {
  NbdServerOptions opt;
  opt.max_connections = 2;
  StartServer(opt);
  auto a = Open();
  auto b = Open();
  auto c = Connect();
  EXPECT_TRUE(c->WaitClosed());
  a->Close();
  ASSERT_TRUE(WaitFor([&] { return server_->connection_count() == 1; }));
  auto d = Open();
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->Read(0, 512)->error, 0u);
}

TEST_F(NbdServerTest, ManyClientsAtOnceKeepTheirData) {
  StartServer();
  constexpr int kClients = 8;
  constexpr int kOps = 50;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&, t] {
      auto c = TestClient::Connect(server_->bound_portals()[0]);
      if (!c.ok() || !(*c)->Handshake("disk").ok()) {
        ++failures;
        return;
      }
      uint64_t base = uint64_t(t) * (1 << 20);  // each client its own MiB
      for (int i = 0; i < kOps; ++i) {
        uint64_t off = base + uint64_t(i % 16) * 65536;
        std::string data = Pattern(65536, t * 1000 + i);
        auto w = (*c)->Write(off, data);
        auto r = (*c)->Read(off, 65536);
        if (!w.ok() || w->error != 0 || !r.ok() || r->data != data) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(NbdServerDestructorTest, DestroyingARunningServerStopsIt) {
  StaticExportCatalog catalog;
  catalog.Add("d", std::make_shared<MemVolume>(1 << 20));
  auto server = NbdServer::Start(&catalog, {{"127.0.0.1", 0}});
  ASSERT_TRUE(server.ok());
  auto c = TestClient::Connect((*server)->bound_portals()[0]);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Handshake("d").ok());
  server->reset();
  EXPECT_TRUE((*c)->WaitClosed());
}

}  // namespace
}  // namespace strata::nbd::test
