#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "strata/common/env.h"

namespace strata {

// An in-memory Env for unit tests, with fault injection in the manner of
// leveldb's fault_injection_test:
//  - FailWritesUnder(prefix): writes and syncs below a path return INTERNAL (EIO);
//  - FailAfterWrites(n): the n+1-th and later data writes fail, anywhere;
//  - SimulatePowerLoss(): every file falls back to what was last synced, as after a
//    power cut (WriteFileAtomically counts as synced: it fsyncs);
//  - SetWriteHook(fn): fn(path) runs before each data write (File::WriteAt), on the
//    writing thread and without any lock held, so a test can hold a writer at a
//    chosen point (with latches) and interleave another thread's work there.
// Thread-safe (coarse locks; tests are not hot paths).
class MemEnv final : public Env {
 public:
  Status CreateDirectories(const std::string& path) override;
  Result<PathInfo> Stat(const std::string& path) override;
  Result<std::string> ReadFile(const std::string& path) override;
  Status WriteFileAtomically(const std::string& path, std::string_view contents) override;
  Result<uint64_t> FileSystemCapacity(const std::string& path) override;
  Result<std::unique_ptr<File>> OpenFile(const std::string& path, bool create) override;
  Status RemoveFile(const std::string& path) override;
  uint64_t RandomU64() override;

  // Test controls.
  void AddBlockDevice(const std::string& path, uint64_t size_bytes);
  void SetFileSystemCapacity(uint64_t bytes);
  void FailWritesUnder(const std::string& prefix);
  void ClearFaults();
  void FailAfterWrites(int64_t n);
  void SimulatePowerLoss();
  using WriteHook = std::function<void(const std::string& path)>;
  void SetWriteHook(WriteHook hook);
  bool Exists(const std::string& path);

  struct FileData {
    std::mutex mu;
    std::string current;  // guarded by mu
    std::string synced;   // guarded by mu
    bool block_device = false;
  };

  // Used by the File implementation.
  Status CheckWrite(const std::string& path);
  void RunWriteHook(const std::string& path);

 private:
  std::mutex mu_;
  std::set<std::string> dirs_;                              // guarded by mu_
  std::map<std::string, std::shared_ptr<FileData>> files_;  // guarded by mu_
  std::set<std::string> failing_prefixes_;                  // guarded by mu_
  uint64_t fs_capacity_ = 1ull << 40;                       // guarded by mu_
  uint64_t next_random_ = 0x5eed;                           // guarded by mu_
  std::atomic<int64_t> writes_left_{-1};                    // < 0: unlimited
  std::shared_ptr<const WriteHook> write_hook_;             // guarded by mu_
};

}  // namespace strata
