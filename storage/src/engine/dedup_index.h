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
// probing and backward-shift deletion: 24 bytes a bucket, grown at 3/4 load, so
// at most 32 bytes per indexed block (bytes_per_entry() reports the live figure).
// Not thread-safe: the engine's lock guards it.
class DedupIndex {
 public:
  DedupIndex();

  std::optional<uint64_t> Find(const Fingerprint& fp) const;
  // Adds fp -> slot unless fp is present. Returns whether it was added.
  bool InsertIfAbsent(const Fingerprint& fp, uint64_t slot);
  // Removes fp if it maps to `slot`. Returns whether it was removed.
  bool EraseIf(const Fingerprint& fp, uint64_t slot);

  size_t size() const { return size_; }
  size_t memory_bytes() const { return buckets_.size() * sizeof(Bucket); }
  double bytes_per_entry() const {
    return size_ ? static_cast<double>(memory_bytes()) / static_cast<double>(size_) : 0;
  }

 private:
  struct Bucket {
    Fingerprint fp;
    uint64_t slot = 0;  // 0: empty (slot 0 of a tier is never used for data)
  };
  size_t Home(const Fingerprint& fp) const { return fp.lo & (buckets_.size() - 1); }
  void Grow();

  std::vector<Bucket> buckets_;
  size_t size_ = 0;
};

}  // namespace strata::storage::engine
