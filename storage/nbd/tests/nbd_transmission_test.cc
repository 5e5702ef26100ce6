// The transmission phase: commands, flags, errors, framing, pipelining, io_stats.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <condition_variable>
#include <set>

#include "nbd_test_fixture.h"

namespace strata::nbd::test {
namespace {

using storage::IoKind;

class NbdTransmissionTest : public NbdServerTest {
 protected:
  void SetUp() override {
    NbdServerTest::SetUp();
    StartServer();
  }
};

TEST_F(NbdTransmissionTest, WriteThenReadRoundTrips) {
  auto c = Open();
  ASSERT_NE(c, nullptr);
  std::string data = Pattern(3 * 4096 + 123, 1);
  auto w = c->Write(1000, data);  // unaligned, across blocks
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->error, 0u);
  auto r = c->Read(1000, static_cast<uint32_t>(data.size()));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->error, 0u);
  EXPECT_TRUE(r->data == data);
  // The bytes really are in the volume.
  std::string direct(data.size(), '\0');
  ASSERT_TRUE(disk_->Read(1000, direct).ok());
  EXPECT_TRUE(direct == data);
}

TEST_F(NbdTransmissionTest, LargeWriteAndReadAtTheMaximum) {
  catalog_.Add("big", std::make_shared<MemVolume>(64 << 20));
  auto c = Open("big");
  std::string data = Pattern(kMaxPayloadBytes, 2);
  EXPECT_EQ(c->Write(0, data)->error, 0u);
  auto r = c->Read(0, kMaxPayloadBytes / 2);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->data == data.substr(0, kMaxPayloadBytes / 2));
}

TEST_F(NbdTransmissionTest, TrimAndWriteZeroesReadBackAsZeroes) {
  auto c = Open();
  std::string data = Pattern(256 << 10, 3);
  ASSERT_EQ(c->Write(0, data)->error, 0u);
  EXPECT_EQ(c->Call(kCmdTrim, 0, 0, 128 << 10)->error, 0u);
  EXPECT_EQ(c->Call(kCmdWriteZeroes, kCmdFlagNoHole, 200 << 10, 4096)->error, 0u);
  auto r = c->Read(0, 256 << 10);
  ASSERT_TRUE(r.ok());
  std::string want = data;
  std::fill(want.begin(), want.begin() + (128 << 10), '\0');
  std::fill(want.begin() + (200 << 10), want.begin() + (200 << 10) + 4096, '\0');
  EXPECT_TRUE(r->data == want);
  EXPECT_EQ(disk_->counters().trims, 1u);
  EXPECT_EQ(disk_->counters().write_zeroes, 1u);
}

TEST_F(NbdTransmissionTest, FlushReachesTheVolume) {
  auto c = Open();
  EXPECT_EQ(c->Call(kCmdFlush, 0, 0, 0)->error, 0u);
  EXPECT_EQ(c->Call(kCmdFlush, kCmdFlagFua, 0, 0)->error, 0u);  // FUA is valid anywhere
  EXPECT_EQ(disk_->counters().flushes, 2u);
  // Offset and length of a flush are reserved as zero.
  EXPECT_EQ(c->Call(kCmdFlush, 0, 0, 4096)->error, kEinval);
  EXPECT_EQ(disk_->counters().flushes, 2u);
}

TEST_F(NbdTransmissionTest, FuaIsPassedToTheVolume) {
  auto c = Open();
  EXPECT_EQ(c->Write(0, "abc", kCmdFlagFua)->error, 0u);
  EXPECT_EQ(c->Write(0, "abc")->error, 0u);
  EXPECT_EQ(c->Call(kCmdWriteZeroes, kCmdFlagFua, 0, 4096)->error, 0u);
  auto counters = disk_->counters();
  EXPECT_EQ(counters.writes, 2u);
  EXPECT_EQ(counters.fua_writes, 2u);  // the FUA write and the FUA write-zeroes
  EXPECT_EQ(counters.flushes, 0u);
  // A FUA trim is made durable by a flush before the reply.
  EXPECT_EQ(c->Call(kCmdTrim, kCmdFlagFua, 0, 4096)->error, 0u);
  EXPECT_EQ(disk_->counters().flushes, 1u);
}

TEST_F(NbdTransmissionTest, ReadOnlyExportRefusesWritesWithEperm) {
  auto c = Open("ro");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->Write(0, Pattern(8192, 4))->error, kEperm);
  EXPECT_EQ(c->Call(kCmdTrim, 0, 0, 4096)->error, kEperm);
  EXPECT_EQ(c->Call(kCmdWriteZeroes, 0, 0, 4096)->error, kEperm);
  // The refused write's payload was skipped: framing intact.
  auto r = c->Read(0, 4096);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->error, 0u);
  EXPECT_EQ(ro_->counters().writes, 0u);
}

