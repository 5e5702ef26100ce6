#include "scenarios.h"

#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "nbd_test_client.h"
#include "strata/nbd/protocol.h"

namespace strata::nbd::adversary {

namespace {

using test::TestClient;
using Clock = std::chrono::steady_clock;

struct Session {
  std::unique_ptr<TestClient> client;
  uint64_t size = 0;
  uint32_t max_block = 0;
};

// Connects and negotiates `t.export_name` with simple replies.
Result<Session> Open(const Target& t) {
  Session s;
  STRATA_ASSIGN_OR_RETURN(s.client, TestClient::Connect(t.portal, t.source));
  STRATA_RETURN_IF_ERROR(s.client->Greet());
  STRATA_ASSIGN_OR_RETURN(test::InfoResult go,
                          s.client->InfoOrGo(kOptGo, t.export_name, {kInfoBlockSize}));
  if (go.final_type != kRepAck) {
    return FailedPreconditionError("NBD_OPT_GO '" + t.export_name + "' refused (reply type " +
                                   std::to_string(go.final_type) + "): " + go.error_message);
  }
  s.size = go.size;
  s.max_block = go.have_block_size ? go.max_block : kMaxPayloadBytes;
  return s;
}

// True when the server has closed `c` (EOF or reset); never blocks. Data still
// queued is discarded first.
bool ClosedByServer(TestClient* c) {
  char buf[4096];
  while (true) {
    pollfd p{c->fd(), POLLIN, 0};
    int rc = ::poll(&p, 1, 0);
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) return false;
    if ((p.revents & (POLLHUP | POLLERR)) != 0 && (p.revents & POLLIN) == 0) return true;
    ssize_t n = ::recv(c->fd(), buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0) return errno != EAGAIN && errno != EINTR;
  }
}

const char* ErrnoName(uint32_t e) {
  const char* name = ErrorValueName(e);
  return name ? name : "unknown";
}

void Hold(int seconds) { std::this_thread::sleep_for(std::chrono::seconds(seconds)); }

}  // namespace

Status RaiseFileLimit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return ErrnoError("getrlimit", errno);
  r.rlim_cur = r.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &r) != 0) return ErrnoError("setrlimit", errno);
  return Status::Ok();
}

