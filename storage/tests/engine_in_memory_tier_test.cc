// A tier whose data file lives in memory (tmpfs, File::InMemory): the engine allocates
// the pages of the never-used slots it sets aside for small writes ahead, a refill at a
// time, and stores those writes' blocks through the tier's mapping instead of a pwrite.
// Real files under /dev/shm (skipped where that is not tmpfs): MemEnv has no mapping.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/rewrite_log.h"
#include "engine/tier_mapping.h"
#include "engine_mapped_fixture.h"
#include "forwarding_env.h"
#include "strata/common/env.h"
#include "strata/common/mem_env.h"
#include "strata/storage/engine.h"
#include "temp_dir.h"

namespace strata::storage {
namespace {

using testing::kBs;
constexpr unsigned long kTmpfsMagic = 0x01021994;

bool OnTmpfs(const std::string& path) {
  struct statfs fs {};
  return ::statfs(path.c_str(), &fs) == 0 && static_cast<unsigned long>(fs.f_type) == kTmpfsMagic;
}

// Bytes of `path` the file system has allocated (st_blocks), or 0.
uint64_t AllocatedBytes(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_blocks) * 512 : 0;
}

std::string Block(uint64_t content) {
  std::string b(kBs, '\0');
  for (size_t i = 0; i < kBs; i += 8) {
    uint64_t v = (content + 1) * 0x9e3779b97f4a7c15ull + i;
    std::memcpy(b.data() + i, &v, 8);
  }
  return b;
}

TEST(TierMappingInMemoryTest, OnlyAFileOnTmpfsIsInMemory) {
  if (!OnTmpfs("/dev/shm")) GTEST_SKIP() << "/dev/shm is not tmpfs here";
  {
    strata::testing::TempDir shm("strata-inmem", "/dev/shm");
    ASSERT_FALSE(shm.path().empty());
    auto f = Env::Default()->OpenFile(shm.path() + "/blocks.dat", true);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    EXPECT_TRUE((*f)->InMemory());
    auto m = engine::TierMapping::Create(**f, PathKind::kRegularFile, 1 << 20);
    ASSERT_NE(m, nullptr);
    EXPECT_TRUE(m->in_memory());
  }
  // A file in memory that the OS does not hold (MemEnv): no mapping, nothing claimed.
  MemEnv mem;
  ASSERT_TRUE(mem.CreateDirectories("/d").ok());
  auto f = mem.OpenFile("/d/blocks.dat", true);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_FALSE((*f)->InMemory());
  // The test temp directory: in memory exactly when it is on tmpfs.
  strata::testing::TempDir tmp("strata-inmem");
  auto g = Env::Default()->OpenFile(tmp.path() + "/blocks.dat", true);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ((*g)->InMemory(), OnTmpfs(tmp.path()));
}

// The mapped-path fixture with its tier on /dev/shm (tmpfs); its blocks addressed by LBA.
class EngineInMemoryTierTest : public testing::EngineMappedTest {
 protected:
  EngineInMemoryTierTest() : EngineMappedTest("strata-inmem", 256ull << 20, 16 << 20, "/dev/shm") {}
  void SetUp() override {
    if (!OnTmpfs("/dev/shm")) GTEST_SKIP() << "/dev/shm is not tmpfs here";
    EngineMappedTest::SetUp();
  }
  // By LBA, and a Status rather than an assertion: writer threads count failures.
  static Status WriteBlocks(Volume& v, uint64_t lba, const std::string& data) {
    return v.Write(lba * kBs, std::span<const char>(data.data(), data.size()), false);
  }
  static std::string ReadBlocks(Volume& v, uint64_t lba, size_t blocks = 1) {
    return Read(v, lba * kBs, blocks * kBs);
  }
  std::string BlocksFile() const { return dir_ + "/blocks.dat"; }
  // Every block of `want` reads back from LUN `name` (v), then again after a flush and a
  // restart (v reopened). Call it under ASSERT_NO_FATAL_FAILURE.
  void ExpectBlocksAcrossARestart(std::shared_ptr<Volume>& v, const std::string& name,
                                  const std::map<uint64_t, std::string>& want) {
    for (const auto& [lba, b] : want) ASSERT_TRUE(ReadBlocks(*v, lba) == b) << lba;
    ASSERT_TRUE(v->Flush().ok());
    v.reset();
    Reopen();
    v = Vol(name);
    ASSERT_NE(v, nullptr);
    for (const auto& [lba, b] : want) ASSERT_TRUE(ReadBlocks(*v, lba) == b) << lba;
  }
};

TEST_F(EngineInMemoryTierTest, SmallWritesLandInPagesAllocatedAheadAndReadBackAfterRestarts) {
  auto d = Create("d", true);
  auto p = Create("p", false);
  // New data only, one block a write: the slots come from the reserve, whose fresh
  // pages are allocated a refill ahead of the writes that take them.
  for (uint64_t lba = 0; lba < 200; ++lba) ASSERT_TRUE(WriteBlocks(*d, lba, Block(lba)).ok());
  const uint64_t written = 200 * kBs;
  EXPECT_EQ(Used(), written);
  // Pages past the written ones are allocated already (pwrite alone would allocate
  // exactly the slots it wrote, and the reserve's slots would be holes).
  EXPECT_GT(AllocatedBytes(BlocksFile()), written + 8 * kBs);

  // Then a mix over both LUNs, against a model: new blocks, duplicates of earlier
  // ones (shared on the dedup LUN), zeros (holes), overwrites, runs of a few blocks,
  // and flushes in between.
  std::map<uint64_t, std::string> want_d, want_p;
  for (uint64_t lba = 0; lba < 200; ++lba) want_d[lba] = Block(lba);
  std::mt19937_64 rng(7);
  uint64_t next = 1000;
  for (int i = 0; i < 3000; ++i) {
    const bool dedup = rng() % 2;
    Volume& v = dedup ? *d : *p;
    auto& want = dedup ? want_d : want_p;
    const uint64_t lba = rng() % 2048;
    const size_t n = rng() % 4 == 0 ? 1 + rng() % 8 : 1;
    std::string data;
    for (size_t k = 0; k < n; ++k) {
      const uint64_t kind = rng() % 10;
      std::string b = kind == 0  ? std::string(kBs, '\0')
                      : kind < 4 ? Block(rng() % 64)  // a duplicate, most likely
                                 : Block(next++);
      want[lba + k] = b;
      data += b;
    }
    ASSERT_TRUE(WriteBlocks(v, lba, data).ok()) << i;
    if (i % 500 == 499) {
      ASSERT_TRUE(v.Flush().ok());
    }
  }
  auto check = [&](Volume& v, const std::map<uint64_t, std::string>& want) {
    for (const auto& [lba, b] : want) ASSERT_TRUE(ReadBlocks(v, lba) == b) << lba;
  };
  check(*d, want_d);
  check(*p, want_p);
  const uint64_t used = Used();
  ASSERT_TRUE(d->Flush().ok());
  d.reset();
  p.reset();
  Reopen();
  d = Vol("d");
  p = Vol("p");
  check(*d, want_d);
  check(*p, want_p);
  EXPECT_EQ(Used(), used);
  // Duplicates still find the blocks written through the mapping (index rebuilt from
  // the stored bytes), and writes go on into fresh slots after the restart.
  const uint64_t before = Used();
  ASSERT_TRUE(WriteBlocks(*d, 4000, Block(3)).ok());
  EXPECT_EQ(Used(), before);
  ASSERT_TRUE(WriteBlocks(*d, 4001, Block(999999)).ok());
  EXPECT_EQ(Used(), before + kBs);
  EXPECT_TRUE(ReadBlocks(*d, 4000) == Block(3));
  EXPECT_TRUE(ReadBlocks(*d, 4001) == Block(999999));
}

TEST_F(EngineInMemoryTierTest, ConcurrentSmallWritersAndFlushesReadBackAndCount) {
  // Writers take reserved slots while another writer's refill is still allocating
  // their pages (those are pwritten), with flushes recycling freed slots meanwhile.
  auto d = Create("d", true);
  constexpr int kWriters = 4;
  constexpr uint64_t kPerWriter = 512;  // blocks a writer owns: [w * kPerWriter, ...)
  std::vector<std::map<uint64_t, std::string>> want(kWriters);
  std::atomic<bool> failed{false};
  std::atomic<int> writing{kWriters};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937_64 rng(w + 1);
      for (int i = 0; i < 1500 && !failed; ++i) {
        const uint64_t lba = w * kPerWriter + rng() % kPerWriter;
        // Shared patterns across writers, and new data of this writer's own.
        std::string b = rng() % 3 == 0 ? Block(rng() % 32) : Block(1'000'000 * (w + 1) + i);
        if (!WriteBlocks(*d, lba, b).ok()) failed = true;
        want[w][lba] = b;
      }
      --writing;
    });
  }
  threads.emplace_back([&] {
    while (writing > 0 && !failed) {
      if (!d->Flush().ok()) failed = true;
      std::this_thread::yield();
    }
  });
  for (auto& t : threads) t.join();
  ASSERT_FALSE(failed);
  for (int w = 0; w < kWriters; ++w) {
    for (const auto& [lba, b] : want[w]) ASSERT_TRUE(ReadBlocks(*d, lba) == b) << lba;
  }
  ASSERT_TRUE(d->Flush().ok());
  const uint64_t used = Used();
  d.reset();
  Reopen();
  d = Vol("d");
  EXPECT_EQ(Used(), used);
  for (int w = 0; w < kWriters; ++w) {
    for (const auto& [lba, b] : want[w]) ASSERT_TRUE(ReadBlocks(*d, lba) == b) << lba;
  }
}