TEST_F(NbdTransmissionTest, RangesPastTheEndAreRefused) {
  auto c = Open();
  EXPECT_EQ(c->Read(kDiskSize - 100, 4096)->error, kEinval);
  EXPECT_EQ(c->Call(kCmdTrim, 0, kDiskSize, 1)->error, kEinval);
  // The spec: ENOSPC for writes past the end; the payload is skipped.
  EXPECT_EQ(c->Write(kDiskSize - 1, Pattern(4096, 5))->error, kEnospc);
  EXPECT_EQ(c->Call(kCmdWriteZeroes, 0, kDiskSize, 4096)->error, kEnospc);
  // offset + length overflowing 64 bits.
  EXPECT_EQ(c->Read(UINT64_MAX - 10, 4096)->error, kEinval);
  // Up to the last byte is fine, and zero-length requests at the end too.
  EXPECT_EQ(c->Read(kDiskSize - 4096, 4096)->error, 0u);
  auto r = c->Read(kDiskSize, 0);
  EXPECT_EQ(r->error, 0u);
  EXPECT_TRUE(r->data.empty());
  EXPECT_EQ(c->Write(kDiskSize, "")->error, 0u);
  EXPECT_EQ(disk_->counters().writes, 1u);  // only the empty write reached the volume
}

TEST_F(NbdTransmissionTest, UnknownCommandGetsEinvalAndTheConnectionGoesOn) {
  auto c = Open();
  EXPECT_EQ(c->Call(42, 0, 0, 4096)->error, kEinval);
  EXPECT_EQ(c->Call(kCmdCache, 0, 0, 4096)->error, kEinval);
  EXPECT_EQ(c->Call(kCmdBlockStatus, 0, 0, 4096)->error, kEinval);
  EXPECT_EQ(c->Read(0, 4096)->error, 0u);
}

TEST_F(NbdTransmissionTest, FlagsNotValidForTheCommandGetEinval) {
  auto c = Open();
  EXPECT_EQ(c->Read(0, 4096, kCmdFlagNoHole)->error, kEinval);
  EXPECT_EQ(c->Read(0, 4096, kCmdFlagDf)->error, kEinval);  // no structured replies
  EXPECT_EQ(c->Call(kCmdWriteZeroes, kCmdFlagFastZero, 0, 4096)->error, kEinval);
  EXPECT_EQ(c->Write(0, Pattern(4096, 6), 1 << 9)->error, kEinval);
  EXPECT_EQ(disk_->counters().writes, 0u);
  EXPECT_EQ(c->Read(0, 4096)->error, 0u);  // payload skipped, framing intact
}

TEST_F(NbdTransmissionTest, VolumeErrorsMapToNbdErrors) {
  auto c = Open();
  disk_->InjectError(IoKind::kRead, InternalError("disk on fire"));
  EXPECT_EQ(c->Read(0, 4096)->error, kEio);
  disk_->InjectError(IoKind::kRead, UnavailableError("lun being deleted"));
  EXPECT_EQ(c->Read(0, 4096)->error, kEio);
  disk_->InjectError(IoKind::kRead, OutOfRangeError("past the end"));
  EXPECT_EQ(c->Read(0, 4096)->error, kEinval);
  disk_->InjectError(IoKind::kRead, Status());
  disk_->InjectError(IoKind::kWrite, ResourceExhaustedError("tier full"));
  EXPECT_EQ(c->Write(0, "x")->error, kEnospc);
  disk_->InjectError(IoKind::kWrite, PermissionDeniedError("fenced"));
  EXPECT_EQ(c->Write(0, "x")->error, kEperm);
  disk_->InjectError(IoKind::kWrite, InvalidArgumentError("bad length"));
  EXPECT_EQ(c->Write(0, "x")->error, kEinval);
  disk_->InjectError(IoKind::kWrite, Status());
  disk_->InjectError(IoKind::kFlush, InternalError("journal"));
  EXPECT_EQ(c->Call(kCmdFlush, 0, 0, 0)->error, kEio);
  disk_->InjectError(IoKind::kFlush, Status());
  // An allocation failure in the volume is ENOSPC too.
  disk_->SetAllocationLimit(disk_->allocated_bytes());
  EXPECT_EQ(c->Write(8 << 20, "x")->error, kEnospc);
  EXPECT_EQ(c->Read(0, 4096)->error, 0u);
}

