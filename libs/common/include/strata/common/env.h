#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "strata/common/result.h"

namespace strata {

enum class PathKind { kDirectory, kBlockDevice, kRegularFile, kOther };

// A file addressed by offset: data files of the block store and journals.
// Thread-safe: ReadAt/WriteAt on distinct ranges may run concurrently (pread/pwrite).
class File {
 public:
  virtual ~File() = default;
  virtual Status ReadAt(uint64_t offset, std::span<char> out) = 0;  // short read past EOF: zeros
  virtual Status WriteAt(uint64_t offset, std::span<const char> data) = 0;
  // WriteAt of the pieces' bytes one after another from `offset`, without joining
  // them first (pwritev). The default writes each piece with WriteAt.
  virtual Status WriteAtV(uint64_t offset, std::span<const std::span<const char>> pieces) {
    for (const auto& p : pieces) {
      STRATA_RETURN_IF_ERROR(WriteAt(offset, p));
      offset += p.size();
    }
    return Status::Ok();
  }
  // Makes every completed WriteAt durable (fdatasync).
  virtual Status Sync() = 0;
  virtual Result<uint64_t> Size() = 0;
  virtual Status Truncate(uint64_t size) = 0;
  // A read-only view of the file's bytes [0, length), coherent with WriteAt (a
  // shared mapping of the page cache), or null when this File cannot offer one (the
  // caller then uses ReadAt). Reading it costs no system call or copy. One view per
  // File: a later call returns the same view if it covers `length`, else null.
  // Valid until the File is destroyed. Only bytes below the file's current size
  // may be read through it (past the end the process gets SIGBUS).
  virtual const char* MapForRead(uint64_t /*length*/) { return nullptr; }
  // The same view, writable: stores through it land in the page cache like WriteAt
  // (durable after Sync), or null when this File cannot offer one (a block device, an
  // in-memory File). Only bytes below the file's current size may be touched.
  virtual char* MapShared(uint64_t /*length*/) { return nullptr; }
  // True when the file's pages live in memory only (tmpfs): a page, once allocated,
  // stays allocated and resident until the file is truncated below it, so a store
  // through MapShared into it never has to allocate, read or reserve anything and
  // cannot fail (on a disk file system such a store may fault in a page written back
  // and evicted, or need space that is not there: SIGBUS rather than an error).
  virtual bool InMemory() { return false; }
  // A descriptor of this (regular) file, open for writing, that splice(2) may write
  // into at an offset (the page cache filled straight from a pipe: NbdServer's
  // spliced receive), or -1 when there is none (a block device, an in-memory File).
  // Owned by the File: valid until it is destroyed; never closed by the caller.
  virtual int SpliceFd() { return -1; }
};

struct PathInfo {
  PathKind kind = PathKind::kOther;
  uint64_t size_bytes = 0;  // file length or block device size; 0 for directories
};

// All access to the operating system's files goes through an Env, as in leveldb:
// daemons use Env::Default(); unit tests use an in-memory or fault-injecting Env.
// Implementations are thread-safe.
class Env {
 public:
  virtual ~Env() = default;

  // The process-wide POSIX Env. Never null; never destroyed.
  static Env* Default();

  // mkdir -p; OK when it exists as a directory, FAILED_PRECONDITION when it exists as
  // something else.
  virtual Status CreateDirectories(const std::string& path) = 0;
  // NOT_FOUND when the path does not exist.
  virtual Result<PathInfo> Stat(const std::string& path) = 0;
  virtual Result<std::string> ReadFile(const std::string& path) = 0;
  // Crash-safe replace: a reader sees the old contents or the new, never a mix.
  virtual Status WriteFileAtomically(const std::string& path, std::string_view contents) = 0;
  // Total bytes of the file system holding `path` (statvfs f_blocks * f_frsize).
  virtual Result<uint64_t> FileSystemCapacity(const std::string& path) = 0;
  // Opens `path` for reading and writing; with create, makes it when missing.
  // A block device opens as a File of its size.
  virtual Result<std::unique_ptr<File>> OpenFile(const std::string& path, bool create) = 0;
  // NOT_FOUND when missing.
  virtual Status RemoveFile(const std::string& path) = 0;
  // Random bits from the kernel, for identities.
  virtual uint64_t RandomU64() = 0;
};

}  // namespace strata
