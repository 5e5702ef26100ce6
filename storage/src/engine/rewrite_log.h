// A redo record for blocks rewritten in their own slots through an in-memory tier's
// mapping (EngineImpl::RewriteDedupInPlace, OverwriteInPlace). A store into the
// mapping is not one system call: a process killed halfway through it would leave a
// block that is half old and half new bytes, which no write ever held. Only the
// process can die under an in-memory tier (its memory goes with the host), and what
// it stored before it died stays in the page cache, in the order it was stored. So
// the new blocks go to this log first, then the log says which slots they are for,
// then they go to their slots, then the log says it is done: a process that dies in
// between leaves a record the next start completes (Recover) before anything reads
// the slots.
//
// Rewrites run in lanes, one writer a lane, so writers of different blocks (under
// the engine's lock held shared) do not wait for each other. Two lanes never hold the
// same slot at once: a block's writers hold its stripe.
//
// The log is a small file beside the tier's data file (`rewrite.log`), mapped, its
// pages allocated once: the lanes' headers (the pending count, then the slots, 64
// bytes a lane) in the first block, then each lane's blocks.
#pragma once

#include <atomic>
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
  static constexpr size_t kMaxBlocks = 7;  // a lane's header: its count and 7 slots
  static constexpr size_t kMaxLanes = 64;

  // Opens (or creates) the log at `path` with `lanes` lanes for rewrites of up to
  // `max_blocks` blocks of `block_size` bytes. Null when the file is not in memory or
  // cannot be mapped with its pages allocated (the engine then rewrites no block
  // through its mapping); an error when it cannot be opened or the sizes are wrong.
  static Result<std::unique_ptr<RewriteLog>> Open(Env* env, const std::string& path,
                                                  uint32_t block_size, size_t max_blocks,
                                                  size_t lanes);
  ~RewriteLog();
  RewriteLog(const RewriteLog&) = delete;
  RewriteLog& operator=(const RewriteLog&) = delete;

  // The rewrites a dead process left unfinished: their blocks copied into their slots
  // of `tier` (the tier's mapping, `tier_end` bytes of its file present), then the
  // records cleared. Returns how many blocks it completed. A record naming a slot past
  // tier_end (not one this log could have written) is dropped. Before any Acquire.
  size_t Recover(char* tier, uint64_t tier_end);

  // A free lane, or -1 when every lane is in use (the caller writes another way).
  int Acquire();
  void Release(int lane);
  // Stores `data` (slots.size() blocks, at most max_blocks) into `slots` of `tier`,
  // through lane `lane` (Acquire's) as above.
  void Rewrite(int lane, char* tier, std::span<const uint64_t> slots, const char* data);

 private:
  RewriteLog(std::unique_ptr<File> file, char* base, uint32_t block_size, size_t max_blocks,
             size_t lanes);
  uint64_t* header(size_t lane) const;
  char* blocks(size_t lane) const;

  std::unique_ptr<File> file_;
  char* const base_;
  const uint32_t bs_;
  const size_t max_blocks_;
  const size_t lanes_;
  std::atomic<uint64_t> free_;  // bit i: lane i is free
};

}  // namespace strata::storage::engine
