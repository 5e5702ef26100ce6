// A redo record for blocks a dedup LUN rewrites in their own slots through an
// in-memory tier's mapping (EngineImpl::RewriteDedupInPlace). A store into the mapping
// is not one system call: a process killed halfway through it would leave a block
// that is half old and half new bytes, which no write ever held. Only the process can
// die under an in-memory tier (its memory goes with the host), and what it stored
// before it died stays in the page cache, in the order it was stored. So the new
// blocks go to this log first, then the log says which slots they are for, then they
// go to their slots, then the log says it is done: a process that dies in between
// leaves a record the next start completes (Recover) before anything reads the slots.
//
// The log is a small file beside the tier's data file (`rewrite.log`), mapped, its
// pages allocated once: a header (the pending count, then the slots) in the first
// block, one block for each block of a rewrite after it.
//
// Not thread-safe: one rewrite at a time (the engine's lock held exclusively).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "strata/common/env.h"
#include "strata/common/result.h"

namespace strata::storage::engine {

class RewriteLog {
 public:
  // Opens (or creates) the log at `path` for rewrites of up to `max_blocks` blocks of
  // `block_size` bytes. Null when the file cannot be mapped with its pages allocated
  // (the engine then rewrites no block in place); an error when it cannot be opened.
  static Result<std::unique_ptr<RewriteLog>> Open(Env* env, const std::string& path,
                                                  uint32_t block_size, size_t max_blocks);
  ~RewriteLog();
  RewriteLog(const RewriteLog&) = delete;
  RewriteLog& operator=(const RewriteLog&) = delete;

  // A rewrite a dead process left unfinished: its blocks copied into their slots of
  // `tier` (the tier's mapping, `tier_end` bytes of its file present), then the record
  // cleared. Returns how many blocks it completed. A record naming a slot past
  // tier_end (not one this log could have written) is dropped.
  size_t Recover(char* tier, uint64_t tier_end);
  // Stores `data` (slots.size() blocks, at most max_blocks) into `slots` of `tier`,
  // through the log as above.
  void Rewrite(char* tier, std::span<const uint64_t> slots, const char* data);

  size_t max_blocks() const { return max_blocks_; }

 private:
  RewriteLog(std::unique_ptr<File> file, char* base, uint32_t block_size, size_t max_blocks)
      : file_(std::move(file)), base_(base), bs_(block_size), max_blocks_(max_blocks) {}
  uint64_t* header() const;

  std::unique_ptr<File> file_;
  char* const base_;
  const uint32_t bs_;
  const size_t max_blocks_;
};

}  // namespace strata::storage::engine
