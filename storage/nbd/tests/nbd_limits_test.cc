// The server's limits against real loopback clients: connections per client address
// and per export, the handshake and idle timeouts, the counters that meter them,
// and the --nbd-* flags that set them.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <boost/program_options.hpp>

#include "admission.h"
#include "nbd_test_fixture.h"
#include "strata/nbd/server_flags.h"

namespace strata::nbd::test {
namespace {

using std::chrono::milliseconds;

TEST(NbdAdmissionTest, CountsPerKeyAndForgetsReleasedKeys) {
  Admission a(/*max_per_client=*/2, /*max_per_export=*/1);
  std::string why;
  EXPECT_TRUE(a.AdmitClient("10.0.0.1", &why));
  EXPECT_TRUE(a.AdmitClient("10.0.0.1", &why));
  EXPECT_FALSE(a.AdmitClient("10.0.0.1", &why));
  EXPECT_EQ(why, "client 10.0.0.1 already has 2 connections (--nbd-max-connections-per-client)");
  EXPECT_TRUE(a.AdmitClient("10.0.0.2", &why));
  a.ReleaseClient("10.0.0.1");
  EXPECT_TRUE(a.AdmitClient("10.0.0.1", &why));
  EXPECT_TRUE(a.AdmitExport("disk", &why));
  EXPECT_FALSE(a.AdmitExport("disk", &why));
  EXPECT_EQ(a.refused_exports(), 1u);
  a.ReleaseExport("disk");
  EXPECT_EQ(a.export_connections("disk"), 0);
  Admission unlimited(0, 0);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(unlimited.AdmitClient("x", &why));
}

TEST_F(NbdServerTest, ConnectionsPerClientAddressAreLimitedOthersStillServed) {
  NbdServerOptions opt;
  opt.max_connections_per_client = 2;
  StartServer(opt);
  HostPort portal = server_->bound_portals()[0];
  auto a = TestClient::Connect(portal, "127.0.0.2");
  auto b = TestClient::Connect(portal, "127.0.0.2");
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE((*a)->Handshake("disk").ok());
  ASSERT_TRUE((*b)->Handshake("disk").ok());
  auto c = TestClient::Connect(portal, "127.0.0.2");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE((*c)->WaitClosed());  // closed before the greeting
  // Another address is not affected.
  auto d = Open();
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->Read(0, 512)->error, 0u);
  EXPECT_EQ(server_->counters().refused_client_limit, 1u);
  // A slot comes back when its connection ends.
  (*a)->Close();
  ASSERT_TRUE(WaitFor([&] { return server_->connection_count() == 2; }));
  auto e = TestClient::Connect(portal, "127.0.0.2");
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE((*e)->Handshake("disk").ok());
}

TEST_F(NbdServerTest, ConnectionsPerExportGetErrPolicyOnGo) {
  NbdServerOptions opt;
  opt.max_connections_per_export = 1;
  StartServer(opt);
  auto a = Open("disk");
  ASSERT_NE(a, nullptr);
  auto b = Connect();
  ASSERT_TRUE(b->Greet().ok());
  auto go = b->InfoOrGo(kOptGo, "disk");
  ASSERT_TRUE(go.ok());
  EXPECT_EQ(go->final_type, kRepErrPolicy);
  EXPECT_EQ(go->error_message,
            "export 'disk' already has 1 connections (--nbd-max-connections-per-export)");
  // INFO takes no slot; another export is fine; the refused client may go on.
  auto info = b->InfoOrGo(kOptInfo, "disk");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->final_type, kRepAck);
  auto go_ro = b->InfoOrGo(kOptGo, "ro");
  ASSERT_TRUE(go_ro.ok());
  EXPECT_EQ(go_ro->final_type, kRepAck);
  EXPECT_EQ(server_->counters().refused_export_limit, 1u);
  // NBD_OPT_EXPORT_NAME cannot carry an error: a disconnect.
  auto c = Connect();
  ASSERT_TRUE(c->Greet().ok());
  ASSERT_TRUE(c->SendOption(kOptExportName, "disk").ok());
  EXPECT_TRUE(c->WaitClosed());
  // The slot is free again once the first client leaves.
  a->Close();
  ASSERT_TRUE(WaitFor([&] { return server_->connection_count() == 1; }));
  EXPECT_NE(Open("disk"), nullptr);
}

