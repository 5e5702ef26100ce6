// TierMapping: the shared mapping of a tier's data file (on the real file system:
// MemEnv offers none) and its pins, which keep freed slots from being reused while a
// reader outside the engine's lock may still be reading them.
#include "engine/tier_mapping.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "strata/common/env.h"
#include "strata/common/mem_env.h"
#include "temp_dir.h"

namespace strata::storage::engine {
namespace {

class TierMappingFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    dir_ = tmp_.path();
    auto f = Env::Default()->OpenFile(dir_ + "/blocks.dat", true);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    file_ = std::move(*f);
  }
  void TearDown() override { file_.reset(); }

  strata::testing::TempDir tmp_{"strata-tiermap"};
  std::string dir_;
  std::unique_ptr<File> file_;
};

TEST_F(TierMappingFileTest, CoherentWithPreadAndPwriteAndStableAsTheFileGrows) {
  auto m = TierMapping::Create(*file_, PathKind::kRegularFile, 64 << 20);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->reserved_bytes(), 64u << 20);
  char* const base = m->data();

  std::string a(8192, 'a');
  ASSERT_TRUE(file_->WriteAt(0, a).ok());
  auto r = m->Read(4096, 4096, 8192);
  ASSERT_EQ(r.size(), 4096u);
  EXPECT_EQ(std::string(r.data(), r.size()), std::string(4096, 'a'));

  // A store through the mapping is what pread sees.
  auto w = m->Write(0, 4096, 8192);
  ASSERT_EQ(w.size(), 4096u);
  std::memset(w.data(), 'b', w.size());
  std::string back(4096, 0);
  ASSERT_TRUE(file_->ReadAt(0, back).ok());
  EXPECT_EQ(back, std::string(4096, 'b'));

  // The file grows far past where it ended: the mapping stays where it is and shows
  // the new bytes.
  std::string c(4096, 'c');
  ASSERT_TRUE(file_->WriteAt(32 << 20, c).ok());
  EXPECT_EQ(m->data(), base);
  r = m->Read(32 << 20, 4096, (32 << 20) + 4096);
  ASSERT_EQ(r.size(), 4096u);
  EXPECT_EQ(std::string(r.data(), r.size()), c);
}

TEST_F(TierMappingFileTest, NothingPastTheFileEndOrTheReservation) {
  auto m = TierMapping::Create(*file_, PathKind::kRegularFile, 1 << 20);
  ASSERT_NE(m, nullptr);
  ASSERT_TRUE(file_->WriteAt(0, std::string(8192, 'x')).ok());
  EXPECT_TRUE(m->Read(4096, 8192, 8192).empty());  // crosses the file's end
  EXPECT_TRUE(m->Write(8192, 4096, 8192).empty());
  EXPECT_TRUE(m->Read(0, 0, 8192).empty());
  // Past the reservation even when the caller thinks the file is longer.
  EXPECT_TRUE(m->Read((1 << 20) - 4096, 8192, 4 << 20).empty());
  EXPECT_TRUE(m->Read(UINT64_MAX - 10, 20, UINT64_MAX).empty());
  EXPECT_EQ(m->Read(0, 8192, 8192).size(), 8192u);
}

TEST_F(TierMappingFileTest, NoneForABlockDeviceAnEmptyReservationOrAFileWithoutAView) {
  EXPECT_EQ(TierMapping::Create(*file_, PathKind::kBlockDevice, 1 << 20), nullptr);
  EXPECT_EQ(TierMapping::Create(*file_, PathKind::kRegularFile, 0), nullptr);
  MemEnv mem;
  ASSERT_TRUE(mem.CreateDirectories("/tier").ok());
  auto f = mem.OpenFile("/tier/blocks.dat", true);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(TierMapping::Create(**f, PathKind::kRegularFile, 1 << 20), nullptr);
}

// ---- pins and Retire (over plain memory) ----

TEST(TierMappingPinTest, WithoutReadersFreedSlotsComeBackAtOnce) {
  std::vector<char> mem(4096);
  TierMapping m(mem.data(), mem.size());
  std::vector<uint64_t> reusable;
  m.Retire({3, 4}, &reusable);
  EXPECT_EQ(reusable, (std::vector<uint64_t>{3, 4}));
  EXPECT_EQ(m.retained_slots(), 0u);
  // A pin taken and released before the retirement holds nothing back.
  const uint64_t e = m.epoch();
  ASSERT_TRUE(m.TryPin(e));
  m.Unpin(e);
  reusable.clear();
  m.Retire({5}, &reusable);
  EXPECT_EQ(reusable, (std::vector<uint64_t>{5}));
}

