// Volume::BeginWrite of a LUN with dedup off: a large write whose every block is
// overwritten in place today (OverwriteInPlace's conditions) is received straight
// into the tier mapping at those slots, one copy from the socket instead of a recv
// into a buffer and a pwrite.
//
// The guard is OverwriteInPlace's, held for as long: the LUN's gate (shared), the
// blocks' stripes, and mu_ shared while bytes land (nothing that would free, reuse
// or share the slots, or flip dedup or the write tier, runs meanwhile). mu_ is taken
// only when the caller says the whole payload is already queued, so the receives
// under it never wait on the network; it is let go as soon as the last byte landed.
//
// The slots hold the LUN's live bytes, so no block may be left half old and half new
// by a process killed mid-payload (stored_crash_kill9_plain checks). A block is only
// ever written by one system call: the caller's receives each fill whole spaces
// (WholeReceives), and the bytes the caller already held (Land) are stored with
// pwrite, whole blocks at a time; a block split between those and the socket is
// gathered in a buffer and stored with one pwrite once complete. A user-space copy
// into the mapping could be cut by a kill at any instruction; a system call's copy
// is not (the kill takes effect on its way back to user space).
#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>

#include "engine_impl.h"

namespace strata::storage::engine {

class EngineImpl::DirectWrite final : public IncomingWrite {
 public:
  DirectWrite(EngineImpl* e, std::shared_ptr<Lun> lun, uint64_t lba, size_t n, bool fua,
              bool client)
      : e_(e),
        lun_(std::move(lun)),
        lba_(lba),
        n_(n),
        fua_(fua),
        io_(e, client),
        gate_(lun_->gate) {}

  ~DirectWrite() override {
    // Abandoned with bytes landed in some blocks: they changed all the same.
    if (placed_ && !landed_all_) Landed();
  }

  // Takes the stripes and mu_ and finds the slots; false (everything let go by the
  // destructor) when any block is not one OverwriteInPlace would write.
  bool Place() {
    Lun& lun = *lun_;
    if (lun.proxy || !lun.rec.moved_to.empty() || lun.store_hashes) return false;
    stripes_.emplace(lun, lba_, n_);
    lock_ = SharedLock(e_->mu_);
    if (lun.deleted || lun.dedup.load(std::memory_order_acquire)) return false;
    const uint32_t tier = lun.rec.write_tier;
    const TierStore& t = e_->tiers_[tier];
    if (!t.mapping) return false;
    tier_ = &t;
    for (size_t i = 0; i < n_; ++i) {
      BlockRef ref = lun.map.Get(lba_ + i);
      if (ref == kHole || RefTier(ref) != tier || !lun.map.OwnsLeaf(lba_ + i) ||
          t.refs[RefSlot(ref)] != 1) {  // as OverwriteInPlace
        return false;
      }
    }
    const uint32_t bs = e_->bs_;
    for (size_t i = 0; i < n_;) {
      const uint64_t slot = RefSlot(lun.map.Get(lba_ + i));
      size_t j = i + 1;
      while (j < n_ && RefSlot(lun.map.Get(lba_ + j)) == slot + (j - i)) ++j;
      std::span<char> space = t.mapping->Write(slot * bs, (j - i) * uint64_t{bs}, t.written_end);
      if (space.empty()) return false;
      spaces_.push_back(space);
      i = j;
    }
    placed_ = true;
    return true;
  }

  std::span<char> NextSpace() override {
    std::span<char> out;
    NextSpaces(&out, 1);
    return out;
  }

  size_t NextSpaces(std::span<char>* out, size_t max) override {
    if (cur_ >= spaces_.size()) {
      out[0] = {};
      return 1;
    }
    if (split_ > 0) {  // the rest of a block begun by Land
      out[0] = std::span<char>(split_buf_.get() + split_, e_->bs_ - split_);
      return 1;
    }
    size_t k = 0;
    for (size_t i = cur_; i < spaces_.size() && k < max; ++i) {
      out[k++] = i == cur_ ? spaces_[i].subspan(off_) : spaces_[i];
    }
    return k;
  }

  void Received(size_t n) override {
    if (split_ > 0) {
      split_ += n;
      if (split_ == e_->bs_) StoreSplit();
      return;
    }
    Advance(n);
  }

  bool WholeReceives() const override { return true; }

  // Whole blocks with one pwrite per space; a block these bytes end inside is
  // gathered in split_buf_ (the receive that completes it lands there too).
  Status Land(std::span<const char> bytes) override {
    const uint32_t bs = e_->bs_;
    while (!bytes.empty() && cur_ < spaces_.size()) {
      if (split_ == 0 && bytes.size() >= bs) {
        const std::span<char> space = spaces_[cur_].subspan(off_);
        const size_t take = std::min<size_t>(space.size(), bytes.size() / bs * bs);
        Store(space.data(), bytes.first(take));
        bytes = bytes.subspan(take);
        Advance(take);
        continue;
      }
      if (!split_buf_) split_buf_ = std::make_unique<char[]>(bs);
      const size_t take = std::min<size_t>(bs - split_, bytes.size());
      std::memcpy(split_buf_.get() + split_, bytes.data(), take);
      split_ += take;
      bytes = bytes.subspan(take);
      if (split_ == bs) StoreSplit();
    }
    if (!bytes.empty()) return InternalError("more bytes landed than the write holds");
    return Status::Ok();
  }