Status BadRequests(const Target& t) {
  STRATA_ASSIGN_OR_RETURN(Session s, Open(t));
  const uint64_t size = s.size;
  struct Case {
    const char* name;
    uint16_t type;
    uint16_t flags;
    uint64_t offset;
    uint32_t length;
    uint32_t want;
  };
  const std::vector<Case> cases = {
      {"read at the end", kCmdRead, 0, size, 4096, kEinval},
      {"read across the end", kCmdRead, 0, size - 512, 4096, kEinval},
      {"read at offset 2^64-100", kCmdRead, 0, ~uint64_t{0} - 100, 4096, kEinval},
      {"write past the end", kCmdWrite, 0, size, 4096, kEnospc},
      {"write across the end", kCmdWrite, kCmdFlagFua, size - 512, 4096, kEnospc},
      {"write-zeroes past the end", kCmdWriteZeroes, 0, size, 4096, kEnospc},
      {"trim across the end", kCmdTrim, 0, size - 4096, 8192, kEinval},
      {"unknown command 99", 99, 0, 0, 0, kEinval},
      {"unknown command 65535", 0xffff, 0, 0, 512, kEinval},
      {"NBD_CMD_CACHE (not offered)", kCmdCache, 0, 0, 4096, kEinval},
      {"NBD_CMD_BLOCK_STATUS (not offered)", kCmdBlockStatus, 0, 0, 4096, kEinval},
      {"read with unknown flag 0x8000", kCmdRead, 0x8000, 0, 4096, kEinval},
      {"read with DF, no structured replies", kCmdRead, kCmdFlagDf, 0, 4096, kEinval},
      {"write-zeroes with FAST_ZERO (not offered)", kCmdWriteZeroes, kCmdFlagFastZero, 0, 4096,
       kEinval},
      {"flush with a length", kCmdFlush, 0, 0, 4096, kEinval},
      {"read over the maximum block size", kCmdRead, 0, 0, s.max_block + 1, kEinval},
      {"read in range (still served)", kCmdRead, 0, 0, 4096, 0},
  };
  int failures = 0;
  for (const Case& c : cases) {
    // A WRITE's payload always follows its header, even for a request the server
    // will refuse: that is what keeps the stream framed.
    std::string payload = c.type == kCmdWrite ? std::string(c.length, '\x5a') : std::string();
    auto r = s.client->Call(c.type, c.flags, c.offset, c.length, payload);
    if (!r.ok()) {
      return InternalError(std::string(c.name) + ": no reply: " + r.status().ToString());
    }
    bool ok = r->error == c.want;
    failures += ok ? 0 : 1;
    std::printf("{\"case\":\"%s\",\"errno\":\"%s\",\"want\":\"%s\",\"ok\":%s}\n", c.name,
                ErrnoName(r->error), ErrnoName(c.want), ok ? "true" : "false");
  }
  // A WRITE announcing 2 GiB: its payload cannot be skipped, so EINVAL then close.
  STRATA_RETURN_IF_ERROR(s.client->SendRequest(kCmdWrite, 0, 7777, 0, 0x80000000u));
  auto r = s.client->ReadReply();
  if (!r.ok()) return InternalError("2 GiB write: no reply: " + r.status().ToString());
  bool closed = s.client->WaitClosed(std::chrono::seconds(10));
  bool huge_ok = r->error == kEinval && closed;
  failures += huge_ok ? 0 : 1;
  std::printf(
      "{\"case\":\"write of 2 GiB\",\"errno\":\"%s\",\"want\":\"EINVAL\",\"closed\":%s,"
      "\"ok\":%s}\n",
      ErrnoName(r->error), closed ? "true" : "false", huge_ok ? "true" : "false");
  std::fflush(stdout);
  if (failures > 0) {
    return InternalError(std::to_string(failures) + " request(s) got the wrong error");
  }
  return Status::Ok();
}

Status RequestsAfterDisconnect(const Target& t) {
  STRATA_ASSIGN_OR_RETURN(Session s, Open(t));
  STRATA_RETURN_IF_ERROR(s.client->SendRequest(kCmdDisc, 0, 1, 0, 0));
  // The spec: after NBD_CMD_DISC the server sends nothing more and closes.
  Status sent = s.client->SendRequest(kCmdRead, 0, 2, 0, 4096);
  (void)sent;  // the server may already have closed
  auto deadline = Clock::now() + std::chrono::seconds(10);
  char buf[64];
  while (Clock::now() < deadline) {
    pollfd p{s.client->fd(), POLLIN, 100};
    int rc = ::poll(&p, 1, 100);
    if (rc <= 0) continue;
    ssize_t n = ::recv(s.client->fd(), buf, sizeof(buf), 0);
    if (n > 0) return InternalError("the server replied to a request sent after NBD_CMD_DISC");
    if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
      std::printf("{\"case\":\"request after NBD_CMD_DISC\",\"reply\":false,\"closed\":true}\n");
      return Status::Ok();
    }
  }
  return Status(StatusCode::kDeadlineExceeded,
                "the server did not close the connection after NBD_CMD_DISC");
}

Status DisconnectMidWrite(const Target& t, int count) {
  const uint32_t len = 1 << 20;
  std::string half(len / 2, '\x33');
  int done = 0;
  for (int i = 0; i < count; ++i) {
    auto s = Open(t);
    if (!s.ok()) return s.status().WithContext("client " + std::to_string(i));
    STRATA_RETURN_IF_ERROR(s->client->SendRequest(kCmdWrite, 0, 1, 0, len, half));
    s->client->Close();
    ++done;
  }
  // The server must still serve a client on the same export.
  STRATA_ASSIGN_OR_RETURN(Session s, Open(t));
  STRATA_ASSIGN_OR_RETURN(test::Reply r, s.client->Read(0, 4096));
  if (r.error != 0)
    return InternalError("read after the torn writes: errno " + std::to_string(r.error));
  std::printf("{\"case\":\"disconnect mid-write\",\"clients\":%d}\n", done);
  return Status::Ok();
}

