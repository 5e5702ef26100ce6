#include "rewrite_log.h"

#include <cstring>

#include "tier_mapping.h"

namespace strata::storage::engine {

namespace {
constexpr size_t kLaneHeaderWords = 1 + RewriteLog::kMaxBlocks;  // 64 bytes
}  // namespace

RewriteLog::RewriteLog(std::unique_ptr<File> file, char* base, uint32_t block_size,
                       size_t max_blocks, size_t lanes)
    : file_(std::move(file)),
      base_(base),
      bs_(block_size),
      max_blocks_(max_blocks),
      lanes_(lanes),
      free_(lanes == 64 ? ~uint64_t{0} : (uint64_t{1} << lanes) - 1) {}

RewriteLog::~RewriteLog() = default;

// header(l)[0]: lane l's pending block count (0: none); header(l)[1 + i]: block i's
// slot. Its blocks follow the header block, max_blocks_ a lane.
uint64_t* RewriteLog::header(size_t lane) const {
  return reinterpret_cast<uint64_t*>(base_) + lane * kLaneHeaderWords;
}
char* RewriteLog::blocks(size_t lane) const { return base_ + (1 + lane * max_blocks_) * bs_; }

Result<std::unique_ptr<RewriteLog>> RewriteLog::Open(Env* env, const std::string& path,
                                                     uint32_t block_size, size_t max_blocks,
                                                     size_t lanes) {
  if (max_blocks == 0 || max_blocks > kMaxBlocks || lanes == 0 || lanes > kMaxLanes ||
      lanes * kLaneHeaderWords * sizeof(uint64_t) > block_size) {
    return InvalidArgumentError("rewrite log: " + std::to_string(lanes) + " lanes of " +
                                std::to_string(max_blocks) + " blocks do not fit its header");
  }
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<File> file, env->OpenFile(path, true));
  const uint64_t bytes = (1 + lanes * max_blocks) * uint64_t{block_size};
  STRATA_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  if (size < bytes) STRATA_RETURN_IF_ERROR(file->Truncate(bytes));
  char* base = file->MapShared(bytes);
  if (base == nullptr || !file->InMemory() || !PopulateForWrite({base, bytes})) {
    return std::unique_ptr<RewriteLog>();
  }
  return std::unique_ptr<RewriteLog>(
      new RewriteLog(std::move(file), base, block_size, max_blocks, lanes));
}

size_t RewriteLog::Recover(char* tier, uint64_t tier_end) {
  size_t done = 0;
  // A log made with more lanes than this one has: their records are read too.
  const size_t lanes = std::min<size_t>(bs_ / (kLaneHeaderWords * sizeof(uint64_t)), kMaxLanes);
  for (size_t l = 0; l < lanes; ++l) {
    std::atomic_ref<uint64_t> count(header(l)[0]);
    const uint64_t n = count.load(std::memory_order_acquire);
    if (n == 0) continue;
    bool whole = l < lanes_ && n <= max_blocks_;
    for (uint64_t i = 0; whole && i < n; ++i) {
      const uint64_t slot = header(l)[1 + i];
      whole = slot > 0 && slot < tier_end / bs_;
    }
    for (uint64_t i = 0; whole && i < n; ++i) {
      std::memcpy(tier + header(l)[1 + i] * bs_, blocks(l) + i * bs_, bs_);
    }
    count.store(0, std::memory_order_release);
    if (whole) done += static_cast<size_t>(n);
  }
  return done;
}

int RewriteLog::Acquire() {
  uint64_t f = free_.load(std::memory_order_relaxed);
  while (f != 0) {
    const int lane = __builtin_ctzll(f);
    if (free_.compare_exchange_weak(f, f & ~(uint64_t{1} << lane), std::memory_order_acquire)) {
      return lane;
    }
  }
  return -1;
}

void RewriteLog::Release(int lane) {
  free_.fetch_or(uint64_t{1} << lane, std::memory_order_release);
}

void RewriteLog::Rewrite(int lane, char* tier, std::span<const uint64_t> slots, const char* data) {
  uint64_t* h = header(static_cast<size_t>(lane));
  std::atomic_ref<uint64_t> count(h[0]);
  std::memcpy(blocks(static_cast<size_t>(lane)), data, slots.size() * bs_);
  for (size_t i = 0; i < slots.size(); ++i) h[1 + i] = slots[i];
  // Release: the blocks and their slots are in the log before the count says so. The
  // fence: the count before any slot is touched (the stores below come after it in
  // program order, the order the page cache keeps when the process dies).
  count.store(slots.size(), std::memory_order_release);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  for (size_t i = 0; i < slots.size(); ++i) {
    std::memcpy(tier + slots[i] * bs_, data + i * bs_, bs_);
  }
  count.store(0, std::memory_order_release);
}

}  // namespace strata::storage::engine
