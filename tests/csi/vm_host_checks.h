// What the VM-tier node tests check on the host after an unstage: no dm device and no
// connected nbd device left.
#pragma once

#include <filesystem>
#include <string>

namespace strata::csi::vmtest {

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

}  // namespace strata::csi::vmtest
