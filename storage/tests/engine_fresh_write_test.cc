// Volume::BeginWrite of writes that take new slots (storage/src/engine/fresh_write.cc):
// a move's target filling its new LUN, a LUN's first write. The slots are allocated
// up front and the payload received straight into the tier mapping; nothing is
// visible until Commit, an abandoned write gives its slots back. On the real file
// system (Env::Default), since MemEnv's files have no mapping.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "engine_mapped_fixture.h"
#include "strata/common/env.h"
#include "strata/storage/engine.h"

namespace strata::storage {
namespace {

using testing::kBs;
using testing::kMiB;
using testing::Land;
using testing::Pattern;

class EngineFreshWriteTest : public testing::EngineMappedTest {
 protected:
  EngineFreshWriteTest() : EngineMappedTest("strata-fresh", 128ull << 20, 16 * kMiB) {}
  // The tier's data file (the only regular file in dir_ besides the state).
  uint64_t DataFileSize() {
    uint64_t biggest = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir_)) {
      if (e.is_regular_file()) biggest = std::max<uint64_t>(biggest, e.file_size());
    }
    return biggest;
  }
};

TEST_F(EngineFreshWriteTest, NewSlotsAreReceivedInPlaceAndSeenOnlyAfterCommit) {
  auto v = Create("v");
  const std::string b = Pattern(4 * kMiB, 1);
  // Not known to be queued: taken all the same (nothing is held while bytes land).
  auto w = v->BeginWrite(kMiB, 4 * kMiB, false, IncomingPayload{});
  ASSERT_NE(w, nullptr);
  EXPECT_GE(DataFileSize(), 5 * uint64_t{kMiB});  // grown to cover the slots first
  Land(*w, b, 7000, 3 * kMiB);                    // pieces that straddle blocks
  // A reader meanwhile sees the blocks as they were: a hole.
  EXPECT_TRUE(Read(*v, kMiB, 4 * kMiB) == std::string(4 * kMiB, '\0'));
  Land(*w, b.substr(3 * kMiB));
  EXPECT_TRUE(Read(*v, kMiB, 4 * kMiB) == std::string(4 * kMiB, '\0'));
  ASSERT_TRUE(w->Commit().ok());
  w.reset();
  EXPECT_TRUE(Read(*v, kMiB, 4 * kMiB) == b);
  EXPECT_EQ(Used(), 4 * uint64_t{kMiB});
  // Durable after a flush and a restart.
  ASSERT_TRUE(engine_->Flush().ok());
  v.reset();
  Reopen();
  v = Vol("v");
  EXPECT_TRUE(Read(*v, kMiB, 4 * kMiB) == b);
  EXPECT_TRUE(Read(*v, 0, kMiB) == std::string(kMiB, '\0'));
  // FUA: the commit flushes; durable without one more flush.
  const std::string c = Pattern(kMiB, 2);
  w = v->BeginWrite(8 * kMiB, kMiB, true, IncomingPayload{});
  ASSERT_NE(w, nullptr);
  Land(*w, c);
  ASSERT_TRUE(w->Commit().ok());
  w.reset();
  v.reset();
  Reopen();
  EXPECT_TRUE(Read(*Vol("v"), 8 * kMiB, kMiB) == c);
}

TEST_F(EngineFreshWriteTest, AnAbandonedWriteGivesItsSlotsBack) {
  auto v = Create("v");
  {
    auto w = v->BeginWrite(0, 2 * kMiB, false, IncomingPayload{});
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(Used(), 2 * uint64_t{kMiB});  // allocated while bytes land
    Land(*w, Pattern(2 * kMiB, 3), 64 << 10, kMiB);
    // A commit before the last byte is refused, and changes nothing.
    EXPECT_FALSE(w->Commit().ok());
  }  // the client went away
  EXPECT_EQ(Used(), 0u);
  EXPECT_TRUE(Read(*v, 0, 2 * kMiB) == std::string(2 * kMiB, '\0'));
  // The slots are reused by the next write, and nothing else was left held.
  const std::string b = Pattern(2 * kMiB, 4);
  auto w = v->BeginWrite(0, 2 * kMiB, false, IncomingPayload{});
  ASSERT_NE(w, nullptr);
  Land(*w, b);
  ASSERT_TRUE(w->Commit().ok());
  w.reset();
  ASSERT_TRUE(engine_->Flush().ok());
  ASSERT_TRUE(engine_->CreateSnapshot("v", "s", {}).ok());
  EXPECT_TRUE(Read(*v, 0, 2 * kMiB) == b);
  EXPECT_EQ(Used(), 2 * uint64_t{kMiB});
}

