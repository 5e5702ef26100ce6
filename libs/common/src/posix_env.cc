#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <random>

#include "strata/common/env.h"
#include "strata/common/file_util.h"

namespace strata {
namespace {

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