  Status Commit() override {
    if (!landed_all_) return InternalError("write committed before all its bytes were received");
    if (!stored_.ok()) {  // blocks Land stored may have changed: as an abandoned write
      stripes_.reset();
      return stored_;
    }
    // Blocks of zeros become holes, as Write makes them (StoreRun frees their slots),
    // still under the stripes.
    Status s;
    for (size_t i = 0; i < n_ && s.ok(); ++i) {
      if (!zero_[i]) continue;
      s = e_->StoreRun(*lun_, lba_ + i, 1, nullptr, {}, nullptr, false);
      lun_->MarkDirty(lba_ + i);
    }
    stripes_.reset();
    STRATA_RETURN_IF_ERROR(s);
    return fua_ ? e_->Flush() : Status::Ok();
  }

 private:
  // `n` more bytes landed in spaces_, from the current place on.
  void Advance(size_t n) {
    while (n > 0 && cur_ < spaces_.size()) {
      const size_t take = std::min(n, spaces_[cur_].size() - off_);
      off_ += take;
      n -= take;
      if (off_ == spaces_[cur_].size()) {
        ++cur_;
        off_ = 0;
      }
    }
    if (cur_ == spaces_.size() && !landed_all_) Landed();
  }

  // `bytes` into the tier file where `at` (inside a space) maps it, with one pwrite.
  // A failure is kept for Commit; the payload is still taken in.
  void Store(const char* at, std::span<const char> bytes) {
    if (!stored_.ok()) return;
    stored_ = tier_->file->WriteAt(static_cast<uint64_t>(at - tier_->mapping->data()), bytes);
  }

  // The block gathered in split_buf_ is whole: stored at the current place.
  void StoreSplit() {
    const uint32_t bs = e_->bs_;
    Store(spaces_[cur_].data() + off_, std::span<const char>(split_buf_.get(), bs));
    split_ = 0;
    Advance(bs);
  }

  // Every byte landed (or the write was abandoned): notes the blocks of zeros, lets
  // go of mu_, and marks the blocks dirty for a device move, as a Write marks them
  // after its data landed.
  void Landed() {
    landed_all_ = true;
    if (lock_.owns_lock() && cur_ == spaces_.size()) {
      zero_.assign(n_, false);
      const uint32_t bs = e_->bs_;
      size_t b = 0;
      for (const auto& space : spaces_) {
        for (size_t at = 0; at < space.size(); at += bs) zero_[b++] = IsZero(space.data() + at, bs);
      }
    }
    if (lock_.owns_lock()) lock_.unlock();
    for (size_t i = 0; i < n_; ++i) lun_->MarkDirty(lba_ + i);
  }

  EngineImpl* const e_;
  const std::shared_ptr<Lun> lun_;
  const uint64_t lba_;
  const size_t n_;
  const bool fua_;
  // Destroyed in the reverse order: mu_, the stripes, the gate, then the client count.
  EngineImpl::ClientIo io_;
  std::shared_lock<std::shared_mutex> gate_;
  std::optional<StripeGuard> stripes_;
  SharedLock lock_;
  std::vector<std::span<char>> spaces_;  // runs of consecutive slots, in block order
  size_t cur_ = 0;                       // the space bytes land in next
  size_t off_ = 0;                       // bytes landed in spaces_[cur_]
  const TierStore* tier_ = nullptr;      // the write tier (Place)
  std::unique_ptr<char[]> split_buf_;    // a block begun by Land, completed by a receive
  size_t split_ = 0;                     // bytes of it landed (0: none pending)
  Status stored_;                        // the first failed pwrite of Land's bytes
  bool placed_ = false;                  // Place() found every slot
  bool landed_all_ = false;
  std::vector<bool> zero_;  // per block, once every byte landed
};

std::unique_ptr<IncomingWrite> EngineImpl::BeginWrite(const std::shared_ptr<Lun>& lun,
                                                      uint64_t offset, uint32_t length, bool fua,
                                                      const IncomingPayload& payload, bool client) {
  // Whole blocks of a LUN with dedup off (read again under the lock).
  if (length == 0 || offset % bs_ != 0 || length % bs_ != 0) return nullptr;
  if (lun->dedup.load(std::memory_order_acquire)) return nullptr;
  const uint64_t size = lun->size_bytes.load();
  if (offset > size || length > size - offset) return nullptr;  // Write says why
  TouchIo(*lun);
  // In place only when the receives will not wait on the network (mu_ is held across
  // them); everything it holds is let go before a fresh write is tried.
  if (payload.queued) {
    auto w = std::make_unique<DirectWrite>(this, lun, offset / bs_, length / bs_, fua, client);
    if (w->Place()) return w;
  }
  return BeginFreshWrite(lun, offset / bs_, length / bs_, fua, client, payload.to_file);
}

}  // namespace strata::storage::engine
