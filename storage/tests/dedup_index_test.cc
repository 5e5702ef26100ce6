#include "engine/dedup_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <random>
#include <unordered_map>
#include <vector>

namespace strata::storage::engine {
namespace {

// Every slot the index offers for fp, in probe order.
std::vector<uint64_t> All(const DedupIndex& idx, const Fingerprint& fp) {
  std::vector<uint64_t> out;
  idx.Find(fp, [&](uint64_t slot) {
    out.push_back(slot);
    return false;
  });
  return out;
}

std::optional<uint64_t> First(const DedupIndex& idx, const Fingerprint& fp) {
  std::optional<uint64_t> out;
  idx.Find(fp, [&](uint64_t slot) {
    out = slot;
    return true;
  });
  return out;
}

TEST(DedupIndexTest, InsertFindErase) {
  DedupIndex idx;
  Fingerprint a{1, 2}, b{3, 4};
  EXPECT_FALSE(First(idx, a));
  EXPECT_TRUE(idx.Insert(a, 10));
  EXPECT_FALSE(idx.Insert(a, 10));  // the same entry again
  EXPECT_EQ(*First(idx, a), 10u);
  EXPECT_FALSE(idx.EraseIf(a, 11));  // only the slot it maps to
  EXPECT_TRUE(idx.Insert(b, 20));
  EXPECT_TRUE(idx.EraseIf(a, 10));
  EXPECT_FALSE(First(idx, a));
  EXPECT_EQ(*First(idx, b), 20u);
  EXPECT_EQ(idx.size(), 1u);
}

TEST(DedupIndexTest, ATagMapsToAtMostFourSlotsAllOffered) {
  // Different blocks may share a 32-bit tag: each is a candidate the engine compares.
  DedupIndex idx;
  Fingerprint a{0xabcdef0012345678ull, 1}, same_tag{0x1111111112345678ull, 2};
  EXPECT_TRUE(idx.Insert(a, 10));
  EXPECT_TRUE(idx.Insert(same_tag, 11));
  EXPECT_TRUE(idx.Insert(a, 12));
  EXPECT_TRUE(idx.Insert(a, 13));
  EXPECT_FALSE(idx.Insert(same_tag, 14));  // a fifth slot for one tag is refused
  auto all = All(idx, a);
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, (std::vector<uint64_t>{10, 11, 12, 13}));
  EXPECT_TRUE(idx.EraseIf(same_tag, 11));
  EXPECT_TRUE(idx.Insert(same_tag, 14));
  all = All(idx, same_tag);
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, (std::vector<uint64_t>{10, 12, 13, 14}));
}

TEST(DedupIndexTest, MatchesAModelUnderChurnWithCollidingHomes) {
  // Low bits collide on purpose (lo shares its low 8 bits) to exercise probe runs
  // and backward-shift deletion across wrap-around and growth.
  DedupIndex idx;
  std::unordered_map<uint64_t, uint64_t> model;  // key id -> slot
  std::mt19937_64 rng(42);
  auto fp_of = [](uint64_t id) { return Fingerprint{(id << 8) | 0x5a, id * 7919}; };
  for (int i = 0; i < 200000; ++i) {
    uint64_t id = rng() % 5000;
    if (rng() % 3 == 0) {
      auto it = model.find(id);
      // Every id's slot is id + 1: an absent id's slot is not indexed.
      bool erased = rng() % 2 ? idx.EraseIf(fp_of(id), id + 1) : idx.EraseSlot(id + 1);
      EXPECT_EQ(erased, it != model.end());
      if (it != model.end()) model.erase(it);
    } else {
      uint64_t slot = id + 1;
      bool added = idx.Insert(fp_of(id), slot);
      EXPECT_EQ(added, model.count(id) == 0);
      model.emplace(id, slot);
    }
  }
  ASSERT_EQ(idx.size(), model.size());
  for (uint64_t id = 0; id < 5000; ++id) {
    auto all = All(idx, fp_of(id));
    auto it = model.find(id);
    ASSERT_EQ(all.size(), it == model.end() ? 0u : 1u) << id;
    if (!all.empty()) {
      EXPECT_EQ(all[0], it->second);
    }
  }
}

