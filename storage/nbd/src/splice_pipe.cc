#include "splice_pipe.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <mutex>
#include <string>

namespace strata::nbd {

namespace {

Status SocketError(int err) {
  if (err == EAGAIN || err == EWOULDBLOCK) {
    return {StatusCode::kDeadlineExceeded, "splice from the socket: timed out"};
  }
  return ErrnoError("splice from the socket", err);
}

// Writes into one file are taken in turn here, before the file system's own lock
// (tmpfs and ext4 write under the inode's rwsem, exclusive): a waiter there spins
// while the holder copies (optimistic spinning, the holder being on a CPU), which on
// a small host burns the core the move's other side needs. Here it sleeps. Measured:
// docs/benchmarks.md, "the target's receive spliced". Striped by descriptor: two
// files sharing a stripe only take turns they did not need to.
std::mutex& FileTurn(int fd) {
  static std::array<std::mutex, 64> turns;
  return turns[static_cast<size_t>(fd) % turns.size()];
}

}  // namespace

Result<SplicePipe> SplicePipe::Open(size_t capacity) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoError("pipe2", errno);
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  // Refused past /proc/sys/fs/pipe-max-size or the user's pipe budget: the pipe then
  // keeps the size it has, and each Move step takes that much.
  (void)::fcntl(write_end.get(), F_SETPIPE_SZ, static_cast<int>(capacity));
  const int size = ::fcntl(write_end.get(), F_GETPIPE_SZ);
  if (size <= 0) return ErrnoError("F_GETPIPE_SZ", errno);
  return SplicePipe(std::move(read_end), std::move(write_end), static_cast<size_t>(size));
}

Status SplicePipe::Move(int sock, size_t len, int fd, uint64_t offset, size_t* written,
                        Status* file_error) {
  *written = 0;
  *file_error = Status::Ok();
  auto at = static_cast<loff_t>(offset);
  while (len > 0) {
    ssize_t in = 0;
    while (true) {
      in = ::splice(sock, nullptr, write_.get(), nullptr, std::min(len, capacity_), SPLICE_F_MOVE);
      if (in > 0) break;
      if (in == 0) return UnavailableError("connection closed by peer");
      if (errno != EINTR) return SocketError(errno);
    }
    len -= static_cast<size_t>(in);
    auto in_pipe = static_cast<size_t>(in);
    std::lock_guard turn(FileTurn(fd));
    while (in_pipe > 0 && file_error->ok()) {
      const ssize_t out = ::splice(read_.get(), nullptr, fd, &at, in_pipe, SPLICE_F_MOVE);
      if (out > 0) {
        in_pipe -= static_cast<size_t>(out);
        *written += static_cast<size_t>(out);
      } else if (out < 0 && errno == EINTR) {
        continue;
      } else {
        *file_error = ErrnoError("splice into the file", out < 0 ? errno : EIO);
      }
    }
    if (in_pipe > 0) STRATA_RETURN_IF_ERROR(Drop(in_pipe));
  }
  return Status::Ok();
}

Status SplicePipe::Drop(size_t len) {
  std::array<char, 64 << 10> sink;
  while (len > 0) {
    const ssize_t n = ::read(read_.get(), sink.data(), std::min(len, sink.size()));
    if (n > 0) {
      len -= static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return ErrnoError("read from the splice pipe", n < 0 ? errno : EIO);
    }
  }
  return Status::Ok();
}

}  // namespace strata::nbd
