#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <vector>

#include "strata/storage/io_stats.h"
#include "strata/storage/volume.h"

namespace strata::nbd {

// An in-memory Volume for tests and the test server: sparse (storage is allocated
// in chunks on first write and freed by Trim/WriteZeroes of whole chunks, so a
// 1 TiB export costs only what is written), honouring read_only, with test
// controls: injected errors, an allocation limit (RESOURCE_EXHAUSTED), a hook run
// at the start of every call, and call counters.
//
// Thread-safe. Chunk contents are guarded by striped reader/writer locks, so calls
// on different chunks run in parallel and a write is atomic per chunk (the Volume
// contract asks for per block). Flush and FUA are counted; memory is "durable".
class MemVolume final : public storage::Volume {
 public:
  struct Counters {
    uint64_t reads = 0;
    uint64_t writes = 0;
    uint64_t fua_writes = 0;  // Write or WriteZeroes with fua=true
    uint64_t write_zeroes = 0;
    uint64_t trims = 0;
    uint64_t flushes = 0;
    int max_concurrent = 0;  // most calls seen in progress at once
  };

  // REQUIRES: block_size > 0.
  explicit MemVolume(uint64_t size_bytes, uint32_t block_size = 4096, bool read_only = false);
  ~MemVolume() override;

  uint64_t size_bytes() const override { return size_; }
  uint32_t block_size() const override { return block_size_; }
  bool read_only() const override { return read_only_.load(); }

  Status Read(uint64_t offset, std::span<char> out) override;
  Status Write(uint64_t offset, std::span<const char> data, bool fua) override;
  Status WriteZeroes(uint64_t offset, uint64_t length, bool fua) override;
  Status Trim(uint64_t offset, uint64_t length) override;
  Status Flush() override;
  storage::LunIoStats* io_stats() override { return &stats_; }

  // Test controls; each is thread-safe.
  void SetReadOnly(bool read_only) { read_only_.store(read_only); }
  // Every later call of `kind` fails with `status` until cleared (OK clears).
  void InjectError(storage::IoKind kind, Status status);
  // Writes needing more than this many allocated bytes fail RESOURCE_EXHAUSTED.
  void SetAllocationLimit(uint64_t bytes) { allocation_limit_.store(bytes); }
  // Runs at the start of every I/O call, on the calling thread, outside all locks.
  // REQUIRES: set before the volume is shared with other threads.
  void SetBeforeOpHook(std::function<void(storage::IoKind)> hook) { hook_ = std::move(hook); }

  Counters counters() const;
  uint64_t allocated_bytes() const { return allocated_.load(); }
  uint64_t chunk_size() const { return chunk_size_; }
  int in_flight() const { return in_flight_.load(); }

 private:
  static constexpr int kStripes = 64;
  class OpScope;

  Status Check(storage::IoKind kind, uint64_t offset, uint64_t length, bool write) const;
  std::shared_mutex& StripeFor(uint64_t chunk) { return stripes_[chunk % kStripes]; }
  // Zeroes [offset, offset+length), freeing whole chunks.
  void ZeroRange(uint64_t offset, uint64_t length);

  const uint64_t size_;
  const uint32_t block_size_;
  const uint64_t chunk_size_;
  std::atomic<bool> read_only_;
  // Chunk pointers: null is a hole. Set and cleared under the chunk's stripe lock
  // held exclusively; read under it held shared.
  std::unique_ptr<std::atomic<char*>[]> chunks_;
  const uint64_t chunk_count_;
  std::shared_mutex stripes_[kStripes];

  std::atomic<uint64_t> allocated_{0};
  std::atomic<uint64_t> allocation_limit_{UINT64_MAX};
  std::function<void(storage::IoKind)> hook_;

  mutable std::mutex control_mu_;
  std::map<storage::IoKind, Status> injected_;  // guarded by control_mu_
  std::atomic<bool> any_injected_{false};

  std::atomic<uint64_t> reads_{0}, writes_{0}, fua_writes_{0}, write_zeroes_{0}, trims_{0},
      flushes_{0};
  std::atomic<int> in_flight_{0};
  std::atomic<int> max_concurrent_{0};
  storage::LunIoStats stats_;
};

}  // namespace strata::nbd
