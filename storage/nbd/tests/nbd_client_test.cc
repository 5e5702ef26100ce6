// The production NBD client (strata/nbd/client.h) against the in-process server.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "nbd_test_fixture.h"
#include "strata/nbd/client.h"
#include "strata/nbd/protocol.h"

namespace strata::nbd::test {
namespace {

using storage::IoKind;

std::string Bytes(size_t n, int seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed * 7 + i / 4096) & 0xff);
  return s;
}

class NbdClientTest : public NbdServerTest {
 protected:
  std::unique_ptr<NbdClient> Client(std::string_view export_name = "disk",
                                    NbdClientOptions options = {}) {
    auto c = NbdClient::Connect(server_->bound_portals().at(0), export_name, options);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c).value() : nullptr;
  }
  std::string ReadDisk(uint64_t offset, size_t n) {
    std::string out(n, '\0');
    EXPECT_TRUE(disk_->Read(offset, std::span<char>(out.data(), n)).ok());
    return out;
  }
};

TEST_F(NbdClientTest, GoReportsTheExport) {
  StartServer();
  auto c = Client();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->details().size_bytes, kDiskSize);
  EXPECT_TRUE(c->details().transmission_flags & kFlagSendWriteZeroes);
  EXPECT_TRUE(c->details().transmission_flags & kFlagSendFlush);
  EXPECT_EQ(c->details().max_payload_bytes, 32u << 20);
  EXPECT_TRUE(c->Close().ok());
  EXPECT_TRUE(c->Close().ok());  // idempotent
}

TEST_F(NbdClientTest, PipelinedWritesLandAndReleaseTheirBuffers) {
  StartServer();
  auto c = Client();
  ASSERT_NE(c, nullptr);
  std::vector<std::shared_ptr<std::string>> bufs;
  for (int i = 0; i < 12; ++i) {
    auto b = std::make_shared<std::string>(Bytes(1 << 20, i));
    ASSERT_TRUE(c->Write(static_cast<uint64_t>(i) << 20, *b, b).ok());
    bufs.push_back(b);
  }
  ASSERT_TRUE(c->Wait().ok());
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(bufs[i].use_count(), 1) << "buffer " << i << " still held after its reply";
    EXPECT_EQ(ReadDisk(static_cast<uint64_t>(i) << 20, 1 << 20), *bufs[i]) << i;
  }
  EXPECT_TRUE(c->Close().ok());
}

TEST_F(NbdClientTest, KeepsAtMostMaxInFlight) {
  std::atomic<int> now{0}, most{0};
  std::mutex mu;
  std::condition_variable cv;
  disk_->SetBeforeOpHook([&](IoKind) {
    int n = ++now;
    int m = most.load();
    while (n > m && !most.compare_exchange_weak(m, n)) {
    }
    // Hold each write a little so requests pile up if the client sent too many.
    std::unique_lock lock(mu);
    cv.wait_for(lock, std::chrono::milliseconds(5));
    --now;
  });
  StartServer();
  NbdClientOptions o;
  o.max_in_flight = 3;
  auto c = Client("disk", o);
  ASSERT_NE(c, nullptr);
  auto b = std::make_shared<std::string>(Bytes(4096, 1));
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(c->Write(i * 4096ull, *b, b).ok());
  ASSERT_TRUE(c->Wait().ok());
  EXPECT_LE(most.load(), 3);
  EXPECT_GE(most.load(), 2);  // and it does pipeline
}

