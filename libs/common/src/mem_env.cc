#include "strata/common/mem_env.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace strata {
namespace {

std::string Parent(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return "/";
  return path.substr(0, slash);
}

class MemFile final : public File {
 public:
  MemFile(MemEnv* env, std::string path, std::shared_ptr<MemEnv::FileData> data)
      : env_(env), path_(std::move(path)), data_(std::move(data)) {}

  Status ReadAt(uint64_t offset, std::span<char> out) override {
    std::lock_guard lock(data_->mu);
    const std::string& c = data_->current;
    size_t have = offset < c.size() ? std::min(out.size(), c.size() - offset) : 0;
    if (have) std::memcpy(out.data(), c.data() + offset, have);
    std::memset(out.data() + have, 0, out.size() - have);
    return Status::Ok();
  }

  Status WriteAt(uint64_t offset, std::span<const char> data) override {
    env_->RunWriteHook(path_);
    STRATA_RETURN_IF_ERROR(env_->CheckWrite(path_));
    std::lock_guard lock(data_->mu);
    std::string& c = data_->current;
    if (data_->block_device && offset + data.size() > c.size()) {
      return ErrnoError("pwrite " + path_, ENOSPC);
    }
    if (c.size() < offset + data.size()) c.resize(offset + data.size());
    std::memcpy(c.data() + offset, data.data(), data.size());
    return Status::Ok();
  }

  Status Sync() override {
    STRATA_RETURN_IF_ERROR(env_->CheckWrite(path_));
    std::lock_guard lock(data_->mu);
    data_->synced = data_->current;
    return Status::Ok();
  }

  Result<uint64_t> Size() override {
    std::lock_guard lock(data_->mu);
    return static_cast<uint64_t>(data_->current.size());
  }

  Status Truncate(uint64_t size) override {
    STRATA_RETURN_IF_ERROR(env_->CheckWrite(path_));
    std::lock_guard lock(data_->mu);
    data_->current.resize(size);
    return Status::Ok();
  }

 private:
  MemEnv* const env_;
  const std::string path_;
  const std::shared_ptr<MemEnv::FileData> data_;
};

}  // namespace

Status MemEnv::CheckWrite(const std::string& path) {
  {
    std::lock_guard lock(mu_);
    for (const auto& prefix : failing_prefixes_) {
      if (path.rfind(prefix, 0) == 0) return ErrnoError("write " + path, EIO);
    }
  }
  int64_t left = writes_left_.load();
  while (left >= 0) {
    if (left == 0) return ErrnoError("write " + path + " (injected)", EIO);
    if (writes_left_.compare_exchange_weak(left, left - 1)) break;
  }
  return Status::Ok();
}

Status MemEnv::CreateDirectories(const std::string& path) {
  STRATA_RETURN_IF_ERROR(CheckWrite(path));
  std::lock_guard lock(mu_);
  if (files_.count(path)) return FailedPreconditionError(path + " exists and is not a directory");
  for (std::string p = path; p != "/" && !p.empty(); p = Parent(p)) dirs_.insert(p);
  return Status::Ok();
}

Result<PathInfo> MemEnv::Stat(const std::string& path) {
  std::lock_guard lock(mu_);
  if (dirs_.count(path)) return PathInfo{PathKind::kDirectory, 0};
  if (auto it = files_.find(path); it != files_.end()) {
    std::lock_guard flock(it->second->mu);
    return PathInfo{it->second->block_device ? PathKind::kBlockDevice : PathKind::kRegularFile,
                    it->second->current.size()};
  }
  return ErrnoError("stat " + path, ENOENT);
}

Result<std::string> MemEnv::ReadFile(const std::string& path) {
  std::shared_ptr<FileData> f;
  {
    std::lock_guard lock(mu_);
    auto it = files_.find(path);
    if (it == files_.end()) return ErrnoError("open " + path, ENOENT);
    f = it->second;
  }
  std::lock_guard flock(f->mu);
  return f->current;
}

Status MemEnv::WriteFileAtomically(const std::string& path, std::string_view contents) {
  STRATA_RETURN_IF_ERROR(CheckWrite(path));
  std::lock_guard lock(mu_);
  if (!dirs_.count(Parent(path))) return ErrnoError("open " + path, ENOENT);
  auto f = std::make_shared<FileData>();
  f->current = std::string(contents);
  f->synced = f->current;
  files_[path] = std::move(f);
  return Status::Ok();
}

Result<uint64_t> MemEnv::FileSystemCapacity(const std::string& path) {
  std::lock_guard lock(mu_);
  if (!dirs_.count(path) && !files_.count(path)) return ErrnoError("statvfs " + path, ENOENT);
  return fs_capacity_;
}

Result<std::unique_ptr<File>> MemEnv::OpenFile(const std::string& path, bool create) {
  std::lock_guard lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) {
    if (!create) return ErrnoError("open " + path, ENOENT);
    if (!dirs_.count(Parent(path))) return ErrnoError("open " + path, ENOENT);
    it = files_.emplace(path, std::make_shared<FileData>()).first;
  }
  return std::unique_ptr<File>(new MemFile(this, path, it->second));
}

Status MemEnv::RemoveFile(const std::string& path) {
  std::lock_guard lock(mu_);
  if (files_.erase(path) == 0) return ErrnoError("unlink " + path, ENOENT);
  return Status::Ok();
}

uint64_t MemEnv::RandomU64() {
  std::lock_guard lock(mu_);
  next_random_ = next_random_ * 6364136223846793005ull + 1442695040888963407ull;
  return next_random_;
}

void MemEnv::AddBlockDevice(const std::string& path, uint64_t size_bytes) {
  std::lock_guard lock(mu_);
  auto f = std::make_shared<FileData>();
  f->current.assign(size_bytes, '\0');
  f->synced = f->current;
  f->block_device = true;
  files_[path] = std::move(f);
}

void MemEnv::SetFileSystemCapacity(uint64_t bytes) {
  std::lock_guard lock(mu_);
  fs_capacity_ = bytes;
}

void MemEnv::FailWritesUnder(const std::string& prefix) {
  std::lock_guard lock(mu_);
  failing_prefixes_.insert(prefix);
}

void MemEnv::ClearFaults() {
  std::lock_guard lock(mu_);
  failing_prefixes_.clear();
  writes_left_ = -1;
}

void MemEnv::FailAfterWrites(int64_t n) { writes_left_ = n; }

void MemEnv::SetWriteHook(WriteHook hook) {
  std::lock_guard lock(mu_);
  write_hook_ = hook ? std::make_shared<const WriteHook>(std::move(hook)) : nullptr;
}

void MemEnv::RunWriteHook(const std::string& path) {
  std::shared_ptr<const WriteHook> hook;
  {
    std::lock_guard lock(mu_);
    hook = write_hook_;
  }
  if (hook) (*hook)(path);
}

void MemEnv::SimulatePowerLoss() {
  std::lock_guard lock(mu_);
  for (auto& [path, f] : files_) {
    std::lock_guard flock(f->mu);
    f->current = f->synced;
  }
}

bool MemEnv::Exists(const std::string& path) {
  std::lock_guard lock(mu_);
  return dirs_.count(path) || files_.count(path);
}

}  // namespace strata