TEST_F(EngineFreshWriteTest, ASnapshotTakenMidPayloadHoldsTheBlocksAsTheyWere) {
  auto v = Create("v");
  const std::string a = Pattern(kMiB, 5);
  Write(*v, 0, a);
  ASSERT_TRUE(engine_->CreateSnapshot("v", "s0", {}).ok());  // shared: the next write copies
  const std::string b = Pattern(kMiB, 6);
  auto w = v->BeginWrite(0, kMiB, false, IncomingPayload{});
  ASSERT_NE(w, nullptr);
  Land(*w, b, 64 << 10, kMiB / 2);
  ASSERT_TRUE(engine_->CreateSnapshot("v", "s1", {}).ok());  // does not wait: nothing held
  Land(*w, b.substr(kMiB / 2));
  ASSERT_TRUE(w->Commit().ok());
  w.reset();
  EXPECT_TRUE(Read(*v, 0, kMiB) == b);
  LunSpec spec;
  spec.name = "r";
  spec.size_bytes = 16 * kMiB;
  ASSERT_TRUE(engine_->RestoreSnapshot("s1", spec).ok());
  EXPECT_TRUE(Read(*Vol("r"), 0, kMiB) == a);
}

TEST_F(EngineFreshWriteTest, ATrimMidPayloadIsFollowedByTheWrite) {
  auto v = Create("v");
  Write(*v, 4 * kMiB, Pattern(kMiB, 7));
  ASSERT_TRUE(engine_->CreateSnapshot("v", "s", {}).ok());
  const std::string b = Pattern(kMiB, 8);
  auto w = v->BeginWrite(4 * kMiB, kMiB, false, IncomingPayload{});
  ASSERT_NE(w, nullptr);
  Land(*w, b, 64 << 10, 100 << 10);
  ASSERT_TRUE(v->Trim(4 * kMiB, kMiB).ok());  // does not wait for the write
  EXPECT_TRUE(Read(*v, 4 * kMiB, kMiB) == std::string(kMiB, '\0'));
  Land(*w, b.substr(100 << 10));
  ASSERT_TRUE(w->Commit().ok());
  w.reset();
  EXPECT_TRUE(Read(*v, 4 * kMiB, kMiB) == b);
}

TEST_F(EngineFreshWriteTest, DeletingTheLunMidPayloadReturnsTheSlots) {
  auto v = Create("v");
  auto w = v->BeginWrite(0, kMiB, false, IncomingPayload{});
  ASSERT_NE(w, nullptr);
  Land(*w, Pattern(kMiB, 9), 64 << 10, kMiB / 2);
  ASSERT_TRUE(engine_->DeleteLun("v").ok());  // does not wait for the write
  Land(*w, Pattern(kMiB, 9).substr(kMiB / 2));
  Status s = w->Commit();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  w.reset();
  ASSERT_TRUE(engine_->Flush().ok());
  EXPECT_EQ(Used(), 0u);
}

TEST_F(EngineFreshWriteTest, BlocksOfZerosBecomeHoles) {
  auto v = Create("v");
  std::string b = Pattern(kMiB, 10);
  std::memset(b.data() + 5 * kBs, 0, 3 * kBs);
  auto w = v->BeginWrite(0, kMiB, false, IncomingPayload{});
  ASSERT_NE(w, nullptr);
  Land(*w, b);
  ASSERT_TRUE(w->Commit().ok());
  w.reset();
  EXPECT_TRUE(Read(*v, 0, kMiB) == b);
  ASSERT_TRUE(engine_->Flush().ok());
  EXPECT_EQ(Used(), uint64_t{kMiB} - 3 * kBs);
}

