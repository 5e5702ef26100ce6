#include "socket_util.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

namespace strata::nbd {

Result<Listener> ListenTcp(const HostPort& portal, int backlog) {
  std::string what = "portal " + portal.ToString();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port = std::to_string(portal.port);
  int rc = ::getaddrinfo(portal.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    return InvalidArgumentError(what + ": cannot resolve host: " + ::gai_strerror(rc));
  }
  Status last = InternalError(what + ": no address to bind");
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    UniqueFd fd(
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd.valid()) {
      last = ErrnoError(what + ": socket", errno);
      continue;
    }
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ai->ai_family == AF_INET6) {
      ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      last = ErrnoError(what + ": bind", errno);
      continue;
    }
    if (::listen(fd.get(), backlog) != 0) {
      last = ErrnoError(what + ": listen", errno);
      continue;
    }
    sockaddr_storage ss{};
    socklen_t sl = sizeof(ss);
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &sl) != 0) {
      last = ErrnoError(what + ": getsockname", errno);
      continue;
    }
    Listener out;
    out.bound.host = portal.host;
    out.bound.port =
        ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                       : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    out.fd = std::move(fd);
    ::freeaddrinfo(res);
    return out;
  }
  ::freeaddrinfo(res);
  return last;
}

std::string PeerAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t sl = sizeof(ss);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &sl) != 0) return "";
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, buf, sizeof(buf));
  } else if (ss.ss_family == AF_INET6) {
    const in6_addr& a = reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&a)) {
      ::inet_ntop(AF_INET, &a.s6_addr[12], buf, sizeof(buf));
    } else {
      ::inet_ntop(AF_INET6, &a, buf, sizeof(buf));
    }
  }
  return buf;
}

namespace {
timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

Status IoError(const char* what, int err) {
  if (err == EAGAIN || err == EWOULDBLOCK) {
    return {StatusCode::kDeadlineExceeded, std::string(what) + ": timed out"};
  }
  return ErrnoError(what, err);
}
}  // namespace

Status ConfigureConnection(int fd, std::chrono::milliseconds send_timeout) {
  int one = 1;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
    return ErrnoError("setsockopt TCP_NODELAY", errno);
  }
  timeval tv = ToTimeval(send_timeout);
  if (::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
    return ErrnoError("setsockopt SO_SNDTIMEO", errno);
  }
  return Status::Ok();
}

Status EnableKeepalive(int fd, std::chrono::seconds idle, std::chrono::seconds interval,
                       int count) {
  int one = 1;
  int idle_s = static_cast<int>(idle.count());
  int interval_s = static_cast<int>(interval.count());
  if (::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) != 0 ||
      ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof(idle_s)) != 0 ||
      ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval_s, sizeof(interval_s)) != 0 ||
      ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count)) != 0) {
    return ErrnoError("setsockopt SO_KEEPALIVE", errno);
  }
  return Status::Ok();
}

Status SetReceiveTimeout(int fd, std::chrono::milliseconds timeout) {
  timeval tv = ToTimeval(timeout);
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0) {
    return ErrnoError("setsockopt SO_RCVTIMEO", errno);
  }
  return Status::Ok();
}

Result<size_t> RecvSome(int fd, char* buf, size_t len) {
  while (true) {
    ssize_t n = ::recv(fd, buf, len, 0);
    if (n > 0) return static_cast<size_t>(n);
    if (n == 0) return UnavailableError("connection closed by peer");
    if (errno == EINTR) continue;
    return IoError("recv", errno);
  }
}

Result<size_t> RecvSomeV(int fd, const struct iovec* iov, int iovcnt) {
  msghdr msg{};
  msg.msg_iov = const_cast<struct iovec*>(iov);
  msg.msg_iovlen = static_cast<size_t>(iovcnt);
  while (true) {
    ssize_t n = ::recvmsg(fd, &msg, 0);
    if (n > 0) return static_cast<size_t>(n);
    if (n == 0) return UnavailableError("connection closed by peer");
    if (errno == EINTR) continue;
    return IoError("recvmsg", errno);
  }
}

Status RecvAllV(int fd, struct iovec* iov, int iovcnt) {
  while (iovcnt > 0 && iov->iov_len == 0) {
    ++iov;
    --iovcnt;
  }
  while (iovcnt > 0) {
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(iovcnt);
    ssize_t n = ::recvmsg(fd, &msg, MSG_WAITALL);
    if (n == 0) return UnavailableError("connection closed by peer");
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("recvmsg", errno);
    }
    AdvanceIov(&iov, &iovcnt, static_cast<size_t>(n));
  }
  return Status::Ok();
}

Status RecvAll(int fd, char* buf, size_t len) {
  while (len > 0) {
    ssize_t n = ::recv(fd, buf, len, MSG_WAITALL);
    if (n > 0) {
      buf += n;
      len -= static_cast<size_t>(n);
      continue;
    }
    if (n == 0) return UnavailableError("connection closed by peer");
    if (errno == EINTR) continue;
    return IoError("recv", errno);
  }
  return Status::Ok();
}

Status SendAll(int fd, struct iovec* iov, int iovcnt) {
  while (iovcnt > 0) {
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(iovcnt);
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("send", errno);
    }
    AdvanceIov(&iov, &iovcnt, static_cast<size_t>(n));
  }
  return Status::Ok();
}

bool AwaitQueued(int fd, size_t n) {
  if (n == 0) return true;
  if (n > INT_MAX) return false;
  // TCP wakes a poller only once the mark is met (or the stream ends); it caps the
  // mark at half the largest receive buffer, and the FIONREAD below then says no.
  int mark = static_cast<int>(n);
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &mark, sizeof(mark)) != 0) return false;
  pollfd p{fd, POLLIN, 0};
  int r = 0;
  do {
    r = ::poll(&p, 1, -1);
  } while (r < 0 && errno == EINTR);
  mark = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &mark, sizeof(mark));
  int queued = 0;
  return r > 0 && ::ioctl(fd, FIONREAD, &queued) == 0 && queued >= 0 &&
         static_cast<size_t>(queued) >= n;
}

void AdvanceIov(struct iovec** iov, int* iovcnt, size_t n) {
  while (*iovcnt > 0 && n >= (*iov)->iov_len) {
    n -= (*iov)->iov_len;
    ++*iov;
    --*iovcnt;
  }
  if (*iovcnt > 0) {
    (*iov)->iov_base = static_cast<char*>((*iov)->iov_base) + n;
    (*iov)->iov_len -= n;
  }
}

Result<size_t> SendNow(int fd, struct iovec** iov, int* iovcnt) {
  size_t sent = 0;
  while (*iovcnt > 0) {
    msghdr msg{};
    msg.msg_iov = *iov;
    msg.msg_iovlen = static_cast<size_t>(*iovcnt);
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return ErrnoError("send", errno);
    }
    sent += static_cast<size_t>(n);
    size_t left = static_cast<size_t>(n);
    while (*iovcnt > 0 && left >= (*iov)->iov_len) {
      left -= (*iov)->iov_len;
      ++*iov;
      --*iovcnt;
    }
    if (*iovcnt > 0) {
      (*iov)->iov_base = static_cast<char*>((*iov)->iov_base) + left;
      (*iov)->iov_len -= left;
    }
  }
  return sent;
}

Status SendAll(int fd, const char* buf, size_t len) {
  iovec iov{const_cast<char*>(buf), len};
  return SendAll(fd, &iov, 1);
}

}  // namespace strata::nbd