// Bytes of the engine's journals in the state directory (journal.N).
uint64_t JournalBytes(const std::string& dir) {
  uint64_t total = 0;
  for (int gen = 0; gen < 64; ++gen) {
    struct stat st {};
    if (::stat((dir + "/journal." + std::to_string(gen)).c_str(), &st) == 0) {
      total += static_cast<uint64_t>(st.st_size);
    }
  }
  return total;
}

// A dedup LUN's overwrite of blocks it alone holds, with new bytes, lands in their own
// slots: no slot is taken or freed and no mapping changes, so nothing is journaled.
// The index follows: the new bytes are found by a later duplicate, the old ones are
// not, also after a restart (the index is rebuilt from the slots' bytes).
TEST_F(EngineInMemoryTierTest, DedupOverwritesOfUnsharedBlocksStayInTheirSlots) {
  auto d = Create("d", true);
  constexpr uint64_t kBlocks = 64;
  std::map<uint64_t, std::string> want;
  for (uint64_t lba = 0; lba < kBlocks; ++lba) want[lba] = Block(lba);
  for (const auto& [lba, b] : want) ASSERT_TRUE(WriteBlocks(*d, lba, b).ok());
  ASSERT_TRUE(d->Flush().ok());
  const uint64_t journal = JournalBytes(dir_);
  ASSERT_GT(journal, 0u);
  // New bytes, one block and runs of up to four at a time, three rounds.
  uint64_t next = 1000;
  for (int round = 0; round < 3; ++round) {
    for (uint64_t lba = 0; lba < kBlocks;) {
      const uint64_t n = 1 + lba % 4;
      std::string data;
      for (uint64_t k = 0; k < n && lba + k < kBlocks; ++k) {
        want[lba + k] = Block(next++);
        data += want[lba + k];
      }
      ASSERT_TRUE(WriteBlocks(*d, lba, data).ok()) << lba;
      lba += data.size() / kBs;
    }
    ASSERT_TRUE(d->Flush().ok());
  }
  // A write of part of a block (read, modify, write) too.
  const std::string part(512, 'p');
  ASSERT_TRUE(d->Write(3 * kBs + 512, std::span<const char>(part.data(), part.size()), false).ok());
  want[3].replace(512, 512, part);
  ASSERT_TRUE(d->Flush().ok());
  EXPECT_EQ(JournalBytes(dir_), journal);  // the old path journals every block
  EXPECT_EQ(Used(), kBlocks * kBs);
  for (const auto& [lba, b] : want) ASSERT_TRUE(ReadBlocks(*d, lba) == b) << lba;
  // A copy of a rewritten block's new bytes is shared; a copy of bytes that were
  // overwritten is new data.
  ASSERT_TRUE(WriteBlocks(*d, 100, want[5]).ok());
  EXPECT_EQ(Used(), kBlocks * kBs);
  ASSERT_TRUE(WriteBlocks(*d, 101, Block(5)).ok());
  EXPECT_EQ(Used(), (kBlocks + 1) * kBs);
  want[100] = want[5];
  want[101] = Block(5);
  // Block 5 is shared now: its overwrite takes a new slot and leaves block 100 as it was.
  want[5] = Block(next++);
  ASSERT_TRUE(WriteBlocks(*d, 5, want[5]).ok());
  EXPECT_EQ(Used(), (kBlocks + 2) * kBs);
  ASSERT_NO_FATAL_FAILURE(ExpectBlocksAcrossARestart(d, "d", want));
  const uint64_t used = Used();
  ASSERT_TRUE(WriteBlocks(*d, 200, want[7]).ok());  // found through the rebuilt index
  EXPECT_EQ(Used(), used);
}