TEST_F(NbdServerTest, HandshakeTimeoutCutsOffATricklingClient) {
  NbdServerOptions opt;
  opt.handshake_timeout = milliseconds(300);
  StartServer(opt);
  auto c = Connect();
  ASSERT_TRUE(c->Greet().ok());
  // An option header, one byte at a time, each well inside the per-read timeout:
  // the whole handshake's deadline still applies.
  std::string hdr(16, '\0');
  PutBe64(hdr.data(), kOptsMagic);
  PutBe32(hdr.data() + 8, kOptGo);
  PutBe32(hdr.data() + 12, 1000);
  bool closed = false;
  auto start = std::chrono::steady_clock::now();
  for (char ch : hdr + std::string(1000, 'x')) {
    if (!c->SendRaw(std::string(1, ch)).ok()) {
      closed = true;
      break;
    }
    if (c->WaitClosed(milliseconds(100))) {
      closed = true;
      break;
    }
  }
  EXPECT_TRUE(closed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  ASSERT_TRUE(WaitFor([&] { return server_->counters().handshake_timeouts == 1; }));
}

TEST_F(NbdServerTest, IdleTimeoutClosesOnlyIdleConnections) {
  NbdServerOptions opt;
  opt.idle_timeout = milliseconds(300);
  StartServer(opt);
  auto idle = Open();
  ASSERT_NE(idle, nullptr);
  EXPECT_TRUE(idle->WaitClosed(std::chrono::seconds(10)));
  EXPECT_EQ(server_->counters().idle_timeouts, 1u);
  // A connection with a request in flight is not idle, however long it takes.
  auto slow = std::make_shared<MemVolume>(1 << 20);
  std::atomic<bool> release{false};
  slow->SetBeforeOpHook([&](storage::IoKind) {
    while (!release.load()) std::this_thread::sleep_for(milliseconds(5));
  });
  catalog_.Add("slow", slow);
  auto busy = Open("slow");
  ASSERT_NE(busy, nullptr);
  ASSERT_TRUE(busy->SendRequest(kCmdRead, 0, 1, 0, 512).ok());
  ASSERT_TRUE(WaitFor([&] { return slow->in_flight() == 1; }));
  EXPECT_FALSE(busy->WaitClosed(milliseconds(900)));
  release.store(true);
  auto r = busy->ReadReply();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->error, 0u);
}

TEST_F(NbdServerTest, SendTimeoutDropsAClientThatTricklesItsReplies) {
  NbdServerOptions opt;
  opt.send_timeout = milliseconds(400);
  StartServer(opt);
  auto c = Open();
  ASSERT_NE(c, nullptr);
  for (uint64_t h = 1; h <= 16; ++h) ASSERT_TRUE(c->SendRequest(kCmdRead, 0, h, 0, 1 << 20).ok());
  // Take a few bytes now and then, never the replies' worth: each send call makes
  // a little progress, the reply as a whole never goes out.
  bool closed = false;
  for (int i = 0; i < 20 && !closed; ++i) {
    char b[64];
    ssize_t n = ::recv(c->fd(), b, sizeof(b), 0);
    closed = n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
    if (!closed) std::this_thread::sleep_for(milliseconds(50));  // the client's pace
  }
  EXPECT_TRUE(closed || c->WaitClosed());
  ASSERT_TRUE(WaitFor([&] { return server_->counters().send_timeouts == 1; }));
  // Others are served meanwhile and after.
  auto d = Open();
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->Read(0, 512)->error, 0u);
}

TEST_F(NbdServerTest, InflightBudgetAnswersEnomemInsteadOfGrowing) {
  NbdServerOptions opt;
  opt.max_inflight_bytes = 1 << 20;
  StartServer(opt);
  auto slow = std::make_shared<MemVolume>(4 << 20);
  std::atomic<bool> release{false};
  slow->SetBeforeOpHook([&](storage::IoKind) {
    while (!release.load()) std::this_thread::sleep_for(milliseconds(5));
  });
  catalog_.Add("slow", slow);
  auto holder = Open("slow");
  ASSERT_NE(holder, nullptr);
  ASSERT_TRUE(holder->SendRequest(kCmdRead, 0, 1, 0, 1 << 20).ok());
  ASSERT_TRUE(WaitFor([&] { return slow->in_flight() == 1; }));
  // The budget is used up: a READ and a WRITE elsewhere get ENOMEM, and the WRITE's
  // payload is skipped so the connection goes on.
  auto other = Open("disk");
  ASSERT_NE(other, nullptr);
  auto r = other->Read(0, 4096);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->error, kEnomem);
  auto w = other->Write(0, std::string(4096, 'w'));
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->error, kEnomem);
  EXPECT_EQ(other->Read(0, 0)->error, 0u);  // no payload, no charge
  release.store(true);
  auto held = holder->ReadReply();
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(held->error, 0u);
  // The charge came back with the reply.
  ASSERT_TRUE(WaitFor([&] {
    auto again = other->Read(0, 4096);
    return again.ok() && again->error == 0;
  }));
}

