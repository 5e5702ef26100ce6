// Volume::BeginRead of a LUN: a read's bytes handed out as spans of the tier mapping
// (and of zeros for holes), for the NBD server to send without reading them into a
// buffer first. The guard is ReadInner's, the LUN's gate and mu_ shared, held only
// while the caller's send copies the spans into the socket without waiting.
#include <optional>

#include "engine_impl.h"

namespace strata::storage::engine {

namespace {

// Holes are sent from here, up to this many bytes a span.
constexpr size_t kZeroBytes = 64 << 10;
const char* Zeros() {
  static const char kZeros[kZeroBytes] = {};
  return kZeros;
}

}  // namespace

class EngineImpl::DirectRead final : public OutgoingRead {
 public:
  DirectRead(EngineImpl* e, Lun& lun, bool client) : io_(e, client), gate_(lun.gate) {}

  std::span<const std::span<const char>> Spans() const override { return spans_; }

  EngineImpl::ClientIo io_;
  std::shared_lock<std::shared_mutex> gate_;
  SharedLock lock_;
  std::vector<std::span<const char>> spans_;
};

std::unique_ptr<OutgoingRead> EngineImpl::BeginRead(Lun& lun, uint64_t offset, uint32_t length,
                                                    bool client) {
  // A dedup LUN's blocks are scattered (many short spans): its reads copy from the
  // mapping already (ReadInner).
  constexpr size_t kMaxSpans = 64;
  if (length == 0 || lun.dedup.load(std::memory_order_acquire)) return nullptr;
  const uint64_t size = lun.size_bytes.load();
  if (offset > size || length > size - offset) return nullptr;  // Read says why
  TouchIo(lun);
  auto r = std::make_unique<DirectRead>(this, lun, client);
  if (lun.proxy || !lun.rec.moved_to.empty()) return nullptr;
  r->lock_ = SharedLock(mu_);
  if (lun.deleted) return nullptr;
  uint64_t pos = offset;
  uint64_t done = 0;
  while (done < length) {
    // As ReadInner: a run of blocks in consecutive slots of one tier, or of holes.
    const uint64_t lba = pos / bs_;
    const uint64_t in_block = pos % bs_;
    uint64_t n = std::min<uint64_t>(bs_ - in_block, length - done);
    const BlockRef ref = lun.map.Get(lba);
    while (done + n < length) {
      const uint64_t next = std::min<uint64_t>(bs_, length - done - n);
      const BlockRef b = lun.map.Get(lba + (in_block + n) / bs_);
      const bool joins = ref == kHole ? b == kHole
                                      : (b != kHole && RefTier(b) == RefTier(ref) &&
                                         RefSlot(b) == RefSlot(ref) + (in_block + n) / bs_);
      if (!joins) break;
      n += next;
    }
    if (ref == kHole) {
      for (uint64_t z = 0; z < n; z += kZeroBytes) {
        r->spans_.emplace_back(Zeros(), static_cast<size_t>(std::min<uint64_t>(kZeroBytes, n - z)));
      }
    } else {
      const TierStore& t = tiers_[RefTier(ref)];
      if (!t.mapping) return nullptr;
      std::span<const char> got = t.mapping->Read(RefSlot(ref) * bs_ + in_block, n, t.written_end);
      if (got.empty()) return nullptr;
      r->spans_.push_back(got);
    }
    if (r->spans_.size() > kMaxSpans) return nullptr;
    pos += n;
    done += n;
  }
  return r;
}

}  // namespace strata::storage::engine
