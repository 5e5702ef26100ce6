#include "dedup_index.h"

#include <xxhash.h>
#if defined(__x86_64__)
#define XXH_DISPATCH_DISABLE_REPLACE
#include <xxh_x86dispatch.h>
#endif

namespace strata::storage::engine {

Fingerprint FingerprintOf(const void* data, size_t len) {
#if defined(__x86_64__)
  // libxxhash's run-time dispatch: the widest vector unit the CPU has (AVX2 or
  // AVX-512 instead of the SSE2 a portable build compiles in); the same hash.
  XXH128_hash_t h = XXH3_128bits_dispatch(data, len);
#else
  XXH128_hash_t h = XXH3_128bits(data, len);
#endif
  return Fingerprint{h.low64, h.high64};
}

DedupIndex::DedupIndex() : buckets_(1024, 0) {}

bool DedupIndex::Insert(const Fingerprint& fp, uint64_t slot) {
  if (slot == 0 || slot > kMaxSlot) return false;
  if ((size_ + 1) * 100 > buckets_.size() * 85) Grow();
  const uint32_t tag = TagOf(fp);
  const uint64_t entry = (static_cast<uint64_t>(tag) << 32) | slot;
  int same_tag = 0;
  for (size_t i = Home(tag);; i = Next(i)) {
    const uint64_t b = buckets_[i];
    if (b == 0) {
      buckets_[i] = entry;
      ++size_;
      return true;
    }
    if (b == entry) return false;
    if (static_cast<uint32_t>(b >> 32) == tag && ++same_tag >= kMaxSameTag) return false;
  }
}

bool DedupIndex::EraseIf(const Fingerprint& fp, uint64_t slot) {
  const uint32_t tag = TagOf(fp);
  const uint64_t entry = (static_cast<uint64_t>(tag) << 32) | slot;
  size_t i = Home(tag);
  for (;; i = Next(i)) {
    if (buckets_[i] == 0) return false;
    if (buckets_[i] == entry) break;
  }
  // Backward-shift: pull later members of the probe run into the gap so lookups
  // never stop early at a hole.
  size_t gap = i;
  for (size_t j = Next(gap); buckets_[j] != 0; j = Next(j)) {
    size_t home = Home(static_cast<uint32_t>(buckets_[j] >> 32));
    // Move j into the gap when its home is not within (gap, j] cyclically.
    bool between = gap <= j ? (home > gap && home <= j) : (home > gap || home <= j);
    if (!between) {
      buckets_[gap] = buckets_[j];
      gap = j;
    }
  }
  buckets_[gap] = 0;
  --size_;
  return true;
}

void DedupIndex::Grow() {
  std::vector<uint64_t> old(buckets_.size() + buckets_.size() / 2, 0);
  old.swap(buckets_);
  for (uint64_t b : old) {
    if (b == 0) continue;
    // Same entries as before, so no tag limit or duplicate can refuse one.
    for (size_t i = Home(static_cast<uint32_t>(b >> 32));; i = Next(i)) {
      if (buckets_[i] == 0) {
        buckets_[i] = b;
        break;
      }
    }
  }
}

}  // namespace strata::storage::engine