TEST(TierMappingPinTest, APinnedReaderHoldsRetiredSlotsBackAndLaterPinsOfItsEpochFail) {
  std::vector<char> mem(4096);
  TierMapping m(mem.data(), mem.size());
  const uint64_t e = m.epoch();
  ASSERT_TRUE(m.TryPin(e));
  std::vector<uint64_t> reusable;
  m.Retire({1, 2}, &reusable);
  EXPECT_TRUE(reusable.empty());
  EXPECT_EQ(m.retained_slots(), 2u);
  EXPECT_FALSE(m.TryPin(e));  // the map it read may point at a retired slot
  m.Retire({}, &reusable);    // still pinned
  EXPECT_TRUE(reusable.empty());
  m.Unpin(e);
  m.Retire({}, &reusable);
  std::sort(reusable.begin(), reusable.end());
  EXPECT_EQ(reusable, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(m.retained_slots(), 0u);
}

TEST(TierMappingPinTest, SlotsRetiredWhileOthersWaitWaitForTheirOwnReaders) {
  std::vector<char> mem(4096);
  TierMapping m(mem.data(), mem.size());
  const uint64_t e0 = m.epoch();
  ASSERT_TRUE(m.TryPin(e0));
  std::vector<uint64_t> reusable;
  m.Retire({1}, &reusable);  // waits for e0's reader
  const uint64_t e1 = m.epoch();
  ASSERT_NE(e1, e0);
  ASSERT_TRUE(m.TryPin(e1));  // a reader of the map after slot 1 was freed
  m.Retire({2}, &reusable);   // slot 2 may be in e1's reader's map: held
  EXPECT_TRUE(reusable.empty());
  EXPECT_EQ(m.retained_slots(), 2u);
  m.Unpin(e0);
  m.Retire({}, &reusable);  // slot 1 released; slot 2 now waits for e1's reader
  EXPECT_EQ(reusable, (std::vector<uint64_t>{1}));
  EXPECT_EQ(m.retained_slots(), 1u);
  EXPECT_FALSE(m.TryPin(e1));
  m.Unpin(e1);
  reusable.clear();
  m.Retire({}, &reusable);
  EXPECT_EQ(reusable, (std::vector<uint64_t>{2}));
}

// Readers take a slot's tag and the epoch under "the engine's lock", then read the
// tag again pinned, outside it; the writer frees slots and reuses (retags) only what
// Retire hands back. A pinned reader never sees its slot reused.
TEST(TierMappingPinTest, APinnedReaderNeverSeesItsSlotReused) {
  constexpr int kSlots = 16;
  std::vector<char> mem(4096);
  TierMapping m(mem.data(), mem.size());
  std::mutex lock;
  std::vector<bool> in_use(kSlots, true);  // guarded by lock
  std::atomic<uint64_t> tags[kSlots];
  for (auto& t : tags) t = 0;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> pinned_reads{0}, refused{0}, reused{0};
  std::atomic<int> broken{0};

  auto reader = [&](unsigned seed) {
    std::mt19937 rng(seed);
    while (!stop) {
      int slot;
      uint64_t tag, epoch;
      {
        std::lock_guard g(lock);
        slot = static_cast<int>(rng() % kSlots);
        if (!in_use[slot]) continue;
        tag = tags[slot].load();
        epoch = m.epoch();
      }
      if (!m.TryPin(epoch)) {
        ++refused;
        continue;
      }
      for (int i = 0; i < 50; ++i) {
        if (tags[slot].load() != tag) ++broken;
      }
      m.Unpin(epoch);
      ++pinned_reads;
    }
  };
  std::vector<std::thread> readers;
  for (unsigned i = 0; i < 3; ++i) readers.emplace_back(reader, i + 1);

  // Until both sides did plenty (the writer's rounds are short: it yields between
  // them so readers get the lock), with a deadline.
  std::mt19937 rng(99);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while ((reused < 2000 || pinned_reads < 2000) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
    std::lock_guard g(lock);
    std::vector<uint64_t> freed;
    for (int k = 0; k < 2; ++k) {
      int s = static_cast<int>(rng() % kSlots);
      if (in_use[s]) {
        in_use[s] = false;
        freed.push_back(static_cast<uint64_t>(s));
      }
    }
    std::vector<uint64_t> reusable;
    m.Retire(std::move(freed), &reusable);
    for (uint64_t s : reusable) {
      tags[s].fetch_add(1);  // another LUN's bytes now
      in_use[s] = true;
      ++reused;
    }
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(broken.load(), 0);
  EXPECT_GE(pinned_reads.load(), 2000u);
  EXPECT_GE(reused.load(), 2000u) << "retained " << m.retained_slots();
}

}  // namespace
}  // namespace strata::storage::engine
