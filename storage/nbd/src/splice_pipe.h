#pragma once

// A write's payload moved from the socket into a file without passing through the
// server's memory: splice(2) from the socket into a pipe (the socket buffer's pages
// referenced, not copied), then from the pipe into the file at an offset (one copy,
// into page-cache pages the file system allocates as the write fills them, where a
// receive into a mapping of the file first populates, clears and maps each page).
// Used for IncomingWrite::NextFileSpace on the plain socket (Transport::splice_fd).
//
// Thread-compatible: one per connection, used by the thread that reads (read_mu_).

#include <cstddef>
#include <cstdint>

#include "socket_util.h"
#include "strata/common/result.h"

namespace strata::nbd {

class SplicePipe {
 public:
  // The pipe, as large as the system lets it be up to `capacity` bytes; an error
  // when no pipe can be made (too many descriptors).
  static Result<SplicePipe> Open(size_t capacity);

  SplicePipe(SplicePipe&&) = default;
  SplicePipe& operator=(SplicePipe&&) = default;

  // Exactly `len` bytes of the socket `sock` into the file `fd` at `offset`, through
  // the pipe, at most its capacity at a time. What the socket gives but the file
  // does not take (ENOSPC, EIO) is consumed and dropped, so the stream stays framed
  // at the end of those `len` bytes: *file_error says why the file did not take them
  // (every byte counted in *written did land, in order from `offset`). The returned
  // status is the socket's: UNAVAILABLE on EOF, DEADLINE_EXCEEDED after the receive
  // timeout, else the errno; the stream's framing is then lost.
  Status Move(int sock, size_t len, int fd, uint64_t offset, size_t* written, Status* file_error);

  size_t capacity() const { return capacity_; }

 private:
  SplicePipe(UniqueFd read_end, UniqueFd write_end, size_t capacity)
      : read_(std::move(read_end)), write_(std::move(write_end)), capacity_(capacity) {}

  // Empties the pipe (`len` bytes in it) without writing them anywhere.
  Status Drop(size_t len);

  UniqueFd read_;
  UniqueFd write_;
  size_t capacity_ = 0;
};

}  // namespace strata::nbd
