#include "strata/nbd/testing/mem_volume.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <string>

namespace strata::nbd {

namespace {

// Chunks of at least 64 KiB, and few enough that the pointer table stays under
// 8 MiB whatever the size.
uint64_t ChunkSizeFor(uint64_t size) {
  uint64_t chunk = 64 << 10;
  while (size / chunk > (1u << 20)) chunk <<= 1;
  return chunk;
}

std::string Range(uint64_t offset, uint64_t length) {
  return std::to_string(offset) + "+" + std::to_string(length);
}

}  // namespace

// Counts a call in flight for max_concurrent.
class MemVolume::OpScope {
 public:
  explicit OpScope(MemVolume* v) : v_(v) {
    int now = v_->in_flight_.fetch_add(1) + 1;
    int prev = v_->max_concurrent_.load();
    while (now > prev && !v_->max_concurrent_.compare_exchange_weak(prev, now)) {
    }
  }
  ~OpScope() { v_->in_flight_.fetch_sub(1); }
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;

 private:
  MemVolume* v_;
};

MemVolume::MemVolume(uint64_t size_bytes, uint32_t block_size, bool read_only)
    : size_(size_bytes),
      block_size_(block_size),
      chunk_size_(ChunkSizeFor(size_bytes)),
      read_only_(read_only),
      chunk_count_((size_bytes + chunk_size_ - 1) / chunk_size_) {
  chunks_ = std::make_unique<std::atomic<char*>[]>(chunk_count_);
  for (uint64_t i = 0; i < chunk_count_; ++i) chunks_[i].store(nullptr);
}

MemVolume::~MemVolume() {
  for (uint64_t i = 0; i < chunk_count_; ++i) delete[] chunks_[i].load();
}

void MemVolume::InjectError(storage::IoKind kind, Status status) {
  std::lock_guard lock(control_mu_);
  if (status.ok()) {
    injected_.erase(kind);
  } else {
    injected_[kind] = std::move(status);
  }
  any_injected_.store(!injected_.empty());
}

MemVolume::Counters MemVolume::counters() const {
  Counters c;
  c.reads = reads_.load();
  c.writes = writes_.load();
  c.fua_writes = fua_writes_.load();
  c.write_zeroes = write_zeroes_.load();
  c.trims = trims_.load();
  c.flushes = flushes_.load();
  c.max_concurrent = max_concurrent_.load();
  return c;
}

Status MemVolume::Check(storage::IoKind kind, uint64_t offset, uint64_t length, bool write) const {
  if (any_injected_.load()) {
    std::lock_guard lock(control_mu_);
    auto it = injected_.find(kind);
    if (it != injected_.end()) return it->second;
  }
  if (write && read_only()) return PermissionDeniedError("volume is read-only");
  if (length > size_ || offset > size_ - length) {
    return OutOfRangeError("range " + Range(offset, length) + " is past the end (" +
                           std::to_string(size_) + " bytes)");
  }
  return Status::Ok();
}

Status MemVolume::Read(uint64_t offset, std::span<char> out) {
  OpScope scope(this);
  if (hook_) hook_(storage::IoKind::kRead);
  reads_.fetch_add(1);
  STRATA_RETURN_IF_ERROR(Check(storage::IoKind::kRead, offset, out.size(), false));
  uint64_t pos = offset;
  size_t done = 0;
  while (done < out.size()) {
    uint64_t chunk = pos / chunk_size_;
    uint64_t in_chunk = pos % chunk_size_;
    size_t n = static_cast<size_t>(std::min<uint64_t>(chunk_size_ - in_chunk, out.size() - done));
    {
      std::shared_lock lock(StripeFor(chunk));
      const char* data = chunks_[chunk].load(std::memory_order_relaxed);
      if (data != nullptr) {
        std::memcpy(out.data() + done, data + in_chunk, n);
      } else {
        std::memset(out.data() + done, 0, n);
      }
    }
    pos += n;
    done += n;
  }
  return Status::Ok();
}

Status MemVolume::Write(uint64_t offset, std::span<const char> data, bool fua) {
  OpScope scope(this);
  if (hook_) hook_(storage::IoKind::kWrite);
  writes_.fetch_add(1);
  if (fua) fua_writes_.fetch_add(1);
  STRATA_RETURN_IF_ERROR(Check(storage::IoKind::kWrite, offset, data.size(), true));
  uint64_t pos = offset;
  size_t done = 0;
  while (done < data.size()) {
    uint64_t chunk = pos / chunk_size_;
    uint64_t in_chunk = pos % chunk_size_;
    size_t n = static_cast<size_t>(std::min<uint64_t>(chunk_size_ - in_chunk, data.size() - done));
    std::unique_lock lock(StripeFor(chunk));
    char* p = chunks_[chunk].load(std::memory_order_relaxed);
    if (p == nullptr) {
      uint64_t limit = allocation_limit_.load();
      uint64_t prev = allocated_.fetch_add(chunk_size_);
      if (prev + chunk_size_ > limit) {
        allocated_.fetch_sub(chunk_size_);
        return ResourceExhaustedError("volume: allocation limit of " + std::to_string(limit) +
                                      " bytes reached");
      }
      p = new char[chunk_size_]();
      chunks_[chunk].store(p, std::memory_order_relaxed);
    }
    std::memcpy(p + in_chunk, data.data() + done, n);
    pos += n;
    done += n;
  }
  return Status::Ok();
}

void MemVolume::ZeroRange(uint64_t offset, uint64_t length) {
  uint64_t pos = offset;
  uint64_t end = offset + length;
  while (pos < end) {
    uint64_t chunk = pos / chunk_size_;
    uint64_t in_chunk = pos % chunk_size_;
    uint64_t n = std::min(chunk_size_ - in_chunk, end - pos);
    std::unique_lock lock(StripeFor(chunk));
    char* p = chunks_[chunk].load(std::memory_order_relaxed);
    if (p != nullptr) {
      if (n == chunk_size_) {
        chunks_[chunk].store(nullptr, std::memory_order_relaxed);
        delete[] p;
        allocated_.fetch_sub(chunk_size_);
      } else {
        std::memset(p + in_chunk, 0, n);
      }
    }
    pos += n;
  }
}

Status MemVolume::WriteZeroes(uint64_t offset, uint64_t length, bool fua) {
  OpScope scope(this);
  if (hook_) hook_(storage::IoKind::kWriteZeroes);
  write_zeroes_.fetch_add(1);
  if (fua) fua_writes_.fetch_add(1);
  STRATA_RETURN_IF_ERROR(Check(storage::IoKind::kWriteZeroes, offset, length, true));
  ZeroRange(offset, length);
  return Status::Ok();
}

Status MemVolume::Trim(uint64_t offset, uint64_t length) {
  OpScope scope(this);
  if (hook_) hook_(storage::IoKind::kTrim);
  trims_.fetch_add(1);
  STRATA_RETURN_IF_ERROR(Check(storage::IoKind::kTrim, offset, length, true));
  ZeroRange(offset, length);
  return Status::Ok();
}

Status MemVolume::Flush() {
  OpScope scope(this);
  if (hook_) hook_(storage::IoKind::kFlush);
  flushes_.fetch_add(1);
  return Check(storage::IoKind::kFlush, 0, 0, false);
}

}  // namespace strata::nbd
