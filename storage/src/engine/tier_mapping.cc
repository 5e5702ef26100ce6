#include "tier_mapping.h"

#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

namespace strata::storage::engine {

std::unique_ptr<TierMapping> TierMapping::Create(File& file, PathKind kind,
                                                 uint64_t reserve_bytes) {
  if (kind == PathKind::kBlockDevice || reserve_bytes == 0) return nullptr;
  char* base = file.MapShared(reserve_bytes);
  if (base == nullptr) return nullptr;
  return std::make_unique<TierMapping>(base, reserve_bytes, file.InMemory());
}

bool TierMapping::Prefault(std::span<char> space) const { return PopulateForWrite(space); }

bool PopulateForWrite(std::span<char> space) {
  if (space.empty()) return true;
  static const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t start = reinterpret_cast<uintptr_t>(space.data()) / page * page;
  const uintptr_t end = reinterpret_cast<uintptr_t>(space.data()) + space.size();
  return ::madvise(reinterpret_cast<void*>(start), end - start, MADV_POPULATE_WRITE) == 0;
}

// Every access below is sequentially consistent: TryPin's count before its second
// look at the epoch, and Retire's advance before its look at the count, so either the
// pin sees the new epoch (and backs off) or Retire sees the pin (and holds the slots).
bool TierMapping::TryPin(uint64_t epoch) {
  if (epoch_.load() != epoch) return false;
  pins_[epoch & 1].fetch_add(1);
  if (epoch_.load() == epoch) return true;
  pins_[epoch & 1].fetch_sub(1);
  return false;
}

void TierMapping::Unpin(uint64_t epoch) { pins_[epoch & 1].fetch_sub(1); }

void TierMapping::Retire(std::vector<uint64_t> freed, std::vector<uint64_t>* reusable) {
  // Every pin of an epoch before the current one has ended once the count of the
  // epoch just before it is seen zero (by induction over the advances, each made
  // only after the previous one's count was seen zero). A stale TryPin briefly counts
  // on its parity too: that only delays a release.
  if (waiting_active_ && pins_[waiting_parity_].load() == 0) {
    reusable->insert(reusable->end(), waiting_.begin(), waiting_.end());
    waiting_.clear();
    waiting_active_ = false;
  }
  if (!waiting_active_ && !next_.empty()) {
    freed.insert(freed.end(), next_.begin(), next_.end());
    next_.clear();
  }
  if (freed.empty()) return;
  if (waiting_active_) {
    next_.insert(next_.end(), freed.begin(), freed.end());
    return;
  }
  const uint64_t old = epoch_.fetch_add(1);
  if (pins_[old & 1].load() == 0) {
    reusable->insert(reusable->end(), freed.begin(), freed.end());
    return;
  }
  waiting_ = std::move(freed);
  waiting_active_ = true;
  waiting_parity_ = static_cast<int>(old & 1);
}

}  // namespace strata::storage::engine
