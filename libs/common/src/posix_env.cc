#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "strata/common/env.h"
#include "strata/common/file_util.h"

namespace strata {
namespace {

constexpr unsigned long kTmpfsMagic = 0x01021994;  // TMPFS_MAGIC (linux/magic.h)

class PosixFile final : public File {
 public:
  PosixFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixFile() override {
    if (view_ != nullptr) ::munmap(view_, view_length_);
    ::close(fd_);
  }

  Status ReadAt(uint64_t offset, std::span<char> out) override {
    size_t done = 0;
    while (done < out.size()) {
      ssize_t n =
          ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoError("pread " + path_, errno);
      }
      if (n == 0) {  // past the end: a sparse file reads as zeros
        std::memset(out.data() + done, 0, out.size() - done);
        break;
      }
      done += static_cast<size_t>(n);
    }
    return Status::Ok();
  }

  Status WriteAt(uint64_t offset, std::span<const char> data) override {
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n =
          ::pwrite(fd_, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoError("pwrite " + path_, errno);
      }
      done += static_cast<size_t>(n);
    }
    return Status::Ok();
  }

  Status WriteAtV(uint64_t offset, std::span<const std::span<const char>> pieces) override {
    std::vector<iovec> iov;
    iov.reserve(pieces.size());
    for (const auto& p : pieces) {
      if (!p.empty()) iov.push_back(iovec{const_cast<char*>(p.data()), p.size()});
    }
    size_t i = 0;
    while (i < iov.size()) {
      const int count = static_cast<int>(std::min<size_t>(iov.size() - i, 1024));  // UIO_MAXIOV
      ssize_t n = ::pwritev(fd_, &iov[i], count, static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoError("pwritev " + path_, errno);
      }
      offset += static_cast<uint64_t>(n);
      auto left = static_cast<size_t>(n);
      while (i < iov.size() && left >= iov[i].iov_len) left -= iov[i++].iov_len;
      if (left > 0) {  // a short write inside this piece: the rest of it next
        iov[i].iov_base = static_cast<char*>(iov[i].iov_base) + left;
        iov[i].iov_len -= left;
      }
    }
    return Status::Ok();
  }

  Status Sync() override {
    if (::fdatasync(fd_) != 0) return ErrnoError("fdatasync " + path_, errno);
    return Status::Ok();
  }

  Result<uint64_t> Size() override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return ErrnoError("fstat " + path_, errno);
    if (S_ISBLK(st.st_mode)) {
      uint64_t bytes = 0;
      if (::ioctl(fd_, BLKGETSIZE64, &bytes) != 0)
        return ErrnoError("BLKGETSIZE64 " + path_, errno);
      return bytes;
    }
    return static_cast<uint64_t>(st.st_size);
  }

  const char* MapForRead(uint64_t length) override { return View(length); }

  char* MapShared(uint64_t length) override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) return nullptr;
    return View(length);
  }

  // The one view of the file (MapForRead, MapShared): readable and writable (the file
  // is opened O_RDWR), so a tier has one mapping whatever reads or writes through it.
  char* View(uint64_t length) {
    std::lock_guard lock(view_mu_);
    if (view_ == nullptr && length > 0) {
      // MAP_NORESERVE: the view reserves no memory; pages come from the page cache.
      void* p = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd_, 0);
      if (p == MAP_FAILED) return nullptr;
      view_ = p;
      view_length_ = length;
    }
    return length <= view_length_ ? static_cast<char*>(view_) : nullptr;
  }

  int SpliceFd() override {
    int fd = splice_fd_.load(std::memory_order_relaxed);
    if (fd == kUnknown) {
      struct stat st {};
      fd = ::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode) ? fd_ : -1;
      splice_fd_.store(fd, std::memory_order_relaxed);
    }
    return fd;
  }

  bool InMemory() override {
    struct statfs fs {};
    return ::fstatfs(fd_, &fs) == 0 && static_cast<unsigned long>(fs.f_type) == kTmpfsMagic;
  }

  Status Truncate(uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      return ErrnoError("ftruncate " + path_, errno);
    }
    return Status::Ok();
  }

 private:
  static constexpr int kUnknown = -2;

  const int fd_;
  const std::string path_;
  std::atomic<int> splice_fd_{kUnknown};  // SpliceFd's answer, once asked
  std::mutex view_mu_;
  void* view_ = nullptr;  // guarded by view_mu_ until set, then constant
  size_t view_length_ = 0;
};

class PosixEnv final : public Env {
 public:
  Status CreateDirectories(const std::string& path) override {
    return strata::CreateDirectories(path);
  }

  Result<PathInfo> Stat(const std::string& path) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return ErrnoError("stat " + path, errno);
    PathInfo info;
    if (S_ISDIR(st.st_mode)) {
      info.kind = PathKind::kDirectory;
    } else if (S_ISREG(st.st_mode)) {
      info.kind = PathKind::kRegularFile;
      info.size_bytes = static_cast<uint64_t>(st.st_size);
    } else if (S_ISBLK(st.st_mode)) {
      info.kind = PathKind::kBlockDevice;
      int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return ErrnoError("open " + path, errno);
      uint64_t bytes = 0;
      int rc = ::ioctl(fd, BLKGETSIZE64, &bytes);
      int err = errno;
      ::close(fd);
      if (rc != 0) return ErrnoError("BLKGETSIZE64 " + path, err);
      info.size_bytes = bytes;
    }
    return info;
  }

  Result<std::string> ReadFile(const std::string& path) override { return ReadFileToString(path); }

  Status WriteFileAtomically(const std::string& path, std::string_view contents) override {
    return strata::WriteFileAtomically(path, contents);
  }

  Result<uint64_t> FileSystemCapacity(const std::string& path) override {
    struct statvfs vfs {};
    if (::statvfs(path.c_str(), &vfs) != 0) return ErrnoError("statvfs " + path, errno);
    return static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;
  }

  Result<std::unique_ptr<File>> OpenFile(const std::string& path, bool create) override {
    int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
    int fd = ::open(path.c_str(), flags, 0600);
    if (fd < 0) return ErrnoError("open " + path, errno);
    return std::unique_ptr<File>(new PosixFile(fd, path));
  }

  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return ErrnoError("unlink " + path, errno);
    return Status::Ok();
  }

  uint64_t RandomU64() override {
    uint64_t v = 0;
    if (::getrandom(&v, sizeof(v), 0) == static_cast<ssize_t>(sizeof(v))) return v;
    std::random_device rd;  // getrandom cannot fail for 8 bytes after boot; belt and braces
    return (static_cast<uint64_t>(rd()) << 32) | rd();
  }
};

}  // namespace

Env* Env::Default() {
  static Env* env = new PosixEnv();  // intentionally leaked: usable during static destruction
  return env;
}

}  // namespace strata