TEST(NbdServerFlagsTest, DefaultsAreTheOptionsDefaults) {
  namespace po = boost::program_options;
  po::options_description desc;
  NbdServerFlags f;
  AddNbdServerFlags(&desc, &f);
  po::variables_map vm;
  const char* argv[] = {"x"};
  po::store(po::parse_command_line(1, argv, desc), vm);
  po::notify(vm);
  auto o = NbdServerOptionsFromFlags(f);
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  NbdServerOptions d;
  EXPECT_EQ(o->max_connections, d.max_connections);
  EXPECT_EQ(o->max_connections_per_client, d.max_connections_per_client);
  EXPECT_EQ(o->max_connections_per_export, d.max_connections_per_export);
  EXPECT_EQ(o->threads_per_connection, d.threads_per_connection);
  EXPECT_EQ(o->max_payload_bytes, d.max_payload_bytes);
  EXPECT_EQ(o->max_inflight_bytes, d.max_inflight_bytes);
  EXPECT_EQ(o->handshake_timeout, d.handshake_timeout);
  EXPECT_EQ(o->idle_timeout, d.idle_timeout);
  EXPECT_EQ(o->send_timeout, d.send_timeout);
  EXPECT_EQ(o->follow_client_cpu, d.follow_client_cpu);
}

TEST(NbdServerFlagsTest, FollowClientCpuCanBeTurnedOff) {
  namespace po = boost::program_options;
  auto parse = [](std::vector<const char*> argv) {
    po::options_description desc;
    NbdServerFlags f;
    AddNbdServerFlags(&desc, &f);
    po::variables_map vm;
    argv.insert(argv.begin(), "x");
    po::store(po::parse_command_line(static_cast<int>(argv.size()), argv.data(), desc), vm);
    po::notify(vm);
    auto o = NbdServerOptionsFromFlags(f);
    EXPECT_TRUE(o.ok()) << o.status().ToString();
    return o.ok() && o->follow_client_cpu;
  };
  EXPECT_TRUE(parse({}));
  EXPECT_FALSE(parse({"--nbd-follow-client-cpu=false"}));
  EXPECT_TRUE(parse({"--nbd-follow-client-cpu"}));
}

TEST(NbdServerFlagsTest, BadValuesNameTheFlag) {
  auto err = [](NbdServerFlags f) {
    auto o = NbdServerOptionsFromFlags(f);
    return o.ok() ? std::string("ok") : o.status().message();
  };
  NbdServerFlags good{1024, 256, 128, 16, "32MiB", "1GiB", "30s", "0", "30s"};
  EXPECT_EQ(err(good), "ok");
  NbdServerFlags f = good;
  f.max_connections = 0;
  EXPECT_EQ(err(f), "--nbd-max-connections: must be at least 1, got 0");
  f = good;
  f.queue_depth = 1000;
  EXPECT_EQ(err(f), "--nbd-queue-depth: must be 1 to 256, got 1000");
  f = good;
  f.max_request_size = "4GiB";
  EXPECT_EQ(err(f), "--nbd-max-request-size: '4GiB' is not between 4KiB and 2GiB");
  f = good;
  f.max_inflight = "1MiB";
  EXPECT_EQ(err(f),
            "--nbd-max-inflight-bytes: '1MiB' is less than --nbd-max-request-size (0: no limit)");
  f = good;
  f.idle_timeout = "10";
  EXPECT_EQ(err(f),
            "--nbd-idle-timeout: '10' has no unit (expected a duration like 30s, 500ms, 10m or 0)");
  f = good;
  f.handshake_timeout = "0";
  EXPECT_EQ(err(f), "--nbd-handshake-timeout: must be more than 0");
  f = good;
  f.send_timeout = "5x";
  EXPECT_EQ(err(f),
            "--nbd-send-timeout: '5x' has an unknown unit 'x' (expected a duration like 30s, "
            "500ms, 10m or 0)");
  EXPECT_EQ(*ParseDurationFlag("10m", "--x"), std::chrono::minutes(10));
  EXPECT_EQ(*ParseDurationFlag("250ms", "--x"), milliseconds(250));
}

}  // namespace
}  // namespace strata::nbd::test
