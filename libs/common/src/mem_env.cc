#include "strata/common/mem_env.h"

#include <cerrno>

namespace strata {
namespace {

std::string Parent(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

Status MemEnv::CreateDirectories(const std::string& path) {
  std::lock_guard lock(mu_);
  if (files_.count(path) || block_devs_.count(path)) {
    return FailedPreconditionError(path + " exists and is not a directory");
  }
  for (const auto& prefix : failing_prefixes_) {
    if (path.rfind(prefix, 0) == 0) return ErrnoError("mkdir " + path, EIO);
  }
  for (std::string p = path; p != "/" && !p.empty(); p = Parent(p)) dirs_.insert(p);
  return Status::Ok();
}

Result<PathInfo> MemEnv::Stat(const std::string& path) {
  std::lock_guard lock(mu_);
  if (dirs_.count(path)) return PathInfo{PathKind::kDirectory, 0};
  if (auto it = files_.find(path); it != files_.end()) {
    return PathInfo{PathKind::kRegularFile, it->second.size()};
  }
  if (auto it = block_devs_.find(path); it != block_devs_.end()) {
    return PathInfo{PathKind::kBlockDevice, it->second};
  }
  return ErrnoError("stat " + path, ENOENT);
}

Result<std::string> MemEnv::ReadFile(const std::string& path) {
  std::lock_guard lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return ErrnoError("open " + path, ENOENT);
  return it->second;
}

Status MemEnv::WriteFileAtomically(const std::string& path, std::string_view contents) {
  std::lock_guard lock(mu_);
  for (const auto& prefix : failing_prefixes_) {
    if (path.rfind(prefix, 0) == 0) return ErrnoError("write " + path, EIO);
  }
  if (!dirs_.count(Parent(path))) return ErrnoError("open " + path, ENOENT);
  files_[path] = std::string(contents);
  return Status::Ok();
}

Result<uint64_t> MemEnv::FileSystemCapacity(const std::string& path) {
  std::lock_guard lock(mu_);
  if (!dirs_.count(path) && !files_.count(path)) return ErrnoError("statvfs " + path, ENOENT);
  return fs_capacity_;
}

uint64_t MemEnv::RandomU64() {
  std::lock_guard lock(mu_);
  next_random_ = next_random_ * 6364136223846793005ull + 1442695040888963407ull;
  return next_random_;
}

void MemEnv::AddBlockDevice(const std::string& path, uint64_t size_bytes) {
  std::lock_guard lock(mu_);
  block_devs_[path] = size_bytes;
}

void MemEnv::SetFileSystemCapacity(uint64_t bytes) {
  std::lock_guard lock(mu_);
  fs_capacity_ = bytes;
}

void MemEnv::FailWritesUnder(const std::string& prefix) {
  std::lock_guard lock(mu_);
  failing_prefixes_.insert(prefix);
}

bool MemEnv::Exists(const std::string& path) {
  std::lock_guard lock(mu_);
  return dirs_.count(path) || files_.count(path) || block_devs_.count(path);
}

}  // namespace strata