// A snapshot shares the LUN's leaves: an overwrite after it takes new slots, and the
// snapshot keeps the bytes it was taken with.
TEST_F(EngineInMemoryTierTest, DedupOverwritesAfterASnapshotLeaveTheSnapshotWhole) {
  auto d = Create("d", true);
  for (uint64_t lba = 0; lba < 16; ++lba) ASSERT_TRUE(WriteBlocks(*d, lba, Block(lba)).ok());
  ASSERT_TRUE(engine_->CreateSnapshot("d", "s", {}).ok());
  for (uint64_t lba = 0; lba < 16; ++lba) {
    ASSERT_TRUE(WriteBlocks(*d, lba, Block(500 + lba)).ok());
  }
  LunSpec spec;
  spec.name = "r";
  spec.size_bytes = lun_size_;
  ASSERT_TRUE(engine_->RestoreSnapshot("s", spec).ok());
  auto r = Vol("r");
  for (uint64_t lba = 0; lba < 16; ++lba) {
    EXPECT_TRUE(ReadBlocks(*d, lba) == Block(500 + lba)) << lba;
    EXPECT_TRUE(ReadBlocks(*r, lba) == Block(lba)) << lba;
  }
}

// A writer of a copy compares its candidate under the shared lock and maps it in a
// later section. When the candidate's only holder is rewritten in place in between, the
// copy must not share the rewritten slot: it is compared again (TierStore::rewrites).
TEST_F(EngineInMemoryTierTest, ACopyWhoseCandidateWasRewrittenInPlaceMeanwhileKeepsItsBytes) {
  std::shared_ptr<Volume> d;
  bool once = true;
  options_.dedup_searched_for_test = [&](uint64_t lba) {
    if (lba != 200 || !once) return;  // another stripe than block 1's
    once = false;
    // Block 1's only holder gets new bytes, in place, from another writer.
    std::thread([&] { ASSERT_TRUE(WriteBlocks(*d, 1, Block(77)).ok()); }).join();
  };
  Reopen();
  d = Create("d", true);
  ASSERT_TRUE(WriteBlocks(*d, 1, Block(5)).ok());
  const uint64_t used = Used();
  ASSERT_TRUE(WriteBlocks(*d, 200, Block(5)).ok());  // a copy of block 1's bytes
  EXPECT_FALSE(once);
  EXPECT_TRUE(ReadBlocks(*d, 1) == Block(77));
  EXPECT_TRUE(ReadBlocks(*d, 200) == Block(5));
  EXPECT_EQ(Used(), used + kBs);  // its own slot: the bytes it matched are gone
}

