#include "rewrite_log.h"

#include <atomic>
#include <cstring>

#include "tier_mapping.h"

namespace strata::storage::engine {

// header()[0]: the pending rewrite's block count (0: none); header()[1 + i]: block
// i's slot. Block i's bytes lie at base_ + (1 + i) * bs_.
uint64_t* RewriteLog::header() const { return reinterpret_cast<uint64_t*>(base_); }

Result<std::unique_ptr<RewriteLog>> RewriteLog::Open(Env* env, const std::string& path,
                                                     uint32_t block_size, size_t max_blocks) {
  if ((1 + max_blocks) * sizeof(uint64_t) > block_size) {
    return InvalidArgumentError("rewrite log: " + std::to_string(max_blocks) +
                                " slots do not fit its header block");
  }
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<File> file, env->OpenFile(path, true));
  const uint64_t bytes = (1 + max_blocks) * uint64_t{block_size};
  STRATA_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  if (size < bytes) STRATA_RETURN_IF_ERROR(file->Truncate(bytes));
  char* base = file->MapShared(bytes);
  if (base == nullptr || !file->InMemory() || !PopulateForWrite({base, bytes})) {
    return std::unique_ptr<RewriteLog>();
  }
  return std::unique_ptr<RewriteLog>(new RewriteLog(std::move(file), base, block_size, max_blocks));
}

RewriteLog::~RewriteLog() = default;

size_t RewriteLog::Recover(char* tier, uint64_t tier_end) {
  std::atomic_ref<uint64_t> count(header()[0]);
  const uint64_t n = count.load(std::memory_order_acquire);
  if (n == 0) return 0;
  bool whole = n <= max_blocks_;
  for (uint64_t i = 0; whole && i < n; ++i) {
    const uint64_t slot = header()[1 + i];
    whole = slot > 0 && slot < tier_end / bs_;
  }
  for (uint64_t i = 0; whole && i < n; ++i) {
    std::memcpy(tier + header()[1 + i] * bs_, base_ + (1 + i) * bs_, bs_);
  }
  count.store(0, std::memory_order_release);
  return whole ? static_cast<size_t>(n) : 0;
}

void RewriteLog::Rewrite(char* tier, std::span<const uint64_t> slots, const char* data) {
  std::atomic_ref<uint64_t> count(header()[0]);
  std::memcpy(base_ + bs_, data, slots.size() * bs_);
  for (size_t i = 0; i < slots.size(); ++i) header()[1 + i] = slots[i];
  // Release: the blocks and their slots are in the log before the count says so, and
  // the count before any slot is touched (the stores below come after it in program
  // order, which is the order the page cache keeps when the process dies).
  count.store(slots.size(), std::memory_order_release);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  for (size_t i = 0; i < slots.size(); ++i) {
    std::memcpy(tier + slots[i] * bs_, data + i * bs_, bs_);
  }
  count.store(0, std::memory_order_release);
}

}  // namespace strata::storage::engine
