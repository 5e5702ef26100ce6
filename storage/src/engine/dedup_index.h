#pragma once

#include <algorithm>
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

// Fingerprint -> slots of one tier. Each indexed slot's 32-bit tag (bits of its
// fingerprint) is kept per slot (4 bytes), so a slot leaves the index without its
// block being read and hashed again. The table is open addressing with linear
// probing and backward-shift deletion over 6-byte buckets: a 12-bit check (other
// bits of the tag: a probe compares only these, and reads the slot's full tag on a
// match) with the entry's distance from its home (4 bits), and a 32-bit slot; a
// bucket's home comes from the full tag. It grows by
// half at 85 % load (a doubled table would sit at 42 %), the per-slot tags by a
// quarter, so an indexed block of a tier whose slots are all indexed costs
// 6/0.85-6/0.567 + 4-5 = 11.1-15.8 bytes (VDO's dense index needs about 4; we keep
// no on-disk index).
// A tag is only a candidate: every match is confirmed by comparing bytes. Different
// blocks share a tag once in 2^32, so a tag may map to up to kMaxSameTag slots; a
// block whose tag already has that many is not indexed (bounds the work a crafted
// collision can cause). Slots from 2^32 on (16 TiB of 4 KiB blocks in one tier)
// are not indexed.
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
    const uint16_t check = CheckOf(tag);
    for (size_t i = Home(tag);; i = Next(i)) {
      const uint16_t c = checks_[i];
      if (c == 0) return false;
      if ((c & kCheckMask) == check && slot_tags_[slots_[i]] == tag &&
          visit(static_cast<uint64_t>(slots_[i]))) {
        return true;
      }
    }
  }
  // Adds fp -> slot unless slot is 0 or > kMaxSlot, slot is already indexed, or
  // kMaxSameTag slots share fp's tag. Returns whether it was added.
  bool Insert(const Fingerprint& fp, uint64_t slot);
  // Removes slot if it is indexed under fp's tag. Returns whether it was.
  bool EraseIf(const Fingerprint& fp, uint64_t slot);
  // Removes slot, whatever its tag. Returns whether it was indexed.
  bool EraseSlot(uint64_t slot);

  size_t size() const { return size_; }
  // How many inserts ever succeeded: a writer that missed the index compares it
  // later to learn whether blocks were indexed meanwhile.
  uint64_t inserts() const { return inserts_; }
  size_t memory_bytes() const {
    return checks_.capacity() * sizeof(uint16_t) + slots_.capacity() * sizeof(uint32_t) +
           slot_tags_.capacity() * sizeof(uint32_t) + indexed_.capacity() / 8;
  }
  double bytes_per_entry() const {
    return size_ ? static_cast<double>(memory_bytes()) / static_cast<double>(size_) : 0;
  }

 private:
  static uint32_t TagOf(const Fingerprint& fp) { return static_cast<uint32_t>(fp.lo); }
  // A bucket's 16 bits: the check (12 bits of the tag's mix that Home does not use
  // much; never 0, so an occupied bucket is never 0) above its distance from its home
  // (4 bits; kFar: that far or farther, the exact distance then comes from the tag).
  // The distance lets a deletion's backward shift decide which entries move without
  // reading each one's tag (a random access per entry of the probe run).
  static constexpr uint16_t kCheckMask = 0xfff0;
  static constexpr uint16_t kFar = 0xf;
  static uint16_t CheckOf(uint32_t tag) {
    const uint16_t c = static_cast<uint16_t>(Mix(tag) >> 8) & kCheckMask;
    return c == 0 ? 0x10 : c;
  }
  // Bucket i's distance from its entry's home.
  size_t DistanceAt(size_t i) const {
    const size_t d = checks_[i] & kFar;
    if (d < kFar) return d;
    const size_t home = Home(slot_tags_[slots_[i]]);
    return i >= home ? i - home : i + checks_.size() - home;
  }
  static uint16_t WithDistance(uint16_t check, size_t d) {
    return static_cast<uint16_t>((check & kCheckMask) | std::min<size_t>(d, kFar));
  }
  static uint64_t Mix(uint32_t tag) {
    return (static_cast<uint64_t>(tag) + 1) * 0x9e3779b97f4a7c15ull;
  }
  // Spreads the tag over the table (tags from a test may be regular): the high half
  // of a 64-bit mix scaled to the table's size (no power of two needed).
  size_t Home(uint32_t tag) const {
    return static_cast<size_t>((static_cast<DedupU128>(Mix(tag)) * checks_.size()) >> 64);
  }
  size_t Next(size_t i) const { return i + 1 == checks_.size() ? 0 : i + 1; }
  // Removes the entry in bucket i (backward shift).
  void EraseAt(size_t i);
  void Grow();

  // Parallel arrays, one entry a bucket: checks_[i] == 0 means empty.
  std::vector<uint16_t> checks_;
  std::vector<uint32_t> slots_;
  // Per slot: its tag (meaningful while indexed_[slot]) and whether it is indexed.
  std::vector<uint32_t> slot_tags_;
  std::vector<bool> indexed_;
  size_t size_ = 0;
  uint64_t inserts_ = 0;
};

}  // namespace strata::storage::engine