// Near the growth threshold (85 % of the first 1024 buckets) for 200,000 inserts and
// erases: long probe runs, entries farther than a bucket's distance field holds (15),
// backward shifts across the table's end; the index matches a model throughout.
TEST(DedupIndexTest, MatchesAModelAtFullLoadWithLongProbeRuns) {
  DedupIndex idx;
  std::unordered_map<uint64_t, uint64_t> model;  // key id -> slot
  std::vector<uint64_t> present;
  std::mt19937_64 rng(16);
  auto fp_of = [](uint64_t id) { return FingerprintOf(&id, sizeof(id)); };
  uint64_t next = 1;
  const size_t full = 860;  // below 870: the table never grows
  for (int i = 0; i < 200000; ++i) {
    if (present.size() >= full || (!present.empty() && rng() % 2)) {
      size_t k = rng() % present.size();
      uint64_t id = present[k];
      present[k] = present.back();
      present.pop_back();
      ASSERT_TRUE(rng() % 2 ? idx.EraseIf(fp_of(id), model[id]) : idx.EraseSlot(model[id]));
      model.erase(id);
    } else {
      uint64_t id = next++;
      uint64_t slot = 1 + id % 3000;  // slots are reused, as the engine's are
      if (idx.EraseSlot(slot)) {      // not in use by another id: keep the model exact
        for (size_t k = 0; k < present.size(); ++k) {
          if (model[present[k]] == slot) {
            model.erase(present[k]);
            present[k] = present.back();
            present.pop_back();
            break;
          }
        }
      }
      ASSERT_TRUE(idx.Insert(fp_of(id), slot));
      model[id] = slot;
      present.push_back(id);
    }
    if (i % 20000 == 0 || i == 199999) {
      ASSERT_EQ(idx.size(), model.size());
      ASSERT_LE(idx.memory_bytes(), 1024u * 6 + 4096u * 5);  // never grew
      for (const auto& [id, slot] : model) {
        auto all = All(idx, fp_of(id));
        ASSERT_NE(std::find(all.begin(), all.end(), slot), all.end()) << id;
      }
    }
  }
}

TEST(DedupIndexTest, AtMost16BytesPerEntryAtEverySize) {
  DedupIndex idx;
  double worst = 0;
  for (uint64_t i = 1; i <= 1'000'000; ++i) {
    idx.Insert(FingerprintOf(&i, sizeof(i)), i);
    if (i >= 1000) worst = std::max(worst, idx.bytes_per_entry());
  }
  // Tags are 32 bits: a few of 10^6 random blocks share one, and each is kept.
  EXPECT_EQ(idx.size(), 1'000'000u);
  EXPECT_LE(worst, 16.0);
  for (uint64_t i = 1; i <= 1'000'000; i += 999) {
    auto all = All(idx, FingerprintOf(&i, sizeof(i)));
    EXPECT_NE(std::find(all.begin(), all.end(), i), all.end()) << i;
  }
}

TEST(DedupIndexTest, SlotsBeyond32BitsAreNotIndexed) {
  DedupIndex idx;
  EXPECT_FALSE(idx.Insert({5, 5}, DedupIndex::kMaxSlot + 1));
  EXPECT_FALSE(idx.Insert({5, 5}, 0));
  EXPECT_TRUE(idx.Insert({5, 5}, 1u << 20));  // per-slot arrays grow to the slot
  EXPECT_EQ(*First(idx, {5, 5}), 1u << 20);
}

TEST(DedupIndexTest, EraseSlotNeedsNoFingerprintAndASlotIsIndexedOnce) {
  DedupIndex idx;
  Fingerprint a{0x1234, 1}, b{0x5678, 2};
  EXPECT_TRUE(idx.Insert(a, 7));
  EXPECT_FALSE(idx.Insert(b, 7));   // one tag per slot
  EXPECT_FALSE(idx.EraseIf(b, 7));  // not under b's tag
  EXPECT_TRUE(idx.EraseSlot(7));
  EXPECT_FALSE(idx.EraseSlot(7));
  EXPECT_FALSE(idx.EraseSlot(99));  // never indexed, past the per-slot arrays
  EXPECT_FALSE(First(idx, a));
  EXPECT_TRUE(idx.Insert(b, 7));  // reused for other bytes
  EXPECT_EQ(*First(idx, b), 7u);
  EXPECT_EQ(idx.size(), 1u);
}

}  // namespace
}  // namespace strata::storage::engine
