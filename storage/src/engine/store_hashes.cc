#include "store_hashes.h"

#include <algorithm>
#include <cstring>

#include "xxh3_stream.h"

namespace strata::storage::engine {
namespace {

constexpr size_t kZeroBytes = 64 << 10;

const char* Zeros() {
  static const std::vector<char> zeros(kZeroBytes, 0);
  return zeros.data();
}

void FeedZeros(Xxh3Stream* xx, uint64_t n) {
  while (n > 0) {
    const uint64_t k = std::min<uint64_t>(n, kZeroBytes);
    xx->Update(Zeros(), static_cast<size_t>(k));
    n -= k;
  }
}

// Walks a write's pieces in order.
class Cursor {
 public:
  explicit Cursor(std::span<const std::span<const char>> pieces) : pieces_(pieces) {}

  // Passes the next n bytes to fn(data, size) piece by piece (nullptr: none, skip).
  template <typename Fn>
  void Take(uint64_t n, Fn&& fn) {
    while (n > 0 && i_ < pieces_.size()) {
      const auto& p = pieces_[i_];
      const size_t k = static_cast<size_t>(std::min<uint64_t>(n, p.size() - off_));
      fn(p.data() + off_, k);
      off_ += k;
      n -= k;
      if (off_ == p.size()) {
        ++i_;
        off_ = 0;
      }
    }
  }

 private:
  std::span<const std::span<const char>> pieces_;
  size_t i_ = 0;
  size_t off_ = 0;
};

}  // namespace

struct StoreHashes::Partial {
  Xxh3Stream xx;
  uint64_t next = 0;                 // the in-order prefix ends here (LUN offset)
  std::bitset<kMaxGranules> stored;  // granules of the range stored at all
};

StoreHashes::StoreHashes(uint64_t size_bytes, uint32_t granule)
    : size_(size_bytes), granule_(granule), ranges_(range_count()) {}

StoreHashes::~StoreHashes() = default;

bool StoreHashes::enabled() const {
  std::lock_guard lock(mu_);
  return enabled_;
}

void StoreHashes::Disable() {
  std::lock_guard lock(mu_);
  enabled_ = false;
  std::vector<Range>().swap(ranges_);
}

uint64_t StoreHashes::RangeLength(uint64_t index) const {
  return std::min(size_, (index + 1) * kRangeBytes) - index * kRangeBytes;
}

uint64_t StoreHashes::ZeroHash(uint64_t length) {
  if (zero_hash_length_ != length) {
    Xxh3Stream xx;
    FeedZeros(&xx, length);
    zero_hash_ = xx.Digest();
    zero_hash_length_ = length;
  }
  return zero_hash_;
}

void StoreHashes::Forget(Range& r) {
  r.state = Range::State::kUnknown;
  r.partial.reset();
}

void StoreHashes::Stored(uint64_t offset, std::span<const std::span<const char>> pieces) {
  uint64_t length = 0;
  for (const auto& p : pieces) length += p.size();
  if (length == 0) return;
  Record(offset, length, pieces);
}

void StoreHashes::StoredZeros(uint64_t offset, uint64_t length) { Record(offset, length, {}); }

void StoreHashes::Failed(uint64_t offset, uint64_t length) {
  std::lock_guard lock(mu_);
  if (!enabled_ || length == 0 || offset >= size_) return;
  const uint64_t end = std::min(size_, offset + length);
  for (uint64_t i = offset / kRangeBytes; i * kRangeBytes < end; ++i) Forget(ranges_[i]);
}

void StoreHashes::Record(uint64_t offset, uint64_t length,
                         std::span<const std::span<const char>> pieces) {
  std::lock_guard lock(mu_);
  if (!enabled_ || offset >= size_) return;
  const bool zeros = pieces.empty();
  Cursor data(pieces);
  const uint64_t end = std::min(size_, offset + length);
  for (uint64_t pos = offset; pos < end;) {
    const uint64_t index = pos / kRangeBytes;
    const uint64_t rs = index * kRangeBytes;
    const uint64_t re = rs + RangeLength(index);
    const uint64_t seg_end = std::min(end, re);
    const uint64_t n = seg_end - pos;
    Range& r = ranges_[index];
    bool hashed = false;
    if (r.state == Range::State::kDone) {
      Forget(r);  // stored again
    } else if (r.state == Range::State::kFresh && zeros && pos == rs && seg_end == re) {
      r.state = Range::State::kDone;  // zeros over zeros, the whole range
      r.hash = ZeroHash(re - rs);
    } else if (r.state != Range::State::kUnknown) {
      if (r.state == Range::State::kFresh) {
        r.partial = std::make_unique<Partial>();
        r.partial->next = rs;
        r.state = Range::State::kHashing;
      }
      Partial& p = *r.partial;
      const uint64_t g0 = (pos - rs) / granule_;
      const uint64_t g1 = (seg_end - 1 - rs) / granule_;
      bool again = false;
      for (uint64_t g = g0; g <= g1 && !again; ++g) again = p.stored[g];
      if (again) {
        Forget(r);
      } else {
        for (uint64_t g = g0; g <= g1; ++g) p.stored[g] = true;
        if (pos == p.next) {
          if (zeros) {
            FeedZeros(&p.xx, n);
          } else {
            data.Take(n, [&](const char* d, size_t k) { p.xx.Update(d, k); });
          }
          hashed = true;
          p.next = seg_end;
          if (p.next == re) {
            r.hash = p.xx.Digest();
            r.state = Range::State::kDone;
            r.partial.reset();
          }
        }
      }
    }
    if (!zeros && !hashed) data.Take(n, [](const char*, size_t) {});
    pos = seg_end;
  }
}

Result<std::optional<uint64_t>> StoreHashes::Checksum(uint64_t index, const ReadFn& read) {
  std::lock_guard lock(mu_);
  if (!enabled_ || index >= ranges_.size()) return std::optional<uint64_t>();
  Range& r = ranges_[index];
  const uint64_t rs = index * kRangeBytes;
  const uint64_t re = rs + RangeLength(index);
  switch (r.state) {
    case Range::State::kFresh:
      return std::optional<uint64_t>(ZeroHash(re - rs));
    case Range::State::kDone:
      return std::optional<uint64_t>(r.hash);
    case Range::State::kUnknown:
      return std::optional<uint64_t>();
    case Range::State::kHashing:
      break;
  }
  // The in-order prefix is hashed; after it, blocks stored out of order are read
  // back, and blocks never stored are the zeros the LUN was created with.
  const Partial& p = *r.partial;
  Xxh3Stream xx = p.xx;
  std::vector<char> buf;
  for (uint64_t pos = p.next; pos < re;) {
    const uint64_t g = (pos - rs) / granule_;
    const bool stored = p.stored[g];
    uint64_t run_end = std::min(re, rs + (g + 1) * granule_);
    while (run_end < re && p.stored[(run_end - rs) / granule_] == stored) {
      run_end = std::min(re, run_end + granule_);
    }
    const uint64_t n = run_end - pos;
    if (stored) {
      buf.resize(static_cast<size_t>(n));
      STRATA_RETURN_IF_ERROR(read(pos, std::span<char>(buf.data(), buf.size())));
      xx.Update(buf.data(), buf.size());
    } else {
      FeedZeros(&xx, n);
    }
    pos = run_end;
  }
  return std::optional<uint64_t>(xx.Digest());
}

}  // namespace strata::storage::engine