// What a process killed in the middle of RewriteLog::Rewrite leaves in the log (its
// layout, rewrite_log.h): the count, the slots, the new blocks.
void WritePendingRewrite(const std::string& path, const std::vector<uint64_t>& slots,
                         const std::string& blocks, size_t lane = 0, size_t lane_blocks = 4) {
  auto f = Env::Default()->OpenFile(path, true);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  std::vector<uint64_t> header{slots.size()};
  header.insert(header.end(), slots.begin(), slots.end());
  ASSERT_TRUE(
      (*f)->WriteAt(lane * 64, std::span<const char>(reinterpret_cast<const char*>(header.data()),
                                                     header.size() * sizeof(uint64_t)))
          .ok());
  ASSERT_TRUE((*f)->WriteAt((1 + lane * lane_blocks) * kBs,
                            std::span<const char>(blocks.data(), blocks.size()))
                  .ok());
}

TEST(RewriteLogTest, RecoverCompletesAPendingRewriteOnceAndDropsOneThatNamesNoSlot) {
  // RewriteLog::Open refuses a file whose pages are not in memory (its records are only
  // sound where nothing but the process can die), so the test needs a tmpfs.
  if (!OnTmpfs("/dev/shm")) GTEST_SKIP() << "/dev/shm is not tmpfs here";
  strata::testing::TempDir tmp("strata-rwlog", "/dev/shm");
  const std::string path = tmp.path() + "/rewrite.log";
  std::string tier;
  for (uint64_t b = 0; b < 8; ++b) tier += Block(b);
  const std::string before = tier;
  {
    auto log = engine::RewriteLog::Open(Env::Default(), path, kBs, 4, 2);
    ASSERT_TRUE(log.ok() && *log != nullptr);
    EXPECT_EQ((*log)->Recover(tier.data(), tier.size()), 0u);  // a new log: nothing
    // Two lanes: a third writer finds none free until one is given back.
    const int a = (*log)->Acquire();
    const int b = (*log)->Acquire();
    EXPECT_NE(a, b);
    EXPECT_GE(a, 0);
    EXPECT_GE(b, 0);
    EXPECT_EQ((*log)->Acquire(), -1);
    (*log)->Release(b);
    // A finished rewrite leaves nothing to complete.
    (*log)->Rewrite(a, tier.data(), std::vector<uint64_t>{2}, Block(20).data());
    (*log)->Release(a);
    EXPECT_TRUE(tier.substr(2 * kBs, kBs) == Block(20));
    EXPECT_EQ((*log)->Recover(tier.data(), tier.size()), 0u);
  }
  // Killed after the log said which slots, before every block reached its slot.
  tier = before;
  WritePendingRewrite(path, {3, 5}, Block(30) + Block(50), 1);  // in the second lane
  {
    auto log = engine::RewriteLog::Open(Env::Default(), path, kBs, 4, 2);
    ASSERT_TRUE(log.ok() && *log != nullptr);
    EXPECT_EQ((*log)->Recover(tier.data(), tier.size()), 2u);
    EXPECT_EQ((*log)->Recover(tier.data(), tier.size()), 0u);  // done: cleared
  }
  EXPECT_TRUE(tier.substr(3 * kBs, kBs) == Block(30));
  EXPECT_TRUE(tier.substr(5 * kBs, kBs) == Block(50));
  EXPECT_TRUE(tier.substr(0, 3 * kBs) == before.substr(0, 3 * kBs));
  // A record naming a slot past the tier's end (or slot 0) is not applied at all.
  const std::string now = tier;
  WritePendingRewrite(path, {4, 8}, Block(40) + Block(80));
  auto log = engine::RewriteLog::Open(Env::Default(), path, kBs, 4, 2);
  ASSERT_TRUE(log.ok() && *log != nullptr);
  EXPECT_EQ((*log)->Recover(tier.data(), tier.size()), 0u);
  EXPECT_TRUE(tier == now);
}

