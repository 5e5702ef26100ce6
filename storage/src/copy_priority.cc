#include "strata/storage/copy_priority.h"

#include <sched.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "copy_starvation_policy.h"

namespace strata::storage {
namespace {

std::atomic<CopyPriority> g_priority{CopyPriority::kNormal};
// Whether a thread of this process may go from SCHED_IDLE back to SCHED_OTHER
// (tested once by SetCopyPriority on a scratch thread).
std::atomic<bool> g_idle_reversible{false};

int PolicyOf(CopyPriority p) {
  switch (p) {
    case CopyPriority::kBatch:
      return SCHED_BATCH;
    case CopyPriority::kIdle:
      return SCHED_IDLE;
    case CopyPriority::kNormal:
      break;
  }
  return SCHED_OTHER;
}

// The calling thread's policy (sched_setscheduler with pid 0 is per thread on Linux).
bool SetPolicy(int policy) {
  sched_param param{};
  param.sched_priority = 0;
  return sched_setscheduler(0, policy, &param) == 0;
}

void Warn(CopyPriority p) {
  static std::atomic<bool> warned{false};
  if (!warned.exchange(true)) {
    spdlog::warn("--copy-priority {}: sched_setscheduler: {}; copies run at normal priority",
                 CopyPriorityName(p), std::strerror(errno));
  }
}

// The copy threads at SCHED_IDLE (or raised from it to SCHED_BATCH by the starvation
// guard), by thread id. A thread registers and sets its own policy under `mu`, and the
// guard changes the registered threads' policies under it, so a thread never misses a
// raise or a lower, and one that has deregistered is never changed again.
struct Registry {
  std::mutex mu;
  std::unordered_set<pid_t> tids;
  bool raised = false;
};

Registry& Copiers() {
  static auto* r = new Registry;  // never destroyed: thread_local registrations end late
  return *r;
}

std::atomic<uint64_t> g_progress{0};

bool RegisterIdleCopyThread() {
  Registry& r = Copiers();
  std::lock_guard lock(r.mu);
  if (!SetPolicy(r.raised ? SCHED_BATCH : SCHED_IDLE)) return false;
  r.tids.insert(::gettid());
  return true;
}

void DeregisterCopyThread() {
  Registry& r = Copiers();
  std::lock_guard lock(r.mu);
  r.tids.erase(::gettid());
}

// A dedicated copy thread's registration, ended when the thread exits.
struct LifelongRegistration {
  bool registered = false;
  ~LifelongRegistration() {
    if (registered) DeregisterCopyThread();
  }
};
thread_local LifelongRegistration t_lifelong;

void SetRaised(bool raised) {
  Registry& r = Copiers();
  std::lock_guard lock(r.mu);
  r.raised = raised;
  sched_param param{};
  for (pid_t tid : r.tids) (void)sched_setscheduler(tid, raised ? SCHED_BATCH : SCHED_IDLE, &param);
}

bool AnyCopyThread() {
  Registry& r = Copiers();
  std::lock_guard lock(r.mu);
  return !r.tids.empty();
}

struct Guard {
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  std::thread thread;
};
std::mutex g_guard_mu;
std::atomic<uint64_t> g_raises{0};  // CopyStarvationRaises
// GUARDED_BY(g_guard_mu). A plain pointer: no static destructor may meet its thread
// still joinable (StopCopyStarvationGuard ends it).
Guard* g_guard = nullptr;

void RunGuard(Guard* g, const CopyStarvationGuardOptions& o) {
  CopyStarvationPolicy policy({o.floor_bytes_per_second, o.window, o.hold, o.max_hold});
  std::unique_lock lock(g->mu);
  while (!g->cv.wait_for(lock, o.tick, [g] { return g->stop; })) {
    switch (policy.Tick(CopyStarvationPolicy::Clock::now(), g_progress.load(), AnyCopyThread())) {
      case CopyStarvationPolicy::Action::kRaise:
        SetRaised(true);
        g_raises.fetch_add(1, std::memory_order_relaxed);
        // A single raise may be a move's pause (its verification, its switch): only a
        // starvation that keeps coming back is worth an operator's attention.
        spdlog::log(
            policy.hold() >= o.max_hold ? spdlog::level::info : spdlog::level::debug,
            "--copy-priority idle: copies moved under half of {} MiB/s for {} ms (other work "
            "keeps the CPUs busy): copy threads at SCHED_BATCH for {} s",
            o.floor_bytes_per_second >> 20, o.window.count(), policy.hold().count() / 1000.0);
        break;
      case CopyStarvationPolicy::Action::kLower:
        SetRaised(false);
        spdlog::debug("--copy-priority idle: copy threads back at SCHED_IDLE");
        break;
      case CopyStarvationPolicy::Action::kNone:
        break;
    }
  }
  if (policy.raised()) SetRaised(false);
}

}  // namespace

Result<CopyPriority> ParseCopyPriority(const std::string& value, const std::string& flag) {
  if (value == "normal") return CopyPriority::kNormal;
  if (value == "batch") return CopyPriority::kBatch;
  if (value == "idle") return CopyPriority::kIdle;
  return InvalidArgumentError(flag + ": '" + value + "' is not one of normal, batch, idle");
}

const char* CopyPriorityName(CopyPriority p) {
  switch (p) {
    case CopyPriority::kBatch:
      return "batch";
    case CopyPriority::kIdle:
      return "idle";
    case CopyPriority::kNormal:
      break;
  }
  return "normal";
}

void SetCopyPriority(CopyPriority p) {
  g_priority = p;
  if (p != CopyPriority::kIdle) return;
  bool reversible = false;
  std::thread([&] { reversible = SetPolicy(SCHED_IDLE) && SetPolicy(SCHED_OTHER); }).join();
  g_idle_reversible = reversible;
}

CopyPriority GetCopyPriority() { return g_priority.load(); }

CopyThreadScope::CopyThreadScope(bool idle_as_batch) {
  CopyPriority p = GetCopyPriority();
  if (p == CopyPriority::kIdle && (idle_as_batch || !g_idle_reversible.load())) {
    p = CopyPriority::kBatch;
  }
  if (p == CopyPriority::kNormal || sched_getscheduler(0) != SCHED_OTHER) return;
  if (p == CopyPriority::kIdle) {
    changed_ = registered_ = RegisterIdleCopyThread();
  } else {
    changed_ = SetPolicy(PolicyOf(p));
  }
  if (!changed_) Warn(p);
}

CopyThreadScope::~CopyThreadScope() {
  if (registered_) DeregisterCopyThread();
  if (changed_) (void)SetPolicy(SCHED_OTHER);
}

void BecomeCopyThread() {
  CopyPriority p = GetCopyPriority();
  if (p == CopyPriority::kIdle && !g_idle_reversible.load()) p = CopyPriority::kBatch;
  if (p == CopyPriority::kNormal) return;
  if (p == CopyPriority::kIdle) {
    if (!t_lifelong.registered) t_lifelong.registered = RegisterIdleCopyThread();
    if (!t_lifelong.registered) Warn(p);
    return;
  }
  if (!SetPolicy(PolicyOf(p))) Warn(p);
}

void NoteCopyProgress(uint64_t bytes) { g_progress.fetch_add(bytes, std::memory_order_relaxed); }

bool StartCopyStarvationGuard(const CopyStarvationGuardOptions& options) {
  if (GetCopyPriority() != CopyPriority::kIdle || !g_idle_reversible.load()) return false;
  std::lock_guard lock(g_guard_mu);
  if (g_guard) return true;
  g_guard = new Guard;
  g_guard->thread = std::thread(RunGuard, g_guard, options);
  return true;
}

void StopCopyStarvationGuard() {
  std::lock_guard lock(g_guard_mu);
  if (!g_guard) return;
  {
    std::lock_guard g(g_guard->mu);
    g_guard->stop = true;
  }
  g_guard->cv.notify_all();
  g_guard->thread.join();
  delete g_guard;
  g_guard = nullptr;
}

uint64_t CopyStarvationRaises() { return g_raises.load(std::memory_order_relaxed); }

bool CopyThreadsRaised() {
  Registry& r = Copiers();
  std::lock_guard lock(r.mu);
  return r.raised;
}

}  // namespace strata::storage
