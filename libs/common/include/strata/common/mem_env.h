#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "strata/common/env.h"

namespace strata {

// An in-memory Env for unit tests, with fault injection: paths can be made to
// fail Stat or writes. Thread-safe (one coarse lock; tests are not hot paths).
class MemEnv final : public Env {
 public:
  Status CreateDirectories(const std::string& path) override;
  Result<PathInfo> Stat(const std::string& path) override;
  Result<std::string> ReadFile(const std::string& path) override;
  Status WriteFileAtomically(const std::string& path, std::string_view contents) override;
  Result<uint64_t> FileSystemCapacity(const std::string& path) override;
  uint64_t RandomU64() override;

  // Test controls.
  void AddBlockDevice(const std::string& path, uint64_t size_bytes);
  void SetFileSystemCapacity(uint64_t bytes);
  void FailWritesUnder(const std::string& prefix);  // writes there return INTERNAL (EIO)
  bool Exists(const std::string& path);

 private:
  std::mutex mu_;
  std::set<std::string> dirs_;                  // guarded by mu_
  std::map<std::string, std::string> files_;    // guarded by mu_
  std::map<std::string, uint64_t> block_devs_;  // guarded by mu_
  std::set<std::string> failing_prefixes_;      // guarded by mu_
  uint64_t fs_capacity_ = 1ull << 40;           // guarded by mu_
  uint64_t next_random_ = 0x5eed;               // guarded by mu_
};

}  // namespace strata
