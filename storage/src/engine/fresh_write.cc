// Volume::BeginWrite of a LUN with dedup off whose blocks take new slots (a device
// move's target filling its new LUN, any write Write would send to StoreNewRunV): the
// run's slots are allocated up front, the tier file grown to cover them (one ftruncate
// per kGrowBytes, never per write), and the payload received straight into the tier
// mapping at those slots: one copy (socket -> page cache) instead of a receive into a
// buffer and a pwrite, and no pwrite on the tier file's inode lock, which a device's
// NBD connections otherwise take in turn for every write of new slots.
//
// Nothing is held while bytes land, only the slots: allocated (count 1), journaled
// nowhere and mapped nowhere, so no reader, snapshot, trim, flush or other write can
// see or reuse them, and a client that stops sending holds them as it would a buffer.
// Commit maps them as StoreNewRunV does (under the blocks' stripes, the mappings
// journaled after the bytes landed, so a crash finds either the old mapping or the new
// one over bytes that are already in the file); abandoned, the slots go back to the
// free list. A LUN that changed meanwhile (dedup switched on, another write tier, moved
// away) or blocks of zeros (holes, as Write stores them) take Write with the bytes
// copied out.
#include <algorithm>
#include <cstring>
#include <optional>
#include <shared_mutex>

#include "engine_impl.h"

namespace strata::storage::engine {

class EngineImpl::FreshWrite final : public IncomingWrite {
 public:
  // file: the tier file when the payload is written into it (NextFileSpace), with the
  // offset of each space in `offsets`; null when it is stored through the spaces.
  FreshWrite(EngineImpl* e, std::shared_ptr<Lun> lun, uint64_t lba, size_t n, bool fua, bool client,
             uint32_t tier, std::vector<uint64_t> slots, std::vector<std::span<char>> spaces,
             File* file, std::vector<uint64_t> offsets)
      : e_(e),
        lun_(std::move(lun)),
        lba_(lba),
        n_(n),
        fua_(fua),
        client_(client),
        tier_(tier),
        slots_(std::move(slots)),
        spaces_(std::move(spaces)),
        file_(file),
        offsets_(std::move(offsets)) {}

  ~FreshWrite() override {
    if (!slots_.empty()) e_->ReleaseFreshSlots(tier_, slots_);
  }

  std::span<char> NextSpace() override {
    if (cur_ >= spaces_.size()) return {};
    return spaces_[cur_].subspan(off_);
  }

  size_t NextSpaces(std::span<char>* out, size_t max) override {
    size_t k = 0;
    for (size_t i = cur_; i < spaces_.size() && k < max; ++i) {
      out[k++] = i == cur_ ? spaces_[i].subspan(off_) : spaces_[i];
    }
    if (k == 0) out[k++] = {};
    return k;
  }

  FileSpace NextFileSpace() override {
    if (file_ == nullptr || cur_ >= spaces_.size()) return {};
    return FileSpace{file_->SpliceFd(), offsets_[cur_] + off_, spaces_[cur_].size() - off_};
  }

  // Written into the file as the rest will be (its pages were not populated: a store
  // through the mapping would fault each one in, cleared).
  Status Land(std::span<const char> bytes) override {
    if (file_ == nullptr) return IncomingWrite::Land(bytes);
    while (!bytes.empty()) {
      const FileSpace at = NextFileSpace();
      if (at.fd < 0) return InternalError("the volume gave no space for the write's payload");
      const size_t n = std::min(at.length, bytes.size());
      STRATA_RETURN_IF_ERROR(file_->WriteAt(at.offset, bytes.first(n)));
      Received(n);
      bytes = bytes.subspan(n);
    }
    return Status::Ok();
  }

  void Received(size_t n) override {
    received_ += n;
    off_ += n;
    while (cur_ < spaces_.size() && off_ >= spaces_[cur_].size()) {
      off_ -= spaces_[cur_].size();
      ++cur_;
    }
  }