TEST_F(NbdTransmissionTest, ReadLongerThanTheMaximumGetsEinvalAndTheConnectionGoesOn) {
  auto big = std::make_shared<MemVolume>(1ull << 30);
  catalog_.Add("big", big);
  auto c = Open("big");
  EXPECT_EQ(c->Read(0, kMaxPayloadBytes + 1)->error, kEinval);
  EXPECT_EQ(big->counters().reads, 0u);
  EXPECT_EQ(c->Read(0, 4096)->error, 0u);
}

TEST_F(NbdTransmissionTest, AbsurdWriteLengthIsRefusedAndTheConnectionDropped) {
  auto c = Open();
  // Header only, announcing ~4 GiB: the server must neither wait for nor allocate it.
  ASSERT_TRUE(c->SendRequest(kCmdWrite, 0, 77, 0, 0xfffffff0u).ok());
  auto r = c->ReadReply();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->handle, 77u);
  EXPECT_EQ(r->error, kEinval);
  EXPECT_TRUE(c->WaitClosed());
  EXPECT_EQ(disk_->counters().writes, 0u);
  auto again = Open();
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->Read(0, 4096)->error, 0u);
}

TEST_F(NbdTransmissionTest, BadRequestMagicDropsTheConnectionOnly) {
  auto c = Open();
  auto other = Open();
  ASSERT_TRUE(c->SendRaw(std::string(28, '\x5a')).ok());
  EXPECT_TRUE(c->WaitClosed());
  EXPECT_EQ(other->Read(0, 4096)->error, 0u);
  auto fresh = Open();
  ASSERT_NE(fresh, nullptr);
  EXPECT_EQ(fresh->Write(0, "still here")->error, 0u);
  EXPECT_TRUE(WaitFor([&] { return server_->connection_count() == 2; }));
}

TEST_F(NbdTransmissionTest, ClientGoneMidWritePayloadIsHarmless) {
  auto c = Open();
  ASSERT_TRUE(c->SendRequest(kCmdWrite, 0, 1, 0, 1 << 20).ok());
  ASSERT_TRUE(c->SendRaw(Pattern(300 << 10, 7)).ok());
  c->Close();
  EXPECT_TRUE(WaitFor([&] { return server_->connection_count() == 0; }));
  EXPECT_EQ(disk_->counters().writes, 0u);
  EXPECT_EQ(Open()->Read(0, 4096)->error, 0u);
}

TEST_F(NbdTransmissionTest, ClientGoneWithRepliesPendingIsHarmless) {
  auto c = Open();
  for (uint64_t h = 1; h <= 64; ++h) {
    ASSERT_TRUE(c->SendRequest(kCmdRead, 0, h, 0, 1 << 20).ok());
  }
  c->Close();  // never reads the 64 MiB of replies
  EXPECT_TRUE(WaitFor([&] { return server_->connection_count() == 0; }));
  EXPECT_EQ(Open()->Read(0, 4096)->error, 0u);
}

TEST_F(NbdTransmissionTest, ClientGoneMidHeaderIsHarmless) {
  auto c = Open();
  ASSERT_TRUE(c->SendRaw(std::string(10, '\x25')).ok());
  c->Close();
  EXPECT_TRUE(WaitFor([&] { return server_->connection_count() == 0; }));
}

TEST_F(NbdTransmissionTest, PipelinedRequestsAreMatchedByHandle) {
  auto c = Open();
  constexpr int kN = 64;
  // Writes of distinct data, all sent before any reply is read.
  for (int i = 0; i < kN; ++i) {
    ASSERT_TRUE(
        c->SendRequest(kCmdWrite, 0, 1000 + i, uint64_t(i) * 8192, 8192, Pattern(8192, 100 + i))
            .ok());
  }
  std::set<uint64_t> handles;
  for (int i = 0; i < kN; ++i) {
    auto r = c->ReadReply();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->error, 0u);
    handles.insert(r->handle);
  }
  EXPECT_EQ(handles.size(), size_t{kN});
  EXPECT_EQ(*handles.begin(), 1000u);
  EXPECT_EQ(*handles.rbegin(), 1000u + kN - 1);
  // Reads, in reverse, replies in any order: each carries its own block.
  for (int i = kN - 1; i >= 0; --i) {
    ASSERT_TRUE(c->SendRequest(kCmdRead, 0, 5000 + i, uint64_t(i) * 8192, 8192).ok());
  }
  for (int i = 0; i < kN; ++i) {
    auto r = c->ReadReply();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_GE(r->handle, 5000u);
    int idx = static_cast<int>(r->handle - 5000);
    EXPECT_TRUE(r->data == Pattern(8192, 100 + idx)) << "handle " << r->handle;
  }
}

