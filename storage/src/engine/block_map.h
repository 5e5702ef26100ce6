#pragma once

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
// Not thread-safe: the engine's lock guards it.
class BlockMap {
 public:
  static constexpr uint64_t kLeafBits = 10;
  static constexpr uint64_t kLeafSize = 1ull << kLeafBits;

  explicit BlockMap(uint64_t blocks) { Resize(blocks); }

  uint64_t blocks() const { return blocks_; }
  void Resize(uint64_t blocks) {
    blocks_ = blocks;
    leaves_.resize((blocks + kLeafSize - 1) >> kLeafBits);
  }

  BlockRef Get(uint64_t lba) const {
    const auto& leaf = leaves_[lba >> kLeafBits];
    return leaf ? (*leaf)[lba & (kLeafSize - 1)] : kHole;
  }

  // Returns the previous value.
  BlockRef Set(uint64_t lba, BlockRef ref) {
    auto& leaf = leaves_[lba >> kLeafBits];
    if (!leaf) {
      if (ref == kHole) return kHole;
      leaf = std::make_unique<Leaf>();
      leaf->fill(kHole);
    }
    BlockRef old = (*leaf)[lba & (kLeafSize - 1)];
    (*leaf)[lba & (kLeafSize - 1)] = ref;
    return old;
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

 private:
  using Leaf = std::array<BlockRef, kLeafSize>;
  uint64_t blocks_ = 0;
  std::vector<std::unique_ptr<Leaf>> leaves_;
};

}  // namespace strata::storage::engine