TEST_F(NbdClientTest, WriteZeroesAndFlush) {
  StartServer();
  auto c = Client();
  ASSERT_NE(c, nullptr);
  auto b = std::make_shared<std::string>(Bytes(4 << 20, 3));
  ASSERT_TRUE(c->Write(0, *b, b).ok());
  ASSERT_TRUE(c->Wait().ok());
  ASSERT_TRUE(c->WriteZeroes(4096, 3 << 20).ok());
  ASSERT_TRUE(c->Flush().ok());
  EXPECT_EQ(ReadDisk(0, 4096), b->substr(0, 4096));
  EXPECT_EQ(ReadDisk(4096, 3 << 20), std::string(3 << 20, '\0'));
  EXPECT_EQ(ReadDisk(4096 + (3 << 20), 4096), b->substr(4096 + (3 << 20), 4096));
  EXPECT_EQ(disk_->counters().write_zeroes, 1u);
  EXPECT_EQ(disk_->counters().flushes, 1u);
}

TEST_F(NbdClientTest, AFailedReplyIsKeptAndNamesTheError) {
  StartServer();
  auto c = Client();
  ASSERT_NE(c, nullptr);
  disk_->InjectError(IoKind::kWrite, ResourceExhaustedError("tier full"));
  auto b = std::make_shared<std::string>(Bytes(8192, 1));
  ASSERT_TRUE(c->Write(8192, *b, b).ok());  // sent; the reply fails later
  Status s = c->Wait();
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s.ToString();
  EXPECT_NE(s.message().find("NBD_CMD_WRITE at 8192+8192: ENOSPC"), std::string::npos)
      << s.message();
  EXPECT_EQ(c->Write(0, *b, b), s);  // sticky
  EXPECT_EQ(c->Close(), s);
}

// The spec: a write past the end SHOULD get ENOSPC.
TEST_F(NbdClientTest, WritePastTheEndIsEnospc) {
  StartServer();
  auto c = Client();
  ASSERT_NE(c, nullptr);
  auto b = std::make_shared<std::string>(Bytes(8192, 1));
  ASSERT_TRUE(c->Write(kDiskSize - 4096, *b, b).ok());
  Status s = c->Wait();
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s.ToString();
  EXPECT_NE(s.message().find("ENOSPC"), std::string::npos) << s.message();
}

TEST_F(NbdClientTest, RefusedExportsMapToCodes) {
  StartServer();
  const HostPort portal = server_->bound_portals().at(0);
  auto unknown = NbdClient::Connect(portal, "nope");
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound) << unknown.status().ToString();
  EXPECT_NE(unknown.status().message().find("NBD_REP_ERR_UNKNOWN"), std::string::npos);
  auto locked = NbdClient::Connect(portal, "locked");
  EXPECT_EQ(locked.status().code(), StatusCode::kPermissionDenied) << locked.status().ToString();
  NbdClientOptions bad;
  bad.max_in_flight = 0;
  EXPECT_EQ(NbdClient::Connect(portal, "disk", bad).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(NbdClientTest, UnreachablePortalIsUnavailable) {
  StartServer();
  HostPort portal = server_->bound_portals().at(0);
  server_->Stop();
  auto c = NbdClient::Connect(portal, "disk");
  EXPECT_EQ(c.status().code(), StatusCode::kUnavailable) << c.status().ToString();
}

TEST_F(NbdClientTest, ServerGoingAwayFailsTheSession) {
  StartServer();
  auto c = Client();
  ASSERT_NE(c, nullptr);
  server_->Stop();
  auto b = std::make_shared<std::string>(Bytes(4096, 1));
  // The first write may still be taken by the socket; the session fails by Wait.
  Status s = c->Write(0, *b, b);
  if (s.ok()) s = c->Wait();
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kInternal)
      << s.ToString();
}

// A guard over test memory: counts its pins, fails the pin numbered fail_at (1-based;
// 0: never) and every one after, and gives `fallback` as the other way to the bytes.
class TestGuard final : public PayloadGuard {
 public:
  TestGuard(int fail_at, std::string fallback)
      : fail_at_(fail_at), fallback_(std::move(fallback)) {}
  bool Pin() override {
    ++attempts;
    if (fail_at_ > 0 && attempts >= fail_at_) return false;
    ++held;
    return true;
  }
  void Unpin() override { --held; }
  Status Fallback(std::span<char> out) override {
    ++fallbacks;
    if (out.size() != fallback_.size()) return InternalError("fallback of the wrong size");
    std::memcpy(out.data(), fallback_.data(), out.size());
    return Status::Ok();
  }
  int attempts = 0;
  int held = 0;
  int fallbacks = 0;

