// Shared by the VM-tier node tests: their check reporting ("ok"/"FAIL" lines, a failure
// count) and what they check on the host after an unstage (no dm device and no connected
// nbd device left).
#pragma once

#include <filesystem>
#include <iostream>
#include <string>

#include "strata/common/status.h"

namespace strata::csi::vmtest {

// The number of failed checks so far (the test's exit status follows it).
inline int g_failures = 0;

inline void Check(bool ok, const std::string& what) {
  std::cout << (ok ? "ok   " : "FAIL ") << what << std::endl;
  if (!ok) ++g_failures;
}

inline void CheckOk(const Status& s, const std::string& what) {
  Check(s.ok(), what + (s.ok() ? "" : ": " + s.ToString()));
}

// Whether any /sys/block/nbdN is connected (has a pid: a receive thread).
inline bool AnyNbdConnected() {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (fs::directory_iterator it("/sys/block", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string n = it->path().filename().string();
    if (n.rfind("nbd", 0) == 0 && fs::exists(it->path() / "pid")) return true;
  }
  return false;
}

// Whether any device-mapper device exists.
inline bool AnyDm() {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (fs::directory_iterator it("/sys/block", ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().rfind("dm-", 0) == 0) return true;
  }
  return false;
}

// After an unstage: nothing of the volume left on the host.
inline void CheckNothingLeft(const std::string& when) {
  Check(!AnyDm(), "no dm device left " + when);
  Check(!AnyNbdConnected(), "no connected nbd device left " + when);
}

}  // namespace strata::csi::vmtest