TEST_F(NbdTransmissionTest, PipelinedLargeAndSmallRequestsKeepTheirBytes) {
  // Large payloads (which make the server read the next header on its own and the
  // next payload straight into its buffer) mixed with small ones, requests without
  // a payload and a refused one, all in the socket before any reply is read.
  auto c = Open();
  const std::vector<uint32_t> sizes = {
      40000, 100, 64 << 10, 4096, 200000, 7, 32 << 10, (32 << 10) - 1, 1 << 20, 28, 300000};
  uint64_t off = 0;
  uint64_t handle = 1;
  std::vector<std::pair<uint64_t, std::string>> written;
  for (size_t i = 0; i < sizes.size(); ++i) {
    std::string data = Pattern(sizes[i], 300 + static_cast<uint32_t>(i));
    ASSERT_TRUE(c->SendRequest(kCmdWrite, 0, handle++, off, sizes[i], data).ok());
    written.emplace_back(off, std::move(data));
    off += sizes[i] + 513;
    if (i % 3 == 0) {
      ASSERT_TRUE(c->SendRequest(42, 0, handle++, 0, 4096).ok());  // EINVAL
    }
    if (i % 4 == 1) {
      ASSERT_TRUE(c->SendRequest(kCmdFlush, 0, handle++, 0, 0).ok());
    }
  }
  int refused = 0;
  for (uint64_t i = 1; i < handle; ++i) {
    auto r = c->ReadReply();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (r->error == kEinval) {
      ++refused;
    } else {
      EXPECT_EQ(r->error, 0u) << "handle " << r->handle;
    }
  }
  EXPECT_EQ(refused, 4);
  for (const auto& [o, data] : written) {
    auto r = c->Read(o, static_cast<uint32_t>(data.size()));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->data == data) << "write at " << o << " of " << data.size();
  }
}

TEST_F(NbdTransmissionTest, PipelinedRequestsRunConcurrently) {
  // Each read waits (bounded) until four reads are inside the volume at once: a
  // server that runs one connection's requests one by one fails this.
  std::mutex mu;
  std::condition_variable cv;
  int inside = 0;
  auto vol = std::make_shared<MemVolume>(1 << 20);
  vol->SetBeforeOpHook([&](IoKind) {
    std::unique_lock lock(mu);
    ++inside;
    cv.notify_all();
    cv.wait_for(lock, std::chrono::seconds(5), [&] { return inside >= 4; });
  });
  catalog_.Add("slow", vol);
  auto c = Open("slow");
  for (uint64_t h = 1; h <= 8; ++h) ASSERT_TRUE(c->SendRequest(kCmdRead, 0, h, 0, 4096).ok());
  for (int i = 0; i < 8; ++i) {
    auto r = c->ReadReply();
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->error, 0u);
  }
  EXPECT_GE(vol->counters().max_concurrent, 4);
}

TEST_F(NbdTransmissionTest, WritesGoOnWhileAReadReplyWaitsForTheClient) {
  // A 16 MiB read reply the client does not take (a 64 KiB receive buffer) holds the
  // socket's send side; the writes behind it still run, all 64 of them: their replies
  // (no data) are queued for one draining thread, not each waited for on a serving
  // thread (16 of them would all be waiting after 15 writes). Then every reply arrives.
  auto c = Open();
  ASSERT_NE(c, nullptr);
  const int rcvbuf = 64 << 10;
  ASSERT_EQ(::setsockopt(c->fd(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
  ASSERT_TRUE(c->SendRequest(kCmdRead, 0, 1, 0, kDiskSize).ok());
  // The reply has begun (its first bytes are here), so its send is under way.
  pollfd pfd{c->fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 10000), 1);
  constexpr int kWrites = 64;
  for (int i = 0; i < kWrites; ++i) {
    ASSERT_TRUE(
        c->SendRequest(kCmdWrite, 0, 100 + i, uint64_t(i) * 4096, 4096, Pattern(4096, 700 + i))
            .ok());
  }
  EXPECT_TRUE(WaitFor([&] { return disk_->counters().writes == kWrites; }))
      << disk_->counters().writes << " writes ran";
  std::set<uint64_t> handles;
  for (int i = 0; i <= kWrites; ++i) {
    auto r = c->ReadReply();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->error, 0u) << "handle " << r->handle;
    if (r->handle == 1) {
      EXPECT_EQ(r->data.size(), kDiskSize);
    }
    handles.insert(r->handle);
  }
  EXPECT_EQ(handles.size(), size_t{kWrites + 1});
  for (int i = 0; i < kWrites; ++i) {
    auto r = c->Read(uint64_t(i) * 4096, 4096);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->data == Pattern(4096, 700 + i)) << "block " << i;
  }
}

