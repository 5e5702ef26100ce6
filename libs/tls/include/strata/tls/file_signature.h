#pragma once

#include <sys/stat.h>

#include <ctime>
#include <string>

namespace strata::tls {

// What tells a file's contents changed without reading it: device, inode, size and
// modification time (nanoseconds). A file replaced by rename (a Kubernetes Secret or
// ConfigMap volume swaps a symlinked directory) gets a new inode; one rewritten in place
// a new mtime or size. Value type.
struct FileSignature {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = -1;
  timespec mtime{};

  // The file's signature now; size -1 when it cannot be stat()ed.
  static FileSignature Of(const std::string& path) {
    FileSignature s;
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return s;
    s.dev = st.st_dev;
    s.ino = st.st_ino;
    s.size = st.st_size;
    s.mtime = st.st_mtim;
    return s;
  }

  friend bool operator==(const FileSignature& a, const FileSignature& b) {
    return a.dev == b.dev && a.ino == b.ino && a.size == b.size &&
           a.mtime.tv_sec == b.mtime.tv_sec && a.mtime.tv_nsec == b.mtime.tv_nsec;
  }
  friend bool operator!=(const FileSignature& a, const FileSignature& b) { return !(a == b); }
};

}  // namespace strata::tls
