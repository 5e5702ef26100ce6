#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <vector>

namespace strata::storage::engine {

// Where a logical block lives: 0 is a hole (reads as zeros); otherwise the tier
// index plus one in the top 8 bits and the slot in that tier's data file below.
using BlockRef = uint64_t;
inline constexpr BlockRef kHole = 0;
inline BlockRef MakeRef(uint32_t tier, uint64_t slot) {
  return (static_cast<uint64_t>(tier + 1) << 56) | slot;
}
inline uint32_t RefTier(BlockRef r) { return static_cast<uint32_t>(r >> 56) - 1; }
inline uint64_t RefSlot(BlockRef r) { return r & ((1ull << 56) - 1); }

// A thin LUN's logical-block -> BlockRef map: two levels, leaves of 1024 entries
// allocated on first write, so a large mostly-empty LUN costs little.
//
// Leaves can be shared between maps (ShareFrom: a snapshot or a restore costs one
// pointer per leaf, whatever the amount of data). A shared leaf is copied on the
// first Set through any of its maps (copy-on-write). The engine's block reference
// counts count entries of distinct leaf objects, so copying a shared leaf adds one
// reference to each block it holds (Set's `on_copy`), and dropping a map releases
// only the blocks of the leaves it alone held (Release).
//
// Not thread-safe: the engine's lock guards it (use counts of shared leaves are only
// changed under that lock held exclusively).
class BlockMap {
 public:
  static constexpr uint64_t kLeafBits = 10;
  static constexpr uint64_t kLeafSize = 1ull << kLeafBits;
  using Leaf = std::array<BlockRef, kLeafSize>;

  explicit BlockMap(uint64_t blocks) { Resize(blocks); }
  // Copying would share leaves behind the reference counts' back: ShareFrom does it.
  BlockMap(const BlockMap&) = delete;
  BlockMap& operator=(const BlockMap&) = delete;
  BlockMap(BlockMap&&) = default;
  BlockMap& operator=(BlockMap&&) = default;

  uint64_t blocks() const { return blocks_; }
  void Resize(uint64_t blocks) {
    blocks_ = blocks;
    leaves_.resize((blocks + kLeafSize - 1) >> kLeafBits);
  }

  BlockRef Get(uint64_t lba) const {
    const auto& leaf = leaves_[lba >> kLeafBits];
    return leaf ? (*leaf)[lba & (kLeafSize - 1)] : kHole;
  }

  // True when `lba`'s leaf exists and no other map shares it: a block mapped there is
  // referenced by this map alone (as far as leaves go; the block's own count may still
  // be shared by dedup).
  bool OwnsLeaf(uint64_t lba) const {
    const auto& leaf = leaves_[lba >> kLeafBits];
    return leaf && leaf.use_count() == 1;
  }

  // Returns the previous value. Copies the leaf first when it is shared, calling
  // on_copy(ref) for each block of the copy.
  template <typename OnCopy>
  BlockRef Set(uint64_t lba, BlockRef ref, OnCopy&& on_copy) {
    auto& leaf = leaves_[lba >> kLeafBits];
    if (!leaf) {
      if (ref == kHole) return kHole;
      leaf = std::make_shared<Leaf>();
      leaf->fill(kHole);
    }
    BlockRef old = (*leaf)[lba & (kLeafSize - 1)];
    if (old == ref) return old;
    if (leaf.use_count() > 1) {
      leaf = std::make_shared<Leaf>(*leaf);
      for (BlockRef r : *leaf) {
        if (r != kHole) on_copy(r);
      }
    }
    (*leaf)[lba & (kLeafSize - 1)] = ref;
    return old;
  }
  // Without reference counting (journal replay: counts are derived afterwards).
  BlockRef Set(uint64_t lba, BlockRef ref) {
    return Set(lba, ref, [](BlockRef) {});
  }

  // Makes this map's first leaves the leaves of `other` (shared, not copied): this
  // map then reads as `other` up to other.blocks(), and as holes beyond.
  // REQUIRES: this map holds no block (new, or Released).
  void ShareFrom(const BlockMap& other) {
    const size_t n = std::min(leaves_.size(), other.leaves_.size());
    for (size_t i = 0; i < n; ++i) leaves_[i] = other.leaves_[i];
  }

  // Drops every leaf (the size stays), calling on_drop(ref) for each block of the
  // leaves no other map shares.
  template <typename OnDrop>
  void Release(OnDrop&& on_drop) {
    for (auto& leaf : leaves_) {
      if (leaf && leaf.use_count() == 1) {
        for (BlockRef r : *leaf) {
          if (r != kHole) on_drop(r);
        }
      }
      leaf.reset();
    }
  }

  // Calls fn(lba, ref) for every mapped block in order.
  template <typename Fn>
  void ForEachMapped(Fn&& fn) const {
    for (uint64_t l = 0; l < leaves_.size(); ++l) {
      if (!leaves_[l]) continue;
      for (uint64_t i = 0; i < kLeafSize; ++i) {
        BlockRef r = (*leaves_[l])[i];
        if (r != kHole) fn((l << kLeafBits) | i, r);
      }
    }
  }

  // Calls fn(leaf, first_lba, sharers) for every leaf; sharers is the number of maps
  // holding this very leaf (1 when it is this map's own).
  template <typename Fn>
  void ForEachLeaf(Fn&& fn) const {
    for (uint64_t l = 0; l < leaves_.size(); ++l) {
      if (leaves_[l]) fn(*leaves_[l], l << kLeafBits, leaves_[l].use_count());
    }
  }

 private:
  uint64_t blocks_ = 0;
  std::vector<std::shared_ptr<Leaf>> leaves_;
};

}  // namespace strata::storage::engine
