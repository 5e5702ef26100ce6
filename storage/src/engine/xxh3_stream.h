#pragma once

#include <cstddef>
#include <cstdint>

namespace strata::storage::engine {

// Streaming XXH3-64 through libxxhash's run-time dispatch: the widest vector unit the
// CPU has (AVX2 or AVX-512) instead of the SSE2 a portable build compiles in, as
// FingerprintOf does for the dedup path. The same values as XXH3_64bits. A move's
// verification hashes every byte on both devices with it (RangeHasher, StoreHashes).
class Xxh3Stream {
 public:
  Xxh3Stream() { Reset(); }
  Xxh3Stream(const Xxh3Stream& other);
  Xxh3Stream& operator=(const Xxh3Stream& other);

  void Reset();
  void Update(const void* data, size_t n);
  uint64_t Digest() const;

 private:
  // An XXH3_state_t (xxh3_stream.cc checks the size and alignment), kept opaque so the
  // users may include xxhash.h with XXH_INLINE_ALL, which renames its types.
  alignas(64) unsigned char state_[640];
};

// XXH3-64 of `n` bytes, dispatched as Xxh3Stream.
uint64_t Xxh3Of(const void* data, size_t n);

}  // namespace strata::storage::engine
