#include "strata/storage/copy_priority.h"

#include <sched.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

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

CopyThreadScope::CopyThreadScope() {
  CopyPriority p = GetCopyPriority();
  if (p == CopyPriority::kIdle && !g_idle_reversible.load()) p = CopyPriority::kBatch;
  if (p == CopyPriority::kNormal || sched_getscheduler(0) != SCHED_OTHER) return;
  changed_ = SetPolicy(PolicyOf(p));
  if (!changed_) Warn(p);
}

CopyThreadScope::~CopyThreadScope() {
  if (changed_) (void)SetPolicy(SCHED_OTHER);
}

void BecomeCopyThread() {
  const CopyPriority p = GetCopyPriority();
  if (p == CopyPriority::kNormal) return;
  if (!SetPolicy(PolicyOf(p))) Warn(p);
}

}  // namespace strata::storage
