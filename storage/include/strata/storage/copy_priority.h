#pragma once

#include <string>

#include "strata/common/result.h"
#include "strata/common/status.h"

namespace strata::storage {

// How a device's background copies are scheduled against its clients' requests on
// the same cores (strata-stored --copy-priority). Copy threads: a device move's
// source pass and its send streams, the target's handling of the move's messages
// and checksum requests, tier moves and dedup folds; and strata-stored starts its
// gRPC server (whose threads receive and send the moves' messages) at this priority,
// its NBD server at the normal one.
//  - kNormal: like every other thread (SCHED_OTHER, nice 0).
//  - kBatch: SCHED_BATCH: a copy thread waking never preempts a client's thread.
//  - kIdle: SCHED_IDLE: a client's thread waking preempts a copy thread at once, and
//    copies get only the CPU nothing else wants: on a host saturated by other
//    processes a move can starve.
enum class CopyPriority { kNormal, kBatch, kIdle };

// "normal" | "batch" | "idle"; INVALID_ARGUMENT naming `flag` otherwise.
Result<CopyPriority> ParseCopyPriority(const std::string& value, const std::string& flag);
const char* CopyPriorityName(CopyPriority p);

// The process's copy priority (kNormal until set), set once at startup.
void SetCopyPriority(CopyPriority p);
CopyPriority GetCopyPriority();

// Runs the calling thread at the process's copy priority while it exists, then puts
// it back to SCHED_OTHER. For threads that serve other work afterwards (gRPC
// handlers): when this process may not leave SCHED_IDLE again (no CAP_SYS_NICE, an
// RLIMIT_NICE of 0) those get kBatch instead of kIdle, so a pool thread never stays
// idle-scheduled for later requests. A failed change leaves the thread as it was.
class CopyThreadScope {
 public:
  CopyThreadScope();
  ~CopyThreadScope();
  CopyThreadScope(const CopyThreadScope&) = delete;
  CopyThreadScope& operator=(const CopyThreadScope&) = delete;

 private:
  bool changed_ = false;
};

// For a thread that only copies (a move's pass or stream thread): the process's copy
// priority for the rest of its life.
void BecomeCopyThread();

}  // namespace strata::storage