TEST_F(EngineFreshWriteTest, DedupSwitchedOnMidPayloadTakesTheUsualWrite) {
  auto v = Create("v");
  const std::string b = Pattern(kMiB, 11);
  auto w = v->BeginWrite(0, kMiB, false, IncomingPayload{});
  ASSERT_NE(w, nullptr);
  Land(*w, b, 64 << 10, kMiB / 4);
  ASSERT_TRUE(engine_->SetDedup("v", true, false).ok());
  Land(*w, b.substr(kMiB / 4));
  ASSERT_TRUE(w->Commit().ok());
  w.reset();
  EXPECT_TRUE(Read(*v, 0, kMiB) == b);
  ASSERT_TRUE(engine_->Flush().ok());
  EXPECT_EQ(Used(), uint64_t{kMiB});  // the placement's slots went back
}

TEST_F(EngineFreshWriteTest, DeclinesRunsThatAreOverwrittenInPlace) {
  auto v = Create("v");
  Write(*v, 0, Pattern(2 * kMiB, 12));
  // Every block this LUN's own: Write overwrites in place (a queued payload gets the
  // in-place spaces, direct_write.cc; one not known to be queued takes Write).
  EXPECT_EQ(v->BeginWrite(0, kMiB, false, IncomingPayload{}), nullptr);
  // Past the end, not whole blocks, a dedup LUN: declined.
  EXPECT_EQ(v->BeginWrite(16 * kMiB - kBs, 2 * kBs, false, IncomingPayload{}), nullptr);
  EXPECT_EQ(v->BeginWrite(4 * kMiB + 512, kMiB, false, IncomingPayload{}), nullptr);
  auto d = Create("d", /*dedup=*/true);
  IncomingPayload none;
  auto dw = d->BeginWrite(0, 8 * kMiB, false, none);  // more than a dedup placement takes
  EXPECT_EQ(dw, nullptr);
  EXPECT_EQ(Used(), 2 * uint64_t{kMiB});  // nothing allocated by the declined ones
}

TEST_F(EngineFreshWriteTest, AMovesDirtyPassSeesTheWrite) {
  auto v = Create("v");
  Write(*v, 0, Pattern(kMiB, 13));
  ASSERT_TRUE(engine_->StartExport("v", "10.0.0.2:7400").ok());
  auto none = [](uint64_t, const char*) { return Status::Ok(); };
  ASSERT_TRUE(engine_->ExportPass("v", true, none).ok());
  EXPECT_EQ(engine_->ExportDirtyBlocks("v"), 0u);
  const std::string b = Pattern(kMiB, 14);
  auto w = v->BeginWrite(2 * kMiB, kMiB, false, IncomingPayload{});
  ASSERT_NE(w, nullptr);
  Land(*w, b);
  EXPECT_EQ(engine_->ExportDirtyBlocks("v"), 0u);  // not before it lands in the LUN
  ASSERT_TRUE(w->Commit().ok());
  w.reset();
  EXPECT_EQ(engine_->ExportDirtyBlocks("v"), uint64_t{kMiB / kBs});
  engine_->AbortExport("v", Status(StatusCode::kCancelled, "test"));
}

TEST_F(EngineFreshWriteTest, ConcurrentWritersOfOneTierFileEachGetTheirOwnSlots) {
  std::vector<std::shared_ptr<Volume>> vols;
  for (int i = 0; i < 4; ++i) vols.push_back(Create("v" + std::to_string(i)));
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i) {
    ts.emplace_back([&, i] {
      for (uint32_t m = 0; m < 8; ++m) {
        auto w = vols[i]->BeginWrite(m * uint64_t{kMiB}, kMiB, false, IncomingPayload{});
        ASSERT_NE(w, nullptr);
        Land(*w, Pattern(kMiB, 100 * i + m), 32 << 10);
        ASSERT_TRUE(w->Commit().ok());
      }
    });
  }
  for (auto& t : ts) t.join();
  ASSERT_TRUE(engine_->Flush().ok());
  for (int i = 0; i < 4; ++i) {
    for (uint32_t m = 0; m < 8; ++m) {
      EXPECT_TRUE(Read(*vols[i], m * uint64_t{kMiB}, kMiB) == Pattern(kMiB, 100 * i + m))
          << "v" << i << " MiB " << m;
    }
  }
  EXPECT_EQ(Used(), 32 * uint64_t{kMiB});
}