// The engine completes a rewrite a killed process left half done when it starts, before
// it reads the slots: the block reads its new bytes, and the index has them.
TEST_F(EngineInMemoryTierTest, AStartCompletesARewriteInPlaceThatAKilledProcessLeftHalfDone) {
  auto d = Create("d", true);
  ASSERT_TRUE(WriteBlocks(*d, 0, Block(5)).ok());
  ASSERT_TRUE(WriteBlocks(*d, 1, Block(6)).ok());
  ASSERT_TRUE(d->Flush().ok());
  d.reset();
  engine_.reset();
  // Block 0's slot: where its bytes lie in the data file.
  auto data = Env::Default()->ReadFile(BlocksFile());
  ASSERT_TRUE(data.ok());
  const size_t at = data->find(Block(5));
  ASSERT_NE(at, std::string::npos);
  ASSERT_EQ(at % kBs, 0u);
  // The new bytes reached only half of the slot before the process died.
  const std::string half = Block(9).substr(0, kBs / 2) + Block(5).substr(kBs / 2);
  auto f = Env::Default()->OpenFile(BlocksFile(), false);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->WriteAt(at, std::span<const char>(half.data(), half.size())).ok());
  WritePendingRewrite(dir_ + "/rewrite.log", {at / kBs}, Block(9), 5);
  Reopen();
  d = Vol("d");
  EXPECT_TRUE(ReadBlocks(*d, 0) == Block(9));
  EXPECT_TRUE(ReadBlocks(*d, 1) == Block(6));
  const uint64_t used = Used();
  ASSERT_TRUE(WriteBlocks(*d, 2, Block(9)).ok());  // shared: the index has the new bytes
  EXPECT_EQ(Used(), used);
}

// Env::Default, counting the writes (WriteAt, WriteAtV) into files named blocks.dat
// (the tiers' data files); everything else, the mapping included, passes through.
class DataWriteCountingEnv final : public ForwardingEnv {
 public:
  DataWriteCountingEnv() : ForwardingEnv(Env::Default()) {}
  uint64_t data_writes() const { return data_writes_.load(); }

 protected:
  std::unique_ptr<File> Wrap(const std::string& path, std::unique_ptr<File> f) override {
    const bool data = path.size() >= 10 && path.compare(path.size() - 10, 10, "blocks.dat") == 0;
    if (!data) return f;
    return std::make_unique<CountingFile>(&data_writes_, std::move(f));
  }