namespace {

struct HeldConnections {
  // Connections that completed the handshake, and ones that never sent a byte.
  std::vector<std::unique_ptr<TestClient>> handshaken, raw;
  int connect_failed = 0;  // connect() itself failed (backlog full, out of descriptors)
  int refused = 0;         // closed by the server before or during the handshake
};

int CountClosed(const std::vector<std::unique_ptr<TestClient>>& v) {
  int closed = 0;
  for (const auto& c : v) closed += ClosedByServer(c.get()) ? 1 : 0;
  return closed;
}

void Report(const char* name, int attempted, const HeldConnections& h) {
  std::printf(
      "{\"case\":\"%s\",\"attempted\":%d,\"connect_failed\":%d,\"refused\":%d,"
      "\"handshaken\":%zu,\"handshaken_closed\":%d,\"raw\":%zu,\"raw_closed\":%d}\n",
      name, attempted, h.connect_failed, h.refused, h.handshaken.size(), CountClosed(h.handshaken),
      h.raw.size(), CountClosed(h.raw));
  std::fflush(stdout);
}

void Ready() {
  std::printf("ready\n");
  std::fflush(stdout);
}

}  // namespace

Status IdleConnections(const Target& t, int count, int hold_seconds) {
  HeldConnections h;
  for (int i = 0; i < count; ++i) {
    if (i % 2 == 1) {
      auto s = Open(t);
      if (s.ok()) {
        h.handshaken.push_back(std::move(s->client));
      } else if (h.refused++ == 0) {
        std::fprintf(stderr, "first refusal: %s\n", s.status().ToString().c_str());
      }
      continue;
    }
    auto c = TestClient::Connect(t.portal, t.source);
    if (!c.ok()) {
      ++h.connect_failed;
      continue;
    }
    h.raw.push_back(std::move(*c));
  }
  Ready();
  Hold(hold_seconds);
  Report("idle connections", count, h);
  return Status::Ok();
}

Status SlowReaders(const Target& t, int count, int depth, int hold_seconds) {
  HeldConnections h;
  for (int i = 0; i < count; ++i) {
    auto s = Open(t);
    if (!s.ok()) {
      ++h.refused;
      continue;
    }
    // 1 MiB reads: the server's memory per connection is queue depth x length, and
    // the point is replies the client never takes, not the size of each.
    uint32_t len = std::min<uint64_t>({s->max_block, s->size, uint64_t{1} << 20});
    // Requests only: the client never reads a reply, so the server's sends block.
    for (int d = 0; d < depth; ++d) {
      if (!s->client->SendRequest(kCmdRead, 0, d + 1, 0, len).ok()) break;
    }
    h.handshaken.push_back(std::move(s->client));
  }
  Ready();
  Hold(hold_seconds);
  Report("slow readers", count, h);
  return Status::Ok();
}

Status Probe(const Target& t, int ops) {
  STRATA_ASSIGN_OR_RETURN(Session s, Open(t));
  if (s.size < 4096) return FailedPreconditionError("export smaller than 4 KiB");
  std::mt19937_64 rng(42);
  std::vector<double> us;
  us.reserve(ops);
  for (int i = 0; i < ops; ++i) {
    uint64_t off = (rng() % (s.size / 4096)) * 4096;
    auto start = Clock::now();
    STRATA_ASSIGN_OR_RETURN(test::Reply r, s.client->Read(off, 4096));
    if (r.error != 0) {
      return InternalError("probe read at " + std::to_string(off) + ": errno " +
                           std::to_string(r.error));
    }
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  std::sort(us.begin(), us.end());
  auto pct = [&](double q) {
    return us.empty() ? 0.0 : us[static_cast<size_t>(q * (us.size() - 1))];
  };
  std::printf("{\"case\":\"probe\",\"ops\":%d,\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f}\n",
              ops, pct(0.5), pct(0.99), us.empty() ? 0.0 : us.back());
  return Status::Ok();
}

}  // namespace strata::nbd::adversary
