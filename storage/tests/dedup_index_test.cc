#include "engine/dedup_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <unordered_map>

namespace strata::storage::engine {
namespace {

TEST(DedupIndexTest, InsertFindErase) {
  DedupIndex idx;
  Fingerprint a{1, 2}, b{3, 4};
  EXPECT_FALSE(idx.Find(a));
  EXPECT_TRUE(idx.InsertIfAbsent(a, 10));
  EXPECT_FALSE(idx.InsertIfAbsent(a, 11));  // first writer wins
  EXPECT_EQ(*idx.Find(a), 10u);
  EXPECT_FALSE(idx.EraseIf(a, 11));  // only the slot it maps to
  EXPECT_TRUE(idx.InsertIfAbsent(b, 20));
  EXPECT_TRUE(idx.EraseIf(a, 10));
  EXPECT_FALSE(idx.Find(a));
  EXPECT_EQ(*idx.Find(b), 20u);
  EXPECT_EQ(idx.size(), 1u);
}

TEST(DedupIndexTest, MatchesAModelUnderChurnWithCollidingHomes) {
  // Low bits collide on purpose (lo shares its low 8 bits) to exercise probe runs
  // and backward-shift deletion across wrap-around.
  DedupIndex idx;
  std::unordered_map<uint64_t, uint64_t> model;  // key id -> slot
  std::mt19937_64 rng(42);
  auto fp_of = [](uint64_t id) { return Fingerprint{(id << 8) | 0x5a, id * 7919}; };
  for (int i = 0; i < 200000; ++i) {
    uint64_t id = rng() % 5000;
    if (rng() % 3 == 0) {
      auto it = model.find(id);
      bool erased = idx.EraseIf(fp_of(id), it == model.end() ? 1 : it->second);
      EXPECT_EQ(erased, it != model.end());
      if (it != model.end()) model.erase(it);
    } else {
      uint64_t slot = id + 1;
      bool added = idx.InsertIfAbsent(fp_of(id), slot);
      EXPECT_EQ(added, model.count(id) == 0);
      model.emplace(id, slot);
    }
  }
  ASSERT_EQ(idx.size(), model.size());
  for (uint64_t id = 0; id < 5000; ++id) {
    auto f = idx.Find(fp_of(id));
    auto it = model.find(id);
    ASSERT_EQ(f.has_value(), it != model.end()) << id;
    if (f) {
      EXPECT_EQ(*f, it->second);
    }
  }
}

TEST(DedupIndexTest, AtMost32BytesPerEntryAtEverySize) {
  DedupIndex idx;
  double worst = 0;
  for (uint64_t i = 1; i <= 1'000'000; ++i) {
    idx.InsertIfAbsent(FingerprintOf(&i, sizeof(i)), i);
    if (i >= 1000) worst = std::max(worst, idx.bytes_per_entry());
  }
  EXPECT_EQ(idx.size(), 1'000'000u);
  EXPECT_LE(worst, 32.0);
  for (uint64_t i = 1; i <= 1'000'000; i += 999) {
    ASSERT_EQ(idx.Find(FingerprintOf(&i, sizeof(i))), i);
  }
}

TEST(DedupIndexTest, SlotsBeyond32BitsAreNotIndexed) {
  DedupIndex idx;
  EXPECT_FALSE(idx.InsertIfAbsent({5, 5}, DedupIndex::kMaxSlot + 1));
  EXPECT_TRUE(idx.InsertIfAbsent({5, 5}, DedupIndex::kMaxSlot));
  EXPECT_EQ(*idx.Find({5, 5}), DedupIndex::kMaxSlot);
}

}  // namespace
}  // namespace strata::storage::engine
