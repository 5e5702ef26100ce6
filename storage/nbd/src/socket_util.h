#pragma once

// The few socket operations the server needs, as Status-returning functions over
// file descriptors. They are not behind an interface: the server's tests run it on
// real loopback sockets, which is the behaviour that matters (partial reads, EOF,
// shutdown wake-ups), and nothing here holds logic worth faking.

#include <sys/uio.h>

#include <chrono>
#include <cstddef>
#include <string>

#include "strata/common/fd.h"
#include "strata/common/net_address.h"
#include "strata/common/result.h"

namespace strata::nbd {

// The tree's one owning descriptor type (libs/common); the server's name for it.
using UniqueFd = ::strata::Fd;

struct Listener {
  UniqueFd fd;     // non-blocking, close-on-exec
  HostPort bound;  // the host as given, the port as bound
};

// Binds and listens on `portal` (an IP literal or a name; port 0 picks a free port).
// IPv6 listeners are IPv6-only so "0.0.0.0:P" and "[::]:P" can both be portals.
Result<Listener> ListenTcp(const HostPort& portal, int backlog);

// The peer's IP as text without port; IPv4-mapped IPv6 peers as dotted IPv4.
std::string PeerAddress(int fd);

// TCP_NODELAY on; send timeout (a send blocked longer fails with EAGAIN); receive
// timeout (zero: none).
Status ConfigureConnection(int fd, std::chrono::milliseconds send_timeout);
Status SetReceiveTimeout(int fd, std::chrono::milliseconds timeout);
// TCP keepalive: probes after `idle` without traffic, every `interval`, the peer
// declared gone after `count` unanswered (the socket then fails with ETIMEDOUT).
Status EnableKeepalive(int fd, std::chrono::seconds idle, std::chrono::seconds interval, int count);

// Reads exactly `len` bytes. UNAVAILABLE "connection closed by peer" on EOF before
// that; the errno otherwise (a receive timeout is DEADLINE_EXCEEDED).
Status RecvAll(int fd, char* buf, size_t len);
// Reads what is available, at least one byte: the byte count, or the error as for
// RecvAll.
Result<size_t> RecvSome(int fd, char* buf, size_t len);
// RecvSome into the iovecs in order (recvmsg).
Result<size_t> RecvSomeV(int fd, const struct iovec* iov, int iovcnt);
// Every byte of the iovecs (modified in place), as RecvAll: recvmsg with MSG_WAITALL,
// so bytes already queued land with one system call.
Status RecvAllV(int fd, struct iovec* iov, int iovcnt);
// Waits until at least `n` bytes are queued in the socket (SO_RCVLOWAT, then poll),
// or until TCP wakes it short of them (the peer closed or the socket was shut down,
// the kernel capped the mark below `n`, or the receive window cannot hold `n`):
// whether they are now. Never a receive: the bytes stay queued. Waits as long as a
// receive would (no timeout).
bool AwaitQueued(int fd, size_t n);
// Moves *iov and *iovcnt past the first `n` bytes of the iovecs.
void AdvanceIov(struct iovec** iov, int* iovcnt, size_t n);

// Writes every byte of the iovecs (modified in place), without SIGPIPE.
Status SendAll(int fd, struct iovec* iov, int iovcnt);
Status SendAll(int fd, const char* buf, size_t len);
// Writes what the socket takes at once without waiting (MSG_DONTWAIT), advancing
// *iov and *iovcnt past it as SendAll does: the byte count (0 when none fit now).
Result<size_t> SendNow(int fd, struct iovec** iov, int* iovcnt);

}  // namespace strata::nbd