 private:
  class CountingFile final : public ForwardingFile {
   public:
    CountingFile(std::atomic<uint64_t>* writes, std::unique_ptr<File> inner)
        : ForwardingFile(std::move(inner)), writes_(writes) {}
    Status WriteAt(uint64_t offset, std::span<const char> data) override {
      ++*writes_;
      return ForwardingFile::WriteAt(offset, data);
    }
    Status WriteAtV(uint64_t offset, std::span<const std::span<const char>> pieces) override {
      ++*writes_;
      return ForwardingFile::WriteAtV(offset, pieces);
    }

   private:
    std::atomic<uint64_t>* const writes_;
  };

  std::atomic<uint64_t> data_writes_{0};
};

class EngineInMemoryRecycledSlotsTest : public EngineInMemoryTierTest {
 protected:
  EngineInMemoryRecycledSlotsTest() { env_ = &counting_; }
  DataWriteCountingEnv counting_;
};

// A plain LUN's overwrite of a few blocks in place goes through the tier's mapping and
// redo log: no pwrite into the data file; the bytes read back, also after a restart.
TEST_F(EngineInMemoryRecycledSlotsTest, PlainOverwritesOfAFewBlocksStoreThroughTheMapping) {
  auto p = Create("p", false);
  constexpr uint64_t kBlocks = 64;
  std::map<uint64_t, std::string> want;
  std::string all;
  for (uint64_t lba = 0; lba < kBlocks; ++lba) all += want[lba] = Block(lba);
  ASSERT_TRUE(WriteBlocks(*p, 0, all).ok());
  const uint64_t before = counting_.data_writes();
  uint64_t next = 100;
  for (uint64_t lba = 0; lba < kBlocks;) {
    const uint64_t n = std::min<uint64_t>(1 + lba % 4, kBlocks - lba);
    std::string data;
    for (uint64_t k = 0; k < n; ++k) data += want[lba + k] = Block(next++);
    ASSERT_TRUE(WriteBlocks(*p, lba, data).ok()) << lba;
    lba += n;
  }
  EXPECT_EQ(counting_.data_writes() - before, 0u);  // a pwrite a write before
  ASSERT_NO_FATAL_FAILURE(ExpectBlocksAcrossARestart(p, "p", want));
}

TEST_F(EngineInMemoryRecycledSlotsTest, RandomOverwritesStoreIntoRecycledSlotsThroughTheMapping) {
  auto d = Create("d", true);
  constexpr uint64_t kBlocks = 512;
  std::map<uint64_t, std::string> want;
  uint64_t next = 0;
  // New data over all the blocks, `run` blocks a write: no dedup hit.
  auto write_all = [&](uint64_t run) {
    for (uint64_t lba = 0; lba < kBlocks; lba += run) {
      std::string data;
      for (uint64_t k = 0; k < run; ++k) {
        want[lba + k] = Block(next++);
        data += want[lba + k];
      }
      ASSERT_TRUE(WriteBlocks(*d, lba, data).ok()) << lba;
    }
  };
  // First in large writes: their refill sets aside kReserveBatchLarge fresh slots
  // whose pages are not allocated ahead (only small writes' refills do that), and
  // their own slots are pwritten. Then rounds of small writes over the same blocks,
  // a flush after each: they use up those fresh slots (pwritten too) and then take
  // the slots earlier rounds freed, which the flushes made reusable.
  // The small writes are of kSmall blocks: one or a few blocks would be rewritten in
  // their own slots (RewriteDedupInPlace), which takes no slot at all.
  constexpr uint64_t kSmall = 8;
  write_all(64);
  ASSERT_TRUE(d->Flush().ok());
  for (int round = 0; round < 6; ++round) {
    write_all(kSmall);
    ASSERT_TRUE(d->Flush().ok());
  }
  // Now the refills take freed slots (freed ones before fresh ones), each of which
  // held a stored block, so its page is there: every block is stored through the
  // mapping, none with a pwrite (which each one took before).
  const uint64_t before = counting_.data_writes();
  write_all(kSmall);
  EXPECT_EQ(counting_.data_writes() - before, 0u);
  EXPECT_EQ(Used(), kBlocks * kBs);
  // Durable as a pwrite's bytes are: after a flush and a restart they read back.
  ASSERT_NO_FATAL_FAILURE(ExpectBlocksAcrossARestart(d, "d", want));
  EXPECT_EQ(Used(), kBlocks * kBs);
}

}  // namespace
}  // namespace strata::storage
