#pragma once

// The byte stream a connection speaks NBD over: the plain socket, or a TLS session
// on it once NBD_OPT_STARTTLS succeeded. The socket itself stays with the
// Connection (it closes it, and shuts it down to wake a blocked reader); a
// Transport only reads and writes.
//
// Thread-safety: one thread may read while others write (the connection's reader
// and its repliers); writers serialise among themselves (Connection's send lock).

#include <sys/uio.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "strata/common/result.h"

namespace strata::nbd {

class Transport {
 public:
  virtual ~Transport() = default;

  // At least one byte: the count. UNAVAILABLE "connection closed by peer" on EOF;
  // DEADLINE_EXCEEDED after the receive timeout.
  virtual Result<size_t> RecvSome(char* buf, size_t len) = 0;
  // RecvSome into the iovecs in order (one system call on the plain socket); by
  // default into the first alone.
  virtual Result<size_t> RecvSomeV(const struct iovec* iov, int iovcnt);
  // Every byte of the iovecs (modified in place): on the plain socket one system call
  // when the bytes are already queued (MSG_WAITALL); by default RecvSomeV until done.
  virtual Status RecvAllV(struct iovec* iov, int iovcnt);
  // Every byte of the iovecs (modified in place), or the error.
  virtual Status SendAll(struct iovec* iov, int iovcnt) = 0;
  // Bytes a receive would return now without waiting on the peer, when the transport
  // can tell (the plain socket: FIONREAD); nullopt when it cannot (TLS: the socket's
  // bytes are records, not payload).
  virtual std::optional<size_t> Queued() const { return std::nullopt; }
  // Waits until `n` bytes are queued (socket_util's AwaitQueued): whether they are.
  // False at once where Queued() cannot tell.
  virtual bool AwaitQueued(size_t n) {
    (void)n;
    return false;
  }
  // Whether SendNow works (the plain socket; TLS must encrypt, i.e. copy, first).
  virtual bool sends_now() const { return false; }
  // Sends what the socket takes at once without waiting (MSG_DONTWAIT), advancing
  // *iov and *iovcnt past it as SendAll does; the bytes sent (0: none fit now).
  // REQUIRES: sends_now().
  virtual Result<size_t> SendNow(struct iovec** iov, int* iovcnt);
  // The socket a payload may be spliced from (SplicePipe) when the stream's bytes are
  // its bytes (the plain socket); -1 when they are not (TLS records).
  virtual int splice_fd() const { return -1; }
  // Zero: wait for ever.
  virtual Status SetReceiveTimeout(std::chrono::milliseconds timeout) = 0;
  // "plain" or the TLS version and cipher, for logs.
  virtual std::string Describe() const = 0;

  // Exactly `len` bytes (RecvSome until done).
  Status RecvAll(char* buf, size_t len);
  Status SendAll(const char* buf, size_t len);
};

// The socket as it is (socket_util's blocking calls).
std::unique_ptr<Transport> MakePlainTransport(int fd);

}  // namespace strata::nbd
