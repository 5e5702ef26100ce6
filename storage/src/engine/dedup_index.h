#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace strata::storage::engine {

struct Fingerprint {
  uint64_t lo = 0;
  uint64_t hi = 0;
  friend bool operator==(const Fingerprint&, const Fingerprint&) = default;
};

// XXH3-128 of a block. Not collision-proof against an adversary: a match is only
// a candidate and the engine compares the bytes before sharing a block.
Fingerprint FingerprintOf(const void* data, size_t len);

// Fingerprint -> slot of one tier, as an open-addressing hash table with linear
// probing and backward-shift deletion. A bucket keeps a 64-bit tag (the low half
// of the fingerprint) and a 32-bit slot: 12 bytes, grown at 85 % load, so even
// just after a doubling an indexed block costs under 29 bytes (VDO's dense index
// needs about 4; we trade memory for no on-disk index). Tags are not unique
// proof: every match is confirmed by comparing bytes, and two different blocks
// sharing a tag just means the second is not indexed. Slots from 2^32 on (16 TiB
// of 4 KiB blocks in one tier) are not indexed.
// Not thread-safe: the engine's lock guards it.
class DedupIndex {
 public:
  DedupIndex();

  static constexpr uint64_t kMaxSlot = 0xffffffffu;

  std::optional<uint64_t> Find(const Fingerprint& fp) const;
  // Adds fp -> slot unless fp's tag is present or slot > kMaxSlot. Returns whether
  // it was added.
  bool InsertIfAbsent(const Fingerprint& fp, uint64_t slot);
  // Removes fp if it maps to `slot`. Returns whether it was removed.
  bool EraseIf(const Fingerprint& fp, uint64_t slot);

  size_t size() const { return size_; }
  size_t memory_bytes() const { return tags_.size() * (sizeof(uint64_t) + sizeof(uint32_t)); }
  double bytes_per_entry() const {
    return size_ ? static_cast<double>(memory_bytes()) / static_cast<double>(size_) : 0;
  }

 private:
  // Spreads the tag over the table (tags from a test may be regular).
  size_t Home(uint64_t tag) const { return (tag * 0x9e3779b97f4a7c15ull) >> shift_; }
  void Grow();

  // Parallel arrays: 8 + 4 bytes a bucket with no padding. slots_[i] == 0: empty
  // (slot 0 of a tier never holds data).
  std::vector<uint64_t> tags_;
  std::vector<uint32_t> slots_;
  int shift_ = 64 - 10;
  size_t size_ = 0;
};

}  // namespace strata::storage::engine
