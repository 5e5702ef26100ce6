// Volume::BeginWrite and BeginRead of the engine's LUNs: large in-place overwrites
// received straight into the tier mapping (direct_write.cc), reads handed out from it
// (direct_read.cc). On the real file system (Env::Default), since MemEnv's files have
// no mapping.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <string>
#include <thread>

#include "engine_mapped_fixture.h"
#include "strata/common/env.h"
#include "strata/storage/engine.h"

namespace strata::storage {
namespace {

using testing::kBs;
using testing::kMiB;
using testing::Land;
using testing::Pattern;

IncomingPayload Queued() {
  IncomingPayload p;
  p.queued = true;
  return p;
}

class EngineDirectWriteTest : public testing::EngineMappedTest {
 protected:
  EngineDirectWriteTest() : EngineMappedTest("strata-direct", 64ull << 20, 8 * kMiB) {}

  // The tier file's block at byte `offset`, read with pread (not through the engine);
  // empty past the file's end.
  std::string TierBlock(uint64_t offset) {
    std::string out(kBs, '\0');
    const int fd = ::open((dir_ + "/blocks.dat").c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    if (::pread(fd, out.data(), kBs, static_cast<off_t>(offset)) != ssize_t{kBs}) out.clear();
    ::close(fd);
    return out;
  }
  // Where the tier file holds `block` (UINT64_MAX: nowhere).
  uint64_t FindInTier(const std::string& block) {
    for (uint64_t off = 0;; off += kBs) {
      const std::string got = TierBlock(off);
      if (got.empty()) return UINT64_MAX;
      if (got == block) return off;
    }
  }
};

TEST_F(EngineDirectWriteTest, OverwritesInPlaceThroughTheMapping) {
  auto v = Create("v");
  Write(*v, kMiB, Pattern(kMiB, 1));  // fresh slots (pwrite)
  ASSERT_TRUE(engine_->Flush().ok());
  const uint64_t used = Used();
  const std::string b = Pattern(kMiB, 2);
  auto w = v->BeginWrite(kMiB, kMiB, false, Queued());
  ASSERT_NE(w, nullptr);
  Land(*w, b, 7000);  // pieces that straddle blocks and slot runs
  ASSERT_TRUE(w->Commit().ok());
  w.reset();
  EXPECT_TRUE(Read(*v, kMiB, kMiB) == b);
  EXPECT_EQ(Used(), used);  // no new slot
  // In the file: flushed and read back after a restart.
  ASSERT_TRUE(engine_->Flush().ok());
  v.reset();
  Reopen();
  v = Vol("v");
  EXPECT_TRUE(Read(*v, kMiB, kMiB) == b);
  // FUA: the commit flushes.
  const std::string c = Pattern(256 << 10, 3);
  w = v->BeginWrite(kMiB, 256 << 10, true, Queued());
  ASSERT_NE(w, nullptr);
  Land(*w, c);
  ASSERT_TRUE(w->Commit().ok());
  w.reset();
  EXPECT_TRUE(Read(*v, kMiB, 256 << 10) == c);
}

TEST_F(EngineDirectWriteTest, DeclinesWhatIsNotAnInPlaceOverwrite) {
  auto v = Create("v");
  Write(*v, 0, Pattern(2 * kMiB, 4));
  // Not known to be queued: never (the receives would hold the lock on the network).
  EXPECT_EQ(v->BeginWrite(0, kMiB, false, IncomingPayload{}), nullptr);
  // Not whole blocks.
  EXPECT_EQ(v->BeginWrite(512, kMiB, false, Queued()), nullptr);
  EXPECT_EQ(v->BeginWrite(0, kMiB - 512, false, Queued()), nullptr);
  // A hole, and a range only part of which is written: new slots (fresh_write.cc,
  // engine_fresh_write_test.cc), not in place.
  EXPECT_NE(v->BeginWrite(4 * kMiB, kMiB, false, Queued()), nullptr);
  EXPECT_NE(v->BeginWrite(2 * kMiB - kBs, 2 * kBs, false, Queued()), nullptr);
  // Past the end.
  EXPECT_EQ(v->BeginWrite(8 * kMiB - kBs, 2 * kBs, false, Queued()), nullptr);
  // A dedup LUN: never in place (it may get rxhash's placement in reserved slots once
  // the tier file covers them, as the fresh writes above grew it: not this path).
  auto d = Create("d", /*dedup=*/true);
  Write(*d, 0, Pattern(kMiB, 5));
  // Shared with a snapshot: new slots, as Write copies on write.
  ASSERT_TRUE(engine_->CreateSnapshot("v", "s", {}).ok());
  EXPECT_NE(v->BeginWrite(0, kMiB, false, Queued()), nullptr);
  // Nothing is left held: the writes those fall back to go through.
  Write(*v, 0, Pattern(2 * kMiB, 6));
  Write(*d, 0, Pattern(kMiB, 7));
  EXPECT_TRUE(Read(*v, 0, 2 * kMiB) == Pattern(2 * kMiB, 6));
  // v's blocks are its own again (copied on write): in place once more.
  EXPECT_NE(v->BeginWrite(0, kMiB, false, Queued()), nullptr);
}

TEST_F(EngineDirectWriteTest, SnapshotTakenRightAfterHoldsTheWriteAndLaterWritesCopy) {
  auto v = Create("v");
  Write(*v, 0, Pattern(kMiB, 8));
  const std::string b = Pattern(kMiB, 9);
  auto w = v->BeginWrite(0, kMiB, false, Queued());
  ASSERT_NE(w, nullptr);
  Land(*w, b);
  ASSERT_TRUE(w->Commit().ok());
  w.reset();
  ASSERT_TRUE(engine_->CreateSnapshot("v", "s", {}).ok());
  // Shared now: not in place; the write takes new slots (copy on write).
  EXPECT_NE(v->BeginWrite(0, kMiB, false, Queued()), nullptr);
  Write(*v, 0, Pattern(kMiB, 10));
  LunSpec spec;
  spec.name = "r";
  spec.size_bytes = 8 * kMiB;
  ASSERT_TRUE(engine_->RestoreSnapshot("s", spec).ok());
  auto r = Vol("r");
  EXPECT_TRUE(Read(*r, 0, kMiB) == b);
  EXPECT_TRUE(Read(*v, 0, kMiB) == Pattern(kMiB, 10));
}

TEST_F(EngineDirectWriteTest, ASnapshotWaitsForTheBytesToLand) {
  // The snapshot is asked for while the write holds its slots: it cannot share them
  // until every byte landed, so it holds the whole write, never part of it.
  auto v = Create("v");
  Write(*v, 0, Pattern(kMiB, 11));
  const std::string b = Pattern(kMiB, 12);
  auto w = v->BeginWrite(0, kMiB, false, Queued());
  ASSERT_NE(w, nullptr);
  Land(*w, b, 64 << 10, kMiB / 2);
  std::thread snap([&] { EXPECT_TRUE(engine_->CreateSnapshot("v", "s", {}).ok()); });
  Land(*w, b.substr(kMiB / 2));
  snap.join();  // mu_ was let go when the last byte landed, before the commit
  ASSERT_TRUE(w->Commit().ok());
  w.reset();
  LunSpec spec;
  spec.name = "r";
  spec.size_bytes = 8 * kMiB;
  ASSERT_TRUE(engine_->RestoreSnapshot("s", spec).ok());
  EXPECT_TRUE(Read(*Vol("r"), 0, kMiB) == b);
}

TEST_F(EngineDirectWriteTest, ATrimOfTheRangeWaitsForTheWrite) {
  auto v = Create("v");
  Write(*v, 0, Pattern(kMiB, 13));
  auto w = v->BeginWrite(0, kMiB, false, Queued());
  ASSERT_NE(w, nullptr);
  Land(*w, Pattern(kMiB, 14), 64 << 10, 100 << 10);
  std::thread trim([&] { EXPECT_TRUE(v->Trim(0, kMiB).ok()); });
  Land(*w, Pattern(kMiB, 14).substr(100 << 10));
  ASSERT_TRUE(w->Commit().ok());
  w.reset();
  trim.join();
  EXPECT_TRUE(Read(*v, 0, kMiB) == std::string(kMiB, '\0'));
  ASSERT_TRUE(engine_->Flush().ok());
  EXPECT_EQ(Used(), 0u);
}

TEST_F(EngineDirectWriteTest, BlocksOfZerosBecomeHoles) {
  auto v = Create("v");
  Write(*v, 0, Pattern(kMiB, 15));
  ASSERT_TRUE(engine_->Flush().ok());
  const uint64_t used = Used();
  std::string b = Pattern(kMiB, 16);
  std::memset(b.data() + 3 * kBs, 0, 2 * kBs);
  auto w = v->BeginWrite(0, kMiB, false, Queued());
  ASSERT_NE(w, nullptr);
  Land(*w, b);
  ASSERT_TRUE(w->Commit().ok());
  w.reset();
  EXPECT_TRUE(Read(*v, 0, kMiB) == b);
  ASSERT_TRUE(engine_->Flush().ok());
  EXPECT_EQ(Used(), used - 2 * kBs);
}

TEST_F(EngineDirectWriteTest, AMovesDirtyPassSeesTheWrite) {
  auto v = Create("v");
  Write(*v, 0, Pattern(2 * kMiB, 17));
  ASSERT_TRUE(engine_->StartExport("v", "10.0.0.2:7400").ok());
  auto none = [](uint64_t, const char*) { return Status::Ok(); };
  ASSERT_TRUE(engine_->ExportPass("v", true, none).ok());
  EXPECT_EQ(engine_->ExportDirtyBlocks("v"), 0u);
  const std::string b = Pattern(kMiB, 18);
  auto w = v->BeginWrite(kMiB, kMiB, false, Queued());
  ASSERT_NE(w, nullptr);
  Land(*w, b);
  ASSERT_TRUE(w->Commit().ok());
  w.reset();
  EXPECT_EQ(engine_->ExportDirtyBlocks("v"), uint64_t{kMiB / kBs});
  std::string sent(kMiB, '?');
  auto pass = engine_->ExportPass("v", false, [&](uint64_t lba, const char* block) {
    EXPECT_GE(lba, kMiB / kBs);
    if (lba >= kMiB / kBs && lba < 2 * kMiB / kBs && block != nullptr) {
      std::memcpy(sent.data() + (lba - kMiB / kBs) * kBs, block, kBs);
    }
    return Status::Ok();
  });
  ASSERT_TRUE(pass.ok()) << pass.status().ToString();
  EXPECT_TRUE(sent == b);
  engine_->AbortExport("v", Status(StatusCode::kCancelled, "test"));
}

TEST_F(EngineDirectWriteTest, AnAbandonedWriteLeavesTheLunUsableAndMarksItsBlocks) {
  auto v = Create("v");
  const std::string a = Pattern(kMiB, 19);
  Write(*v, 0, a);
  ASSERT_TRUE(engine_->StartExport("v", "10.0.0.2:7400").ok());
  ASSERT_TRUE(
      engine_->ExportPass("v", true, [](uint64_t, const char*) { return Status::Ok(); }).ok());
  const std::string b = Pattern(kMiB, 20);
  auto w = v->BeginWrite(0, kMiB, false, Queued());
  ASSERT_NE(w, nullptr);
  Land(*w, b, 64 << 10, 300 << 10);
  w.reset();  // the client went away: never committed
  // Blocks read back old or new bytes (here: new where they landed).
  std::string got = Read(*v, 0, kMiB);
  EXPECT_TRUE(got.substr(0, 300 << 10) == b.substr(0, 300 << 10));
  EXPECT_TRUE(got.substr(304 << 10) == a.substr(304 << 10));
  EXPECT_EQ(engine_->ExportDirtyBlocks("v"), uint64_t{kMiB / kBs});
  engine_->AbortExport("v", Status(StatusCode::kCancelled, "test"));
  // Nothing held: writes, flushes and snapshots go on.
  Write(*v, 0, Pattern(kMiB, 21));
  ASSERT_TRUE(engine_->Flush().ok());
  ASSERT_TRUE(engine_->CreateSnapshot("v", "s", {}).ok());
  EXPECT_TRUE(Read(*v, 0, kMiB) == Pattern(kMiB, 21));
}

TEST_F(EngineDirectWriteTest, BytesHeldBeforeTheReceivesLandABlockAtATime) {
  // The bytes the server read with the header end 2 KiB into block 1: block 0 is
  // stored whole, block 1 stays all old until its rest arrives. A process killed
  // between the two (here: the write abandoned) leaves block 1 old, not half new.
  auto v = Create("v");
  const std::string a = Pattern(kMiB, 40);
  Write(*v, 0, a);
  const std::string b = Pattern(kMiB, 41);
  const size_t head = kBs + 2048;
  auto w = v->BeginWrite(0, kMiB, false, Queued());
  ASSERT_NE(w, nullptr);
  EXPECT_TRUE(w->WholeReceives());
  ASSERT_TRUE(w->Land(std::span<const char>(b.data(), head)).ok());
  w.reset();
  std::string got = Read(*v, 0, kMiB);
  EXPECT_TRUE(got.substr(0, kBs) == b.substr(0, kBs));
  EXPECT_TRUE(got.substr(kBs) == a.substr(kBs));  // block 1 whole and old
  // Received to the end: block 1's rest is asked for alone, outside the tier (the
  // block is stored with one write once whole); every later space is whole blocks.
  const uint64_t slot1 = FindInTier(a.substr(kBs, kBs));
  ASSERT_NE(slot1, UINT64_MAX);
  w = v->BeginWrite(0, kMiB, false, Queued());
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(w->Land(std::span<const char>(b.data(), head)).ok());
  std::array<std::span<char>, 8> spaces;
  ASSERT_EQ(w->NextSpaces(spaces.data(), spaces.size()), 1u);
  ASSERT_EQ(spaces[0].size(), kBs - 2048);
  std::memcpy(spaces[0].data(), b.data() + head, spaces[0].size());
  // (The tier file read beside the engine, which holds the LUN's locks meanwhile.)
  EXPECT_TRUE(TierBlock(slot1) == a.substr(kBs, kBs));
  w->Received(spaces[0].size());
  EXPECT_TRUE(TierBlock(slot1) == b.substr(kBs, kBs));
  size_t done = 2 * kBs;
  while (done < kMiB) {
    const size_t k = w->NextSpaces(spaces.data(), spaces.size());
    ASSERT_GE(k, 1u);
    size_t n = 0;
    for (size_t i = 0; i < k; ++i) {
      ASSERT_EQ(spaces[i].size() % kBs, 0u);
      std::memcpy(spaces[i].data(), b.data() + done + n, spaces[i].size());
      n += spaces[i].size();
    }
    w->Received(n);
    done += n;
  }
  ASSERT_TRUE(w->Commit().ok());
  w.reset();
  EXPECT_TRUE(Read(*v, 0, kMiB) == b);
  // Held bytes that cover the whole payload: stored, nothing left to receive.
  const std::string c = Pattern(64 << 10, 42);
  w = v->BeginWrite(kMiB, 64 << 10, false, Queued());
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(w->Land(c).ok());
  EXPECT_TRUE(w->NextSpace().empty());
  ASSERT_TRUE(w->Commit().ok());
  w.reset();
  EXPECT_TRUE(Read(*v, kMiB, 64 << 10) == c);
}

TEST_F(EngineDirectWriteTest, DeletingTheLunWaitsForTheBytesToLand) {
  auto v = Create("v");
  Write(*v, 0, Pattern(kMiB, 22));
  auto w = v->BeginWrite(0, kMiB, false, Queued());
  ASSERT_NE(w, nullptr);
  Land(*w, Pattern(kMiB, 23), 64 << 10, kMiB / 2);
  std::thread del([&] { EXPECT_TRUE(engine_->DeleteLun("v").ok()); });
  Land(*w, Pattern(kMiB, 23).substr(kMiB / 2));
  Status s = w->Commit();  // OK, or UNAVAILABLE if the delete came first
  EXPECT_TRUE(s.ok() || s.code() == StatusCode::kUnavailable) << s.ToString();
  w.reset();
  del.join();
  ASSERT_TRUE(engine_->Flush().ok());
  EXPECT_EQ(Used(), 0u);
}

std::string Join(const OutgoingRead& r) {
  std::string out;
  for (const auto& sp : r.Spans()) out.append(sp.data(), sp.size());
  return out;
}

TEST_F(EngineDirectWriteTest, ReadsAreHandedOutFromTheMappingWithZerosForHoles) {
  auto v = Create("v");
  Write(*v, 0, Pattern(kMiB, 30));
  Write(*v, 3 * kMiB, Pattern(kMiB, 31));
  const uint64_t off = 4096 + 3;
  const uint32_t len = 3 * kMiB + 5000;  // data, a hole of 2 MiB, data
  auto r = v->BeginRead(off, len);
  ASSERT_NE(r, nullptr);
  EXPECT_GE(r->Spans().size(), 3u);
  const std::string got = Join(*r);
  r.reset();
  EXPECT_TRUE(got == Read(*v, off, len));
  EXPECT_TRUE(got.substr(kMiB - off, 2 * kMiB) == std::string(2 * kMiB, '\0'));
  // Declined: a dedup LUN, a range past the end.
  auto d = Create("d", /*dedup=*/true);
  Write(*d, 0, Pattern(kMiB, 32));
  EXPECT_EQ(d->BeginRead(0, kMiB), nullptr);
  EXPECT_EQ(v->BeginRead(8 * kMiB - kBs, 2 * kBs), nullptr);
}

TEST_F(EngineDirectWriteTest, AHeldReadKeepsItsSlotsUntilLetGo) {
  // While the spans are held nothing may free and reuse their slots: a trim and a
  // flush wait, and the spans still hold the bytes read.
  auto v = Create("v");
  const std::string a = Pattern(kMiB, 33);
  Write(*v, 0, a);
  auto r = v->BeginRead(0, kMiB);
  ASSERT_NE(r, nullptr);
  std::thread trim([&] {
    EXPECT_TRUE(v->Trim(0, kMiB).ok());
    EXPECT_TRUE(engine_->Flush().ok());
    Write(*v, 2 * kMiB, Pattern(kMiB, 34));  // may take the freed slots
  });
  const std::string got = Join(*r);
  r.reset();
  trim.join();
  EXPECT_TRUE(got == a);
  EXPECT_TRUE(Read(*v, 0, kMiB) == std::string(kMiB, '\0'));
  EXPECT_TRUE(Read(*v, 2 * kMiB, kMiB) == Pattern(kMiB, 34));
}

}  // namespace
}  // namespace strata::storage
