#include "dedup_index.h"

#include <xxhash.h>

#include <algorithm>
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

DedupIndex::DedupIndex() : checks_(1024, 0), slots_(1024, 0) {}

bool DedupIndex::Insert(const Fingerprint& fp, uint64_t slot) {
  if (slot == 0 || slot > kMaxSlot) return false;
  if (slot < indexed_.size() && indexed_[slot]) return false;
  const uint32_t tag = TagOf(fp);
  const uint16_t check = CheckOf(tag);
  // Refuse a fifth slot for one tag before changing anything.
  int same_tag = 0;
  for (size_t i = Home(tag); checks_[i] != 0; i = Next(i)) {
    if ((checks_[i] & kCheckMask) == check && slot_tags_[slots_[i]] == tag &&
        ++same_tag >= kMaxSameTag) {
      return false;
    }
  }
  if (slot >= slot_tags_.size()) {
    // By a quarter (slots are handed out densely): at most 5 bytes a slot.
    const size_t n = std::max<size_t>(slot + 1, slot_tags_.size() + slot_tags_.size() / 4);
    slot_tags_.reserve(n);  // exactly n: memory_bytes counts capacity
    slot_tags_.resize(n, 0);
    indexed_.resize(n, false);
  }
  if ((size_ + 1) * 100 > checks_.size() * 85) Grow();
  size_t i = Home(tag);
  size_t d = 0;
  for (; checks_[i] != 0; ++d) i = Next(i);
  checks_[i] = WithDistance(check, d);
  slots_[i] = static_cast<uint32_t>(slot);
  slot_tags_[slot] = tag;
  indexed_[slot] = true;
  ++size_;
  ++inserts_;
  return true;
}

bool DedupIndex::EraseIf(const Fingerprint& fp, uint64_t slot) {
  if (slot >= indexed_.size() || !indexed_[slot] || slot_tags_[slot] != TagOf(fp)) return false;
  return EraseSlot(slot);
}

bool DedupIndex::EraseSlot(uint64_t slot) {
  if (slot >= indexed_.size() || !indexed_[slot]) return false;
  const uint32_t tag = slot_tags_[slot];
  for (size_t i = Home(tag); checks_[i] != 0; i = Next(i)) {
    if (slots_[i] == slot) {
      EraseAt(i);
      indexed_[slot] = false;
      --size_;
      return true;
    }
  }
  return false;  // not reached: an indexed slot is always in its tag's probe run
}

void DedupIndex::EraseAt(size_t i) {
  // Backward-shift: pull later members of the probe run into the gap so lookups
  // never stop early at a hole.
  size_t gap = i;
  for (size_t j = Next(gap); checks_[j] != 0; j = Next(j)) {
    // Move j into the gap when its home is not within (gap, j] cyclically: when it is
    // at least as far from its home as from the gap.
    const size_t to_gap = j >= gap ? j - gap : j + checks_.size() - gap;
    const size_t d = DistanceAt(j);
    if (d >= to_gap) {
      checks_[gap] = WithDistance(checks_[j], d - to_gap);
      slots_[gap] = slots_[j];
      gap = j;
    }
  }
  checks_[gap] = 0;
  slots_[gap] = 0;
}

void DedupIndex::Grow() {
  const size_t n = checks_.size() + checks_.size() / 2;
  std::vector<uint16_t> old_checks(n, 0);
  std::vector<uint32_t> old_slots(n, 0);
  old_checks.swap(checks_);
  old_slots.swap(slots_);
  for (size_t k = 0; k < old_checks.size(); ++k) {
    if (old_checks[k] == 0) continue;
    size_t i = Home(slot_tags_[old_slots[k]]);
    size_t d = 0;
    for (; checks_[i] != 0; ++d) i = Next(i);
    checks_[i] = WithDistance(old_checks[k], d);
    slots_[i] = old_slots[k];
  }
}

}  // namespace strata::storage::engine