TEST_F(NbdTransmissionTest, DisconnectAnswersEverythingInFlightFirst) {
  auto c = Open();
  for (uint64_t h = 1; h <= 16; ++h) {
    ASSERT_TRUE(c->SendRequest(kCmdWrite, 0, h, h * 4096, 4096, Pattern(4096, 9)).ok());
  }
  ASSERT_TRUE(c->SendRequest(kCmdDisc, 0, 99, 0, 0).ok());
  for (int i = 0; i < 16; ++i) {
    auto r = c->ReadReply();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->error, 0u);
  }
  EXPECT_TRUE(c->WaitClosed());
  EXPECT_EQ(disk_->counters().writes, 16u);
}

TEST_F(NbdTransmissionTest, StructuredRepliesCarryReadDataAndErrorMessages) {
  auto c = Open("disk", /*structured=*/true);
  ASSERT_NE(c, nullptr);
  std::string data = Pattern(10000, 11);
  auto w = c->Write(4096, data);
  ASSERT_TRUE(w.ok());
  EXPECT_FALSE(w->structured);  // a payload-less success may stay simple
  EXPECT_EQ(w->error, 0u);
  auto r = c->Read(4096, 10000, kCmdFlagDf);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->structured);
  EXPECT_EQ(r->error, 0u);
  EXPECT_TRUE(r->data == data);
  auto empty = c->Read(0, 0);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->structured);
  EXPECT_TRUE(empty->data.empty());
  auto bad = c->Read(kDiskSize, 4096);
  ASSERT_TRUE(bad.ok());
  EXPECT_TRUE(bad->structured);
  EXPECT_EQ(bad->error, kEinval);
  EXPECT_NE(bad->message.find("past the end"), std::string::npos) << bad->message;
  auto unknown = c->Call(99, 0, 0, 0);
  EXPECT_EQ(unknown->error, kEinval);
  EXPECT_NE(unknown->message.find("unknown command 99"), std::string::npos);
}

TEST_F(NbdTransmissionTest, EveryRequestIsRecordedInIoStats) {
  auto c = Open();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(c->Read(uint64_t(i) * 4096, 4096)->error, 0u);
  ASSERT_EQ(c->Read(kDiskSize, 4096)->error, kEinval);
  ASSERT_EQ(c->Write(0, Pattern(1000, 1))->error, 0u);
  ASSERT_EQ(c->Write(0, Pattern(24, 1), kCmdFlagFua)->error, 0u);
  ASSERT_EQ(c->Call(kCmdFlush, 0, 0, 0)->error, 0u);
  ASSERT_EQ(c->Call(kCmdTrim, 0, 0, 8192)->error, 0u);
  ASSERT_EQ(c->Call(kCmdWriteZeroes, 0, 0, 512)->error, 0u);
  // A request is recorded once its reply is sent, so the last records may trail
  // the replies the client has seen by a moment.
  auto total_ops = [&] {
    auto s = disk_->io_stats()->Take();
    uint64_t n = 0;
    for (const auto& k : s.kinds) n += k.ops;
    return n;
  };
  ASSERT_TRUE(WaitFor([&] { return total_ops() == 9; })) << total_ops();
  auto snap = disk_->io_stats()->Take();
  const auto& rd = snap.of(IoKind::kRead);
  EXPECT_EQ(rd.ops, 4u);
  EXPECT_EQ(rd.errors, 1u);
  EXPECT_EQ(rd.bytes, 3u * 4096);
  EXPECT_GT(rd.max_ns, 0u);
  EXPECT_GT(rd.p50_ns, 0u);
  EXPECT_EQ(snap.of(IoKind::kWrite).ops, 2u);
  EXPECT_EQ(snap.of(IoKind::kWrite).bytes, 1024u);
  EXPECT_EQ(snap.of(IoKind::kFlush).ops, 1u);
  EXPECT_EQ(snap.of(IoKind::kFlush).bytes, 0u);
  EXPECT_EQ(snap.of(IoKind::kTrim).bytes, 8192u);
  EXPECT_EQ(snap.of(IoKind::kWriteZeroes).bytes, 512u);
}

}  // namespace
}  // namespace strata::nbd::test
