#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace strata::storage::engine {

// 64 x 64 -> 128-bit products for scaling a hash to a table size (a GCC/Clang type).
__extension__ typedef unsigned __int128 DedupU128;

struct Fingerprint {
  uint64_t lo = 0;
  uint64_t hi = 0;
  friend bool operator==(const Fingerprint&, const Fingerprint&) = default;
};

// XXH3-128 of a block. Not collision-proof against an adversary: a match is only
// a candidate and the engine compares the bytes before sharing a block.
Fingerprint FingerprintOf(const void* data, size_t len);

// Fingerprint -> slots of one tier, as an open-addressing hash table with linear
// probing and backward-shift deletion. A bucket is 8 bytes: a 32-bit tag (bits of
// the fingerprint) and a 32-bit slot; a bucket's home is derived from its tag
// alone, so the table can be resized without the blocks. The table grows by half
// at 85 % load (not doubling: a power-of-two table would sit at 42 % just after
// growing), so an indexed block costs 9.4-14.2 bytes (VDO's dense index needs
// about 4; we keep no on-disk index and no reverse map).
// A tag is only a candidate: every match is confirmed by comparing bytes. Different
// blocks may share a tag (one block in 2^32 per indexed block), so a tag may map
// to up to kMaxSameTag slots; a block whose tag already has that many is not
// indexed (bounds the work a crafted collision can cause). Slots from 2^32 on
// (16 TiB of 4 KiB blocks in one tier) are not indexed.
// Not thread-safe: the engine's lock guards it.
class DedupIndex {
 public:
  DedupIndex();

  static constexpr uint64_t kMaxSlot = 0xffffffffu;
  static constexpr int kMaxSameTag = 4;

  // Calls visit(slot) for each slot whose tag matches fp's, in probe order, until
  // visit returns true (found). Returns whether it did.
  template <typename Visit>
  bool Find(const Fingerprint& fp, Visit&& visit) const {
    const uint32_t tag = TagOf(fp);
    for (size_t i = Home(tag);; i = Next(i)) {
      const uint64_t b = buckets_[i];
      if (b == 0) return false;
      if (static_cast<uint32_t>(b >> 32) == tag && visit(static_cast<uint64_t>(b & kMaxSlot))) {
        return true;
      }
    }
  }
  // Adds fp -> slot unless slot is 0 or > kMaxSlot, fp's tag already maps to slot,
  // or kMaxSameTag slots share fp's tag. Returns whether it was added.
  bool Insert(const Fingerprint& fp, uint64_t slot);
  // Removes fp -> slot. Returns whether it was there.
  bool EraseIf(const Fingerprint& fp, uint64_t slot);

  size_t size() const { return size_; }
  size_t memory_bytes() const { return buckets_.size() * sizeof(uint64_t); }
  double bytes_per_entry() const {
    return size_ ? static_cast<double>(memory_bytes()) / static_cast<double>(size_) : 0;
  }

 private:
  static uint32_t TagOf(const Fingerprint& fp) { return static_cast<uint32_t>(fp.lo); }
  // Spreads the tag over the table (tags from a test may be regular): the high half
  // of a 64-bit mix scaled to the table's size (no power of two needed).
  size_t Home(uint32_t tag) const {
    const uint64_t mixed = (static_cast<uint64_t>(tag) + 1) * 0x9e3779b97f4a7c15ull;
    return static_cast<size_t>((static_cast<DedupU128>(mixed) * buckets_.size()) >> 64);
  }
  size_t Next(size_t i) const { return i + 1 == buckets_.size() ? 0 : i + 1; }
  void Grow();

  // tag << 32 | slot; 0: empty (slot 0 of a tier never holds data).
  std::vector<uint64_t> buckets_;
  size_t size_ = 0;
};

}  // namespace strata::storage::engine