// Pages of `space` (in the tier mapping) that are in the page cache.
size_t ResidentPages(std::span<char> space) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const auto start = reinterpret_cast<uintptr_t>(space.data()) / page * page;
  const size_t len = reinterpret_cast<uintptr_t>(space.data()) + space.size() - start;
  std::vector<unsigned char> in((len + page - 1) / page);
  EXPECT_EQ(::mincore(reinterpret_cast<void*>(start), len, in.data()), 0);
  return static_cast<size_t>(
      std::count_if(in.begin(), in.end(), [](unsigned char c) { return c & 1; }));
}

// IncomingPayload::to_file (the NBD server splicing from the plain socket): the same
// slots, offered as ranges of the tier file, their pages left for the file's writes to
// allocate rather than populated through the mapping; bytes the caller already holds
// (Land) go into the file too. Nothing shows before Commit; after it, the LUN's.
TEST_F(EngineFreshWriteTest, PayloadsWrittenIntoTheTierFileSkipPopulatingItsPages) {
  auto v = Create("v");
  IncomingPayload to_file;
  to_file.to_file = true;
  const std::string b = Pattern(2 * kMiB, 7);
  auto w = v->BeginWrite(kMiB, 2 * kMiB, false, to_file);
  ASSERT_NE(w, nullptr);
  IncomingWrite::FileSpace at = w->NextFileSpace();
  ASSERT_GE(at.fd, 0);
  EXPECT_EQ(at.length, 2 * size_t{kMiB});  // a fresh tier: one run of slots
  EXPECT_EQ(ResidentPages(w->NextSpace()), 0u);
  ASSERT_TRUE(w->Land({b.data(), 5000}).ok());
  size_t done = 5000;
  while (done < b.size()) {
    at = w->NextFileSpace();
    ASSERT_GE(at.fd, 0);
    const size_t n = std::min({at.length, size_t{100000}, b.size() - done});
    ASSERT_EQ(::pwrite(at.fd, b.data() + done, n, static_cast<off_t>(at.offset)),
              static_cast<ssize_t>(n));
    w->Received(n);
    done += n;
  }
  EXPECT_EQ(w->NextFileSpace().fd, -1);  // every byte landed
  EXPECT_TRUE(Read(*v, kMiB, 2 * kMiB) == std::string(2 * kMiB, '\0'));
  ASSERT_TRUE(w->Commit().ok());
  w.reset();
  EXPECT_TRUE(Read(*v, kMiB, 2 * kMiB) == b);
  ASSERT_TRUE(engine_->Flush().ok());
  v.reset();
  Reopen();
  v = Vol("v");
  EXPECT_TRUE(Read(*v, kMiB, 2 * kMiB) == b);

  // Without to_file: no file ranges, and the slots' pages are populated at once.
  w = v->BeginWrite(4 * kMiB, kMiB, false, IncomingPayload{});
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->NextFileSpace().fd, -1);
  EXPECT_EQ(ResidentPages(w->NextSpace()), size_t{kMiB} / ::sysconf(_SC_PAGESIZE));
}

// A to_file write abandoned before Commit gives its slots back like any other.
TEST_F(EngineFreshWriteTest, AnAbandonedToFileWriteGivesItsSlotsBack) {
  auto v = Create("v");
  IncomingPayload to_file;
  to_file.to_file = true;
  {
    auto w = v->BeginWrite(0, kMiB, false, to_file);
    ASSERT_NE(w, nullptr);
    ASSERT_GE(w->NextFileSpace().fd, 0);
    EXPECT_EQ(Used(), uint64_t{kMiB});
  }
  EXPECT_EQ(Used(), 0u);
  EXPECT_TRUE(Read(*v, 0, kMiB) == std::string(kMiB, '\0'));
}

}  // namespace
}  // namespace strata::storage
