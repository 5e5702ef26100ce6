#pragma once

#include <bitset>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <vector>

#include "strata/common/result.h"

namespace strata::storage::engine {

// The target's half of a device move's verification, taken while it stores the
// move's messages instead of reading the whole copy back at the end: per
// kRangeBytes range of the LUN, the XXH3-64 of its bytes as they were stored
// (Engine::LunChecksums then answers from it). Messages land in any order over
// several streams and a later pass overwrites what an earlier one stored, so each
// range keeps:
//   - the bytes from its start that were stored in order, each once: hashed as they
//     were stored (a streaming XXH3 state, `next` = where that prefix ends);
//   - which blocks (granules of `granule` bytes) were stored at all.
// A block stored twice (an overwrite, or two writes in flight to it) makes the range
// unknown: it is read back and hashed at verification, as before. A block stored out
// of order (past `next`) is read back at verification; a block never stored is
// still zeros (the LUN was created empty), so it is hashed as zeros. A store that
// failed makes its ranges unknown. So a range's checksum is the stored bytes' XXH3,
// or the read-back's: a block the target did not store, or stored other bytes into
// than the source sent, makes it differ from the source's.
//
// Honest only if every change of the LUN's bytes goes through Stored/StoredZeros/
// Failed, and Checksum never runs between a store and its record: a write holds
// StoreScope (shared) from before it stores until it recorded; Checksums holds
// ChecksumScope (exclusive). Thread-safe.
class StoreHashes {
 public:
  static constexpr uint64_t kRangeBytes = 1ull << 20;
  // Reads stored bytes of the LUN (for blocks stored out of order).
  using ReadFn = std::function<Status(uint64_t offset, std::span<char> out)>;

  // `granule`: the LUN's block size, a power of two from 4096 to kRangeBytes.
  StoreHashes(uint64_t size_bytes, uint32_t granule);
  ~StoreHashes();

  std::shared_lock<std::shared_mutex> StoreScope() { return std::shared_lock(scope_mu_); }
  std::unique_lock<std::shared_mutex> ChecksumScope() { return std::unique_lock(scope_mu_); }

  // Bytes [offset, offset + total size of pieces) were stored: these bytes, in order.
  void Stored(uint64_t offset, std::span<const std::span<const char>> pieces);
  // Bytes [offset, offset + length) were stored as zeros.
  void StoredZeros(uint64_t offset, uint64_t length);
  // A store to [offset, offset + length) failed (maybe part-way): unknown contents.
  void Failed(uint64_t offset, uint64_t length);
  // No more hashing (the copy was accepted, or the LUN resized): frees the state;
  // every range is unknown from then on.
  void Disable();
  bool enabled() const;

  // XXH3-64 of range `index`'s stored bytes, or nullopt when unknown (the caller reads
  // the range and hashes it). Call under ChecksumScope.
  Result<std::optional<uint64_t>> Checksum(uint64_t index, const ReadFn& read);

  uint64_t range_count() const { return (size_ + kRangeBytes - 1) / kRangeBytes; }

 private:
  static constexpr size_t kMaxGranules = kRangeBytes / 4096;
  struct Partial;
  struct Range {
    enum class State : uint8_t { kFresh, kHashing, kDone, kUnknown };
    State state = State::kFresh;
    uint64_t hash = 0;                 // kDone
    std::unique_ptr<Partial> partial;  // kHashing
  };

  // data: the stored bytes of [offset, offset + length) as pieces; empty: zeros.
  void Record(uint64_t offset, uint64_t length, std::span<const std::span<const char>> pieces);
  void Forget(Range& r);
  uint64_t RangeLength(uint64_t index) const;
  uint64_t ZeroHash(uint64_t length);

  const uint64_t size_;
  const uint32_t granule_;
  std::shared_mutex scope_mu_;
  mutable std::mutex mu_;  // guards everything below
  bool enabled_ = true;
  std::vector<Range> ranges_;
  uint64_t zero_hash_length_ = 0;
  uint64_t zero_hash_ = 0;
};

}  // namespace strata::storage::engine
