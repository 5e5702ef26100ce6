#include "dedup_index.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace strata::storage::engine {

Fingerprint FingerprintOf(const void* data, size_t len) {
  XXH128_hash_t h = XXH3_128bits(data, len);
  return Fingerprint{h.low64, h.high64};
}

DedupIndex::DedupIndex() : tags_(1024, 0), slots_(1024, 0) {}

std::optional<uint64_t> DedupIndex::Find(const Fingerprint& fp) const {
  const size_t mask = tags_.size() - 1;
  for (size_t i = Home(fp.lo);; i = (i + 1) & mask) {
    if (slots_[i] == 0) return std::nullopt;
    if (tags_[i] == fp.lo) return slots_[i];
  }
}

bool DedupIndex::InsertIfAbsent(const Fingerprint& fp, uint64_t slot) {
  if (slot == 0 || slot > kMaxSlot) return false;
  if ((size_ + 1) * 100 > tags_.size() * 85) Grow();
  const size_t mask = tags_.size() - 1;
  for (size_t i = Home(fp.lo);; i = (i + 1) & mask) {
    if (slots_[i] == 0) {
      tags_[i] = fp.lo;
      slots_[i] = static_cast<uint32_t>(slot);
      ++size_;
      return true;
    }
    if (tags_[i] == fp.lo) return false;
  }
}

bool DedupIndex::EraseIf(const Fingerprint& fp, uint64_t slot) {
  const size_t mask = tags_.size() - 1;
  size_t i = Home(fp.lo);
  for (;; i = (i + 1) & mask) {
    if (slots_[i] == 0) return false;
    if (tags_[i] == fp.lo) break;
  }
  if (slots_[i] != slot) return false;
  // Backward-shift: pull later members of the probe run into the gap so lookups
  // never stop early at a hole.
  size_t gap = i;
  for (size_t j = (gap + 1) & mask; slots_[j] != 0; j = (j + 1) & mask) {
    size_t home = Home(tags_[j]);
    // Move j into the gap when its home is not within (gap, j] cyclically.
    bool between = gap <= j ? (home > gap && home <= j) : (home > gap || home <= j);
    if (!between) {
      tags_[gap] = tags_[j];
      slots_[gap] = slots_[j];
      gap = j;
    }
  }
  tags_[gap] = 0;
  slots_[gap] = 0;
  --size_;
  return true;
}

void DedupIndex::Grow() {
  std::vector<uint64_t> old_tags(tags_.size() * 2, 0);
  std::vector<uint32_t> old_slots(slots_.size() * 2, 0);
  old_tags.swap(tags_);
  old_slots.swap(slots_);
  --shift_;
  size_ = 0;
  for (size_t i = 0; i < old_tags.size(); ++i) {
    if (old_slots[i] != 0) InsertIfAbsent(Fingerprint{old_tags[i], 0}, old_slots[i]);
  }
}

}  // namespace strata::storage::engine