 private:
  const int fail_at_;
  const std::string fallback_;
};

TEST_F(NbdClientTest, GuardedWriteSendsThePiecesInOrderUnderPins) {
  StartServer();
  auto c = Client();
  ASSERT_NE(c, nullptr);
  const std::string a = Bytes(300 << 10, 1), b = Bytes(212 << 10, 2), d = Bytes(512 << 10, 3);
  std::vector<std::span<const char>> pieces = {a, b, d};
  TestGuard g(0, "");
  ASSERT_TRUE(c->WriteGuarded(1 << 20, pieces, g).ok());
  ASSERT_TRUE(c->Wait().ok());
  EXPECT_EQ(ReadDisk(1 << 20, 1 << 20), a + b + d);
  EXPECT_GE(g.attempts, 1);
  EXPECT_EQ(g.held, 0);  // every pin released
  EXPECT_EQ(g.fallbacks, 0);
  EXPECT_TRUE(c->Close().ok());
}

TEST_F(NbdClientTest, AGuardedWriteWhosePinFailsSendsTheFallback) {
  StartServer();
  auto c = Client();
  ASSERT_NE(c, nullptr);
  const std::string a = Bytes(1 << 20, 4), other = Bytes(1 << 20, 5);
  std::vector<std::span<const char>> pieces = {a};
  TestGuard g(1, other);
  ASSERT_TRUE(c->WriteGuarded(0, pieces, g).ok());
  ASSERT_TRUE(c->Wait().ok());
  EXPECT_EQ(ReadDisk(0, 1 << 20), other);
  EXPECT_EQ(g.held, 0);
  EXPECT_EQ(g.fallbacks, 1);
  EXPECT_TRUE(c->Close().ok());
}

// 16 MiB is more than loopback's socket buffers take at once: the send goes out in
// several pinned pieces, and the second pin fails: what went out before stays, the
// rest of the payload comes from the fallback, at the same place.
TEST_F(NbdClientTest, APinFailingMidWaySendsTheRestFromTheFallback) {
  StartServer();
  auto c = Client();
  ASSERT_NE(c, nullptr);
  const size_t n = 16 << 20;
  const std::string a(n, 'a'), other(n, 'b');
  std::vector<std::span<const char>> pieces = {a};
  TestGuard g(2, other);
  ASSERT_TRUE(c->WriteGuarded(0, pieces, g).ok());
  ASSERT_TRUE(c->Wait().ok());
  const std::string got = ReadDisk(0, n);
  const size_t k = got.find('b');
  ASSERT_GT(k, 0u);  // the first pin's piece
  if (g.fallbacks == 0) {
    EXPECT_EQ(got, a) << "sent in one piece after all";
  } else {
    EXPECT_EQ(got, a.substr(0, k) + other.substr(k));
  }
  EXPECT_EQ(g.held, 0);
  EXPECT_TRUE(c->Close().ok());
}

TEST_F(NbdClientTest, AGuardedWriteOfNothingOrTooMuchIsRefused) {
  StartServer();
  auto c = Client();
  ASSERT_NE(c, nullptr);
  TestGuard g(0, "");
  EXPECT_EQ(c->WriteGuarded(0, {}, g).code(), StatusCode::kInvalidArgument);
  const std::string big((32 << 20) + 1, 'x');
  std::vector<std::span<const char>> pieces = {big};
  EXPECT_EQ(c->WriteGuarded(0, pieces, g).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(g.attempts, 0);
  EXPECT_TRUE(c->Close().ok());
}

}  // namespace
}  // namespace strata::nbd::test