  Status Commit() override {
    const uint32_t bs = e_->bs_;
    if (received_ != n_ * bs) {
      return InternalError("write committed with " + std::to_string(received_) + " of " +
                           std::to_string(n_ * bs) + " bytes received");
    }
    EngineImpl::ClientIo io(e_, client_);
    e_->TouchIo(*lun_);
    bool zeros = false;
    for (const auto& space : spaces_) {
      for (size_t at = 0; at < space.size() && !zeros; at += bs)
        zeros = IsZero(space.data() + at, bs);
    }
    if (!zeros) {
      bool kept = false;
      Status s = e_->CommitFresh(*lun_, lba_, n_, tier_, slots_, spaces_, fua_, &kept);
      if (kept) {
        slots_.clear();  // the LUN's now (or given back, when it was deleted)
        return s;
      }
    }
    // The usual way: the bytes copied out of the slots, which are given back.
    std::vector<char> bytes(n_ * bs);
    size_t at = 0;
    for (const auto& space : spaces_) {
      std::memcpy(bytes.data() + at, space.data(), space.size());
      at += space.size();
    }
    e_->ReleaseFreshSlots(tier_, slots_);
    slots_.clear();
    return e_->Write(*lun_, lba_ * bs, bytes, fua_);
  }

 private:
  EngineImpl* const e_;
  const std::shared_ptr<Lun> lun_;
  const uint64_t lba_;
  const size_t n_;
  const bool fua_;
  const bool client_;
  const uint32_t tier_;
  std::vector<uint64_t> slots_;                // ours until Commit maps them
  const std::vector<std::span<char>> spaces_;  // runs of consecutive slots, in block order
  File* const file_;                           // see the constructor
  const std::vector<uint64_t> offsets_;        // of each space in the file, when file_
  size_t cur_ = 0;                             // the space bytes land in next
  size_t off_ = 0;                             // bytes landed in spaces_[cur_]
  size_t received_ = 0;
};

std::unique_ptr<IncomingWrite> EngineImpl::BeginFreshWrite(const std::shared_ptr<Lun>& lun,
                                                           uint64_t lba, size_t n, bool fua,
                                                           bool client, bool to_file) {
  if (n == 0 || n > kFreshMaxBlocks) return nullptr;
  Lun& l = *lun;
  // The caller holds its connection's read lock: never wait here for a move's switch
  // (the gate held exclusively across a remote flush); the buffer path waits in Write.
  std::shared_lock gate(l.gate, std::try_to_lock);
  if (!gate.owns_lock()) return nullptr;
  if (l.proxy || !l.rec.moved_to.empty()) return nullptr;
  uint32_t tier = 0;
  std::vector<uint64_t> slots;
  std::vector<std::span<char>> spaces;
  std::vector<uint64_t> offsets;  // of each space in the tier file
  File* file = nullptr;
  {
    ExclusiveLock lock(mu_);
    if (l.deleted || l.dedup.load(std::memory_order_acquire)) return nullptr;
    tier = l.rec.write_tier;
    TierStore& t = tiers_[tier];
    if (!t.mapping || t.view != t.mapping->data()) return nullptr;
    // Write overwrites a run in place when every block of it qualifies
    // (OverwriteInPlace): such a run keeps its slots, so it is not taken here.
    bool all_in_place = true;
    for (size_t i = 0; i < n && all_in_place; ++i) {
      BlockRef ref = l.map.Get(lba + i);
      all_in_place = ref != kHole && RefTier(ref) == tier && l.map.OwnsLeaf(lba + i) &&
                     t.refs[RefSlot(ref)] == 1;
    }
    if (all_in_place) return nullptr;
    auto got = AllocateRunLocked(t, n);
    if (!got.ok()) return nullptr;  // Write flushes to recycle slots, or says why
    slots = std::move(*got);
    const uint64_t end = (*std::max_element(slots.begin(), slots.end()) + 1) * bs_;
    Status grown = end <= t.written_end ? Status::Ok() : GrowTierFileLocked(t, end);
    for (size_t i = 0; i < n && grown.ok();) {
      size_t j = i + 1;
      while (j < n && slots[j] == slots[j - 1] + 1) ++j;
      std::span<char> space =
          t.mapping->Write(slots[i] * bs_, (j - i) * uint64_t{bs_}, t.written_end);
      if (space.empty()) grown = InternalError("fresh slots outside the tier mapping");
      spaces.push_back(space);
      offsets.push_back(slots[i] * uint64_t{bs_});
      i = j;
    }
    if (!grown.ok()) {
      for (uint64_t s : slots) ReleaseUnusedLocked(t, s);
      return nullptr;
    }
    if (to_file && t.file->SpliceFd() >= 0) file = t.file.get();
  }
  // Written into the file (a splice from the caller's socket): the file system
  // allocates each page as the write fills it, uncleared and unmapped, and says
  // ENOSPC as an error (measured cheaper than the populate below: docs/benchmarks.md,
  // "the target's receive spliced").
  if (file != nullptr) {
    return std::make_unique<FreshWrite>(this, lun, lba, n, fua, client, tier, std::move(slots),
                                        std::move(spaces), file, std::move(offsets));
  }
  // The pages are allocated here, one call per run, rather than faulted in one by one
  // while the socket copies into them (measured cheaper: docs/benchmarks.md, tgtplace).
  // Where they cannot be (the file system is full), the bytes take Write, whose pwrite
  // says ENOSPC, rather than a store through the mapping that would fault.
  for (const auto& space : spaces) {
    if (!tiers_[tier].mapping->Prefault(space)) {
      ReleaseFreshSlots(tier, slots);
      return nullptr;
    }
  }
  return std::make_unique<FreshWrite>(this, lun, lba, n, fua, client, tier, std::move(slots),
                                      std::move(spaces), nullptr, std::vector<uint64_t>{});
}

Status EngineImpl::GrowTierFileLocked(TierStore& t, uint64_t end, uint64_t step) {
  // Every slot ever handed out lies below high_water, so the file (which only pwrites
  // of such slots and earlier growth extended) is no longer than this: growing to it
  // never cuts anything off.
  uint64_t want = std::max({end, t.written_end, t.high_water * uint64_t{bs_}});
  want = (want + step - 1) / step * step;
  want = std::max(std::min(want, t.mapping->reserved_bytes()), end);
  STRATA_RETURN_IF_ERROR(t.file->Truncate(want));
  t.written_end = std::max(t.written_end, want);
  return Status::Ok();
}

void EngineImpl::ReleaseFreshSlots(uint32_t tier, std::span<const uint64_t> slots) {
  if (slots.empty()) return;
  ExclusiveLock lock(mu_);
  TierStore& t = tiers_[tier];
  for (uint64_t s : slots) ReleaseUnusedLocked(t, s);
}

Status EngineImpl::CommitFresh(Lun& lun, uint64_t lba, size_t n, uint32_t tier,
                               std::span<const uint64_t> slots,
                               std::span<const std::span<char>> spaces, bool fua, bool* kept) {
  *kept = false;
  std::shared_lock gate(lun.gate);
  if (lun.proxy || !lun.rec.moved_to.empty()) return Status::Ok();  // Write's way
  const uint64_t size = lun.size_bytes.load();
  if (lba * bs_ > size || n * bs_ > size - lba * bs_) return Status::Ok();  // Write says why
  // As WriteGated: held from before the blocks change until they are recorded.
  std::optional<std::shared_lock<std::shared_mutex>> scope;
  if (lun.store_hashes) scope.emplace(lun.store_hashes->StoreScope());
  bool flush_needed = false;
  {
    StripeGuard stripes(lun, lba, n);
    {
      ExclusiveLock lock(mu_);
      if (lun.dedup.load(std::memory_order_acquire) || lun.rec.write_tier != tier) {
        return Status::Ok();  // Write's way (the slots go back)
      }
      *kept = true;
      TierStore& t = tiers_[tier];
      if (lun.deleted) {
        for (uint64_t s : slots) ReleaseUnusedLocked(t, s);
        return UnavailableError("LUN " + lun.rec.name + " was deleted");
      }
      for (size_t i = 0; i < n; ++i) SetMappingLocked(lun, lba + i, MakeRef(tier, slots[i]), false);
      flush_needed = NeedFlushLocked();
    }
    // Hashed while the blocks' stripes keep every other write of them out, and while
    // the bytes are still in cache.
    if (lun.store_hashes) {
      std::vector<std::span<const char>> pieces(spaces.begin(), spaces.end());
      lun.store_hashes->Stored(lba * bs_, pieces);
    }
    for (size_t i = 0; i < n; ++i) lun.MarkDirty(lba + i);
  }
  return flush_needed || fua ? Flush() : Status::Ok();
}

}  // namespace strata::storage::engine
