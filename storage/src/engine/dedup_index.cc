#include "dedup_index.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace strata::storage::engine {

Fingerprint FingerprintOf(const void* data, size_t len) {
  XXH128_hash_t h = XXH3_128bits(data, len);
  return Fingerprint{h.low64, h.high64};
}

DedupIndex::DedupIndex() : buckets_(1024) {}

std::optional<uint64_t> DedupIndex::Find(const Fingerprint& fp) const {
  const size_t mask = buckets_.size() - 1;
  for (size_t i = Home(fp);; i = (i + 1) & mask) {
    const Bucket& b = buckets_[i];
    if (b.slot == 0) return std::nullopt;
    if (b.fp == fp) return b.slot;
  }
}

bool DedupIndex::InsertIfAbsent(const Fingerprint& fp, uint64_t slot) {
  if ((size_ + 1) * 4 > buckets_.size() * 3) Grow();
  const size_t mask = buckets_.size() - 1;
  for (size_t i = Home(fp);; i = (i + 1) & mask) {
    Bucket& b = buckets_[i];
    if (b.slot == 0) {
      b.fp = fp;
      b.slot = slot;
      ++size_;
      return true;
    }
    if (b.fp == fp) return false;
  }
}

bool DedupIndex::EraseIf(const Fingerprint& fp, uint64_t slot) {
  const size_t mask = buckets_.size() - 1;
  size_t i = Home(fp);
  for (;; i = (i + 1) & mask) {
    if (buckets_[i].slot == 0) return false;
    if (buckets_[i].fp == fp) break;
  }
  if (buckets_[i].slot != slot) return false;
  // Backward-shift: pull later members of the probe run into the gap so lookups
  // never stop early at a hole.
  size_t gap = i;
  for (size_t j = (gap + 1) & mask; buckets_[j].slot != 0; j = (j + 1) & mask) {
    size_t home = Home(buckets_[j].fp);
    // Move j into the gap when its home is not within (gap, j] cyclically.
    bool between = gap <= j ? (home > gap && home <= j) : (home > gap || home <= j);
    if (!between) {
      buckets_[gap] = buckets_[j];
      gap = j;
    }
  }
  buckets_[gap] = Bucket{};
  --size_;
  return true;
}

void DedupIndex::Grow() {
  std::vector<Bucket> old(buckets_.size() * 2);
  old.swap(buckets_);
  size_ = 0;
  for (const Bucket& b : old) {
    if (b.slot != 0) InsertIfAbsent(b.fp, b.slot);
  }
}

}  // namespace strata::storage::engine
