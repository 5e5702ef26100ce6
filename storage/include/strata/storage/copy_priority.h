#pragma once

#include <chrono>
#include <cstdint>
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
//    copies get only the CPU nothing else wants. On a host kept busy (by the clients
//    or other processes) a move would starve: the starvation guard below raises the
//    copy threads to SCHED_BATCH while they do. Where this process may not leave
//    SCHED_IDLE again (no CAP_SYS_NICE, RLIMIT_NICE 0) copy threads use kBatch.
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
//
// idle_as_batch: kBatch where the copy priority is kIdle, for threads that serve more
// than copies (the gRPC server's, which answer management calls too).
class CopyThreadScope {
 public:
  explicit CopyThreadScope(bool idle_as_batch = false);
  ~CopyThreadScope();
  CopyThreadScope(const CopyThreadScope&) = delete;
  CopyThreadScope& operator=(const CopyThreadScope&) = delete;

 private:
  bool changed_ = false;
  bool registered_ = false;  // with the starvation guard (kIdle)
};

// For a thread that only copies (a move's pass or stream thread): the process's copy
// priority for the rest of its life.
void BecomeCopyThread();

// kIdle's starvation guard. While it runs, a thread at the normal priority samples the
// copies' progress (NoteCopyProgress) every `tick`; when copy threads exist and the last
// `window` moved less than half `floor_bytes_per_second`, every copy thread is raised
// to SCHED_BATCH for `hold` (doubled while the starvation keeps coming back, up to
// `max_hold`), then put back at SCHED_IDLE (CopyStarvationPolicy). A copy slow for
// another reason is raised too, at no cost beyond kBatch's.
//
// The window is short because a copy thread starved while it holds one of the engine's
// locks also holds up the clients' requests that wait for that lock (SCHED_IDLE has no
// priority inheritance): on a host whose every CPU is kept busy, such a wait lasts until
// the next raise, at most a window and a tick. Where any CPU is free, the scheduler
// moves the starved thread there at once.
struct CopyStarvationGuardOptions {
  uint64_t floor_bytes_per_second = 32ull << 20;
  std::chrono::milliseconds tick{100};
  std::chrono::milliseconds window{500};
  std::chrono::milliseconds hold{2000};
  std::chrono::milliseconds max_hold{32000};
};
// Starts the guard when the copy priority is kIdle and this process may leave
// SCHED_IDLE; false (nothing started) otherwise. Idempotent; thread-safe.
bool StartCopyStarvationGuard(const CopyStarvationGuardOptions& options);
// Stops it (copy threads back at SCHED_IDLE if raised). Idempotent; thread-safe.
void StopCopyStarvationGuard();
// `bytes` copied (a device move's pass, a move's writes on its target): the engine's
// copy pacing reports every copy's bytes. Thread-safe, lock-free.
void NoteCopyProgress(uint64_t bytes);
// Whether the guard holds the copy threads at SCHED_BATCH now.
bool CopyThreadsRaised();
// Times the guard raised the copy threads since the process started (the metric
// strata_copy_starvation_raises_total).
uint64_t CopyStarvationRaises();

}  // namespace strata::storage
