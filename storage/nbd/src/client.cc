#include "strata/nbd/client.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "strata/common/fd.h"
#include "strata/nbd/protocol.h"

namespace strata::nbd {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kMaxZeroesPerRequest = 1ull << 30;
constexpr size_t kZeroChunk = 1 << 20;

Status DeadlineError(std::string m) { return {StatusCode::kDeadlineExceeded, std::move(m)}; }

const char* CommandName(uint16_t type) {
  switch (type) {
    case kCmdWrite:
      return "NBD_CMD_WRITE";
    case kCmdWriteZeroes:
      return "NBD_CMD_WRITE_ZEROES";
    case kCmdFlush:
      return "NBD_CMD_FLUSH";
    default:
      return "NBD_CMD";
  }
}

// The Status for a request's NBD error: the spec's errno values, mapped back the way
// the server maps Volume errors onto them.
Status StatusFromNbdError(uint32_t error, std::string what) {
  std::string m = what + ": " + NbdErrorName(error);
  switch (error) {
    case kEnospc:
      // A write past the end gets it too, but a sender that keeps in range sees it
      // only when the server's storage is out of space.
      return ResourceExhaustedError(m + " (no space left: the export is full)");
    case kEperm:
      return PermissionDeniedError(std::move(m));
    case kEinval:
    case kEoverflow:
      return InvalidArgumentError(std::move(m));
    case kEshutdown:
      return UnavailableError(std::move(m));
    case kEnotsup:
      return UnimplementedError(std::move(m));
    default:
      return InternalError(std::move(m));
  }
}

const char* OptionErrorName(uint32_t type) {
  switch (type) {
    case kRepErrUnsup:
      return "NBD_REP_ERR_UNSUP";
    case kRepErrPolicy:
      return "NBD_REP_ERR_POLICY";
    case kRepErrInvalid:
      return "NBD_REP_ERR_INVALID";
    case kRepErrPlatform:
      return "NBD_REP_ERR_PLATFORM";
    case kRepErrTlsReqd:
      return "NBD_REP_ERR_TLS_REQD";
    case kRepErrUnknown:
      return "NBD_REP_ERR_UNKNOWN";
    case kRepErrShutdown:
      return "NBD_REP_ERR_SHUTDOWN";
    case kRepErrBlockSizeReqd:
      return "NBD_REP_ERR_BLOCK_SIZE_REQD";
    case kRepErrTooBig:
      return "NBD_REP_ERR_TOO_BIG";
    default:
      return "NBD_REP_ERR";
  }
}

void SetTimeouts(int fd, std::chrono::milliseconds t) {
  timeval tv{};
  auto ms = std::max<int64_t>(1, t.count());
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

Result<Fd> ConnectTcp(const HostPort& portal, Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(portal.port);
  int rc = getaddrinfo(portal.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    return UnavailableError("NBD portal " + portal.ToString() + ": " + gai_strerror(rc));
  }
  Status last = UnavailableError("NBD portal " + portal.ToString() + ": no address");
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    Fd fd(socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
    if (!fd.valid()) {
      last = ErrnoError("NBD portal " + portal.ToString() + ": socket", errno);
      continue;
    }
    if (connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
      last = UnavailableError("NBD portal " + portal.ToString() +
                              ": connect: " + std::strerror(errno));
      continue;
    }
    pollfd p{fd.get(), POLLOUT, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    int n = poll(&p, 1, static_cast<int>(std::max<int64_t>(0, left.count())));
    if (n == 0) {
      freeaddrinfo(res);
      return DeadlineError("NBD portal " + portal.ToString() + ": connect timed out");
    }
    int err = 0;
    socklen_t len = sizeof(err);
    if (n < 0) err = errno;
    if (n > 0) getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      last =
          UnavailableError("NBD portal " + portal.ToString() + ": connect: " + std::strerror(err));
      continue;
    }
    // Blocking from here on: SO_RCVTIMEO/SO_SNDTIMEO bound each wait.
    const int fl = fcntl(fd.get(), F_GETFL);
    if (fl < 0 || fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK) != 0) {
      last = ErrnoError("NBD portal " + portal.ToString() + ": fcntl", errno);
      continue;
    }
    int one = 1;
    setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    freeaddrinfo(res);
    return fd;
  }
  freeaddrinfo(res);
  return last;
}

}  // namespace

std::string NbdErrorName(uint32_t error) {
  const char* name = ErrorValueName(error);
  return name ? name : "error " + std::to_string(error);
}

class NbdClient::Impl {
 public:
  Impl(Fd fd, std::string where, NbdClientOptions options)
      : fd_(std::move(fd)), where_(std::move(where)), options_(options) {}

  ~Impl() { (void)Close(); }

  Status Handshake(std::string_view export_name, Clock::time_point deadline) {
    if (export_name.size() > kMaxStringBytes) {
      return InvalidArgumentError("export name: longer than 4096 bytes");
    }
    char greeting[18];
    STRATA_RETURN_IF_ERROR(ReadAll(greeting, sizeof(greeting), deadline, "greeting"));
    if (GetBe64(greeting) != kNbdMagic || GetBe64(greeting + 8) != kOptsMagic) {
      return FailedPreconditionError(where_ + ": not a newstyle NBD server (bad greeting magic)");
    }
    const uint16_t server_flags = GetBe16(greeting + 16);
    if (!(server_flags & kFlagFixedNewstyle)) {
      return FailedPreconditionError(where_ + ": the server is not fixed-newstyle");
    }
    uint32_t client_flags = kClientFlagFixedNewstyle;
    if (server_flags & kFlagNoZeroes) client_flags |= kClientFlagNoZeroes;
    char cf[4];
    PutBe32(cf, client_flags);
    STRATA_RETURN_IF_ERROR(WriteAll(cf, sizeof(cf), "client flags"));

    // NBD_OPT_GO: name length, name, one information request (NBD_INFO_BLOCK_SIZE).
    std::string opt(16 + 4 + export_name.size() + 2 + 2, '\0');
    PutBe64(opt.data(), kOptsMagic);
    PutBe32(opt.data() + 8, kOptGo);
    PutBe32(opt.data() + 12, static_cast<uint32_t>(opt.size() - 16));
    PutBe32(opt.data() + 16, static_cast<uint32_t>(export_name.size()));
    std::memcpy(opt.data() + 20, export_name.data(), export_name.size());
    PutBe16(opt.data() + 20 + export_name.size(), 1);
    PutBe16(opt.data() + 22 + export_name.size(), kInfoBlockSize);
    STRATA_RETURN_IF_ERROR(WriteAll(opt.data(), opt.size(), "NBD_OPT_GO"));

    bool have_export = false;
    for (;;) {
      char h[20];
      STRATA_RETURN_IF_ERROR(ReadAll(h, sizeof(h), deadline, "option reply"));
      if (GetBe64(h) != kOptReplyMagic || GetBe32(h + 8) != kOptGo) {
        return InternalError(where_ + ": malformed reply to NBD_OPT_GO");
      }
      const uint32_t type = GetBe32(h + 12);
      const uint32_t len = GetBe32(h + 16);
      if (len > (64u << 10)) return InternalError(where_ + ": option reply too long");
      std::string data(len, '\0');
      if (len) STRATA_RETURN_IF_ERROR(ReadAll(data.data(), len, deadline, "option reply"));
      if (type & kRepErrBit) {
        std::string m = where_ + ": export '" + std::string(export_name) +
                        "': " + OptionErrorName(type) + (data.empty() ? "" : " (" + data + ")");
        switch (type) {
          case kRepErrUnknown:
            return NotFoundError(std::move(m));
          case kRepErrPolicy:
            return PermissionDeniedError(std::move(m));
          case kRepErrTlsReqd:
          case kRepErrUnsup:
            return FailedPreconditionError(std::move(m));
          case kRepErrShutdown:
            return UnavailableError(std::move(m));
          default:
            return InternalError(std::move(m));
        }
      }
      if (type == kRepInfo && len >= 2) {
        const uint16_t info = GetBe16(data.data());
        if (info == kInfoExport && len >= 12) {
          details_.size_bytes = GetBe64(data.data() + 2);
          details_.transmission_flags = GetBe16(data.data() + 10);
          have_export = true;
        } else if (info == kInfoBlockSize && len >= 14) {
          details_.min_block_size = GetBe32(data.data() + 2);
          details_.preferred_block_size = GetBe32(data.data() + 6);
          details_.max_payload_bytes = GetBe32(data.data() + 10);
        }
        continue;
      }
      if (type == kRepAck) break;
      // Other replies (unknown information) are to be ignored per the spec.
    }
    if (!have_export) return InternalError(where_ + ": NBD_OPT_GO ended without NBD_INFO_EXPORT");
    SetTimeouts(fd_.get(), options_.io_timeout);
    transmission_ = true;
    reader_ = std::thread([this] { ReadReplies(); });
    return Status::Ok();
  }

  // After a failed handshake: NBD_OPT_ABORT (the polite way out of option haggling;
  // no reply awaited), then close.
  void AbortHandshake() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    char opt[16];
    PutBe64(opt, kOptsMagic);
    PutBe32(opt + 8, kOptAbort);
    PutBe32(opt + 12, 0);
    (void)WriteAll(opt, sizeof(opt), "NBD_OPT_ABORT");
    shutdown(fd_.get(), SHUT_RDWR);
  }

  const NbdExportDetails& details() const { return details_; }

  Status Send(uint16_t type, uint64_t offset, uint32_t length, const char* data,
              std::shared_ptr<const void> hold) {
    char hdr[kRequestHeaderSize];
    STRATA_RETURN_IF_ERROR(Begin(type, offset, length, std::move(hold), hdr));
    iovec iov[2] = {{hdr, sizeof(hdr)}, {const_cast<char*>(data), data ? length : 0u}};
    Status s = WriteVec(iov, data ? 2 : 1, CommandName(type));
    if (!s.ok()) {
      std::lock_guard lock(mu_);
      return FailLocked(std::move(s));
    }
    return Status::Ok();
  }

  Status SendGuarded(uint64_t offset, std::span<const std::span<const char>> pieces,
                     uint32_t length, PayloadGuard& guard) {
    char hdr[kRequestHeaderSize];
    STRATA_RETURN_IF_ERROR(Begin(kCmdWrite, offset, length, nullptr, hdr));
    std::vector<iovec> iov;
    iov.reserve(pieces.size() + 1);
    iov.push_back({hdr, sizeof(hdr)});
    for (const auto& p : pieces) {
      if (!p.empty()) iov.push_back({const_cast<char*>(p.data()), p.size()});
    }
    iovec* at = iov.data();
    int count = static_cast<int>(iov.size());
    size_t sent = 0;  // of header and payload
    std::unique_ptr<char[]> fallback;
    auto fail = [&](Status s) {
      std::lock_guard lock(mu_);
      return FailLocked(std::move(s));
    };
    // Pinned: as much as the socket takes now, without waiting. Then, unpinned, wait
    // for room, and pin again for the next piece.
    while (count > 0) {
      if (!guard.Pin()) {
        // The rest from the fallback's bytes, at the same place in the payload.
        fallback.reset(new char[length]);
        Status s = guard.Fallback(std::span<char>(fallback.get(), length));
        if (!s.ok()) return fail(s.WithContext(where_ + ": NBD_CMD_WRITE payload"));
        iov.clear();
        if (sent < sizeof(hdr)) iov.push_back({hdr + sent, sizeof(hdr) - sent});
        const size_t done = sent < sizeof(hdr) ? 0 : sent - sizeof(hdr);
        iov.push_back({fallback.get() + done, length - done});
        s = WriteVec(iov.data(), static_cast<int>(iov.size()), "NBD_CMD_WRITE");
        if (!s.ok()) return fail(std::move(s));
        return Status::Ok();
      }
      msghdr msg{};
      msg.msg_iov = at;
      msg.msg_iovlen = static_cast<size_t>(std::min(count, 1024));  // UIO_MAXIOV
      ssize_t n = sendmsg(fd_.get(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
      const int err = errno;
      guard.Unpin();
      if (n < 0) {
        if (err == EINTR) continue;
        if (err != EAGAIN && err != EWOULDBLOCK) {
          return fail(UnavailableError(where_ + ": NBD_CMD_WRITE: " + std::strerror(err)));
        }
        n = 0;
      }
      sent += static_cast<size_t>(n);
      Advance(at, count, static_cast<size_t>(n));
      if (count == 0) break;
      if (n == 0) {
        pollfd pf{fd_.get(), POLLOUT, 0};
        int pr = poll(&pf, 1, static_cast<int>(options_.io_timeout.count()));
        if (pr < 0 && errno == EINTR) continue;
        if (pr == 0) {
          return fail(DeadlineError(where_ + ": NBD_CMD_WRITE: the server takes no data"));
        }
        if (pr < 0) {
          return fail(UnavailableError(where_ + ": NBD_CMD_WRITE: poll: " + std::strerror(errno)));
        }
      }
    }
    return Status::Ok();
  }

  // Takes a handle and room for one more request in flight (waiting for a reply when
  // there is none) and fills in the request's header.
  Status Begin(uint16_t type, uint64_t offset, uint32_t length, std::shared_ptr<const void> hold,
               char* hdr) {
    uint64_t handle;
    {
      std::unique_lock lock(mu_);
      const bool room = cv_.wait_for(lock, options_.io_timeout, [&] {
        return !error_.ok() || static_cast<int>(in_flight_.size()) < options_.max_in_flight;
      });
      if (!error_.ok()) return error_;
      if (!room) return FailLocked(DeadlineError(where_ + ": no reply within the I/O timeout"));
      handle = next_handle_++;
      in_flight_.emplace(handle, Pending{type, offset, length, std::move(hold)});
    }
    PutBe32(hdr, kRequestMagic);
    PutBe16(hdr + 4, 0);
    PutBe16(hdr + 6, type);
    PutBe64(hdr + 8, handle);
    PutBe64(hdr + 16, offset);
    PutBe32(hdr + 24, length);
    return Status::Ok();
  }

  Status WriteZeroes(uint64_t offset, uint64_t length) {
    if (details_.transmission_flags & kFlagSendWriteZeroes) {
      while (length > 0) {
        const uint64_t n = std::min(length, kMaxZeroesPerRequest);
        STRATA_RETURN_IF_ERROR(
            Send(kCmdWriteZeroes, offset, static_cast<uint32_t>(n), nullptr, nullptr));
        offset += n;
        length -= n;
      }
      return Status::Ok();
    }
    static const std::shared_ptr<const char[]> zeroes(new char[kZeroChunk]());
    const uint64_t chunk = std::min<uint64_t>(kZeroChunk, details_.max_payload_bytes);
    while (length > 0) {
      const uint64_t n = std::min(length, chunk);
      STRATA_RETURN_IF_ERROR(
          Send(kCmdWrite, offset, static_cast<uint32_t>(n), zeroes.get(), nullptr));
      offset += n;
      length -= n;
    }
    return Status::Ok();
  }

  Status Wait() {
    std::unique_lock lock(mu_);
    for (;;) {
      if (!error_.ok() || in_flight_.empty()) return error_;
      const uint64_t seen = replies_;
      cv_.wait_for(lock, options_.io_timeout,
                   [&] { return !error_.ok() || in_flight_.empty() || replies_ != seen; });
      if (error_.ok() && !in_flight_.empty() && replies_ == seen) {
        return FailLocked(DeadlineError(where_ + ": no reply within the I/O timeout"));
      }
    }
  }

  Status Close() {
    Status s = Wait();
    uint64_t disc_handle;
    {
      std::lock_guard lock(mu_);
      if (closed_) return error_;
      closed_ = true;
      disc_handle = next_handle_++;
    }
    if (s.ok() && transmission_) {
      char hdr[kRequestHeaderSize] = {};
      PutBe32(hdr, kRequestMagic);
      PutBe16(hdr + 6, kCmdDisc);
      PutBe64(hdr + 8, disc_handle);
      iovec iov{hdr, sizeof(hdr)};
      (void)WriteVec(&iov, 1, "NBD_CMD_DISC");
    }
    shutdown(fd_.get(), SHUT_RDWR);
    if (reader_.joinable()) reader_.join();
    std::lock_guard lock(mu_);
    in_flight_.clear();
    return error_;
  }

 private:
  struct Pending {
    uint16_t type;
    uint64_t offset;
    uint32_t length;
    std::shared_ptr<const void> hold;
  };

  Status FailLocked(Status s) {
    if (error_.ok()) {
      error_ = std::move(s);
      // Nothing more goes out; the reader ends on the shut-down socket.
      shutdown(fd_.get(), SHUT_RDWR);
    }
    cv_.notify_all();
    return error_;
  }

  void ReadReplies() {
    for (;;) {
      char r[kSimpleReplyHeaderSize];
      size_t got = 0;
      while (got < sizeof(r)) {
        ssize_t n = recv(fd_.get(), r + got, sizeof(r) - got, 0);
        if (n > 0) {
          got += static_cast<size_t>(n);
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        std::lock_guard lock(mu_);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          if (in_flight_.empty() && got == 0 && !closed_) continue;  // idle: no reply due
          (void)FailLocked(DeadlineError(where_ + ": no reply within the I/O timeout"));
          return;
        }
        if (closed_ || !error_.ok()) return;
        (void)FailLocked(UnavailableError(where_ + ": connection closed by the server" +
                                          (n < 0 ? std::string(": ") + std::strerror(errno) : "")));
        return;
      }
      std::lock_guard lock(mu_);
      if (GetBe32(r) != kSimpleReplyMagic) {
        (void)FailLocked(InternalError(where_ + ": reply with a bad magic (structured replies were "
                                                "not negotiated)"));
        return;
      }
      const uint32_t error = GetBe32(r + 4);
      auto it = in_flight_.find(GetBe64(r + 8));
      if (it == in_flight_.end()) {
        (void)FailLocked(InternalError(where_ + ": reply to a request never sent"));
        return;
      }
      if (error != 0) {
        const Pending& p = it->second;
        (void)FailLocked(StatusFromNbdError(error, where_ + ": " + CommandName(p.type) + " at " +
                                                       std::to_string(p.offset) + "+" +
                                                       std::to_string(p.length)));
      }
      in_flight_.erase(it);
      ++replies_;
      cv_.notify_all();
      if (!error_.ok()) return;
    }
  }

  Status ReadAll(char* p, size_t n, Clock::time_point deadline, const char* what) {
    while (n > 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return DeadlineError(where_ + ": handshake timed out");
      pollfd pf{fd_.get(), POLLIN, 0};
      int pr = poll(&pf, 1, static_cast<int>(left.count()));
      if (pr < 0 && errno == EINTR) continue;
      if (pr == 0) return DeadlineError(where_ + ": handshake timed out");
      ssize_t got = recv(fd_.get(), p, n, 0);
      if (got > 0) {
        p += got;
        n -= static_cast<size_t>(got);
        continue;
      }
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      return UnavailableError(where_ + ": connection closed during the handshake (" + what + ")");
    }
    return Status::Ok();
  }

  Status WriteAll(const char* p, size_t n, const char* what) {
    iovec iov{const_cast<char*>(p), n};
    return WriteVec(&iov, 1, what);
  }

  // Blocking send of every byte (SO_SNDTIMEO bounds each wait for room).
  Status WriteVec(iovec* iov, int count, const char* what) {
    while (count > 0) {
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = static_cast<size_t>(count);
      ssize_t n = sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          return DeadlineError(where_ + ": " + what + ": the server takes no data");
        }
        return UnavailableError(where_ + ": " + what + ": " + std::strerror(errno));
      }
      Advance(iov, count, static_cast<size_t>(n));
    }
    return Status::Ok();
  }

  // Past `n` bytes sent from the front of iov[0..count).
  static void Advance(iovec*& iov, int& count, size_t n) {
    while (count > 0 && n >= iov->iov_len) {
      n -= iov->iov_len;
      ++iov;
      --count;
    }
    if (count > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + n;
      iov->iov_len -= n;
    }
  }

  Fd fd_;
  const std::string where_;
  const NbdClientOptions options_;
  NbdExportDetails details_;
  bool transmission_ = false;  // the handshake ended with NBD_REP_ACK
  std::thread reader_;

  std::mutex mu_;
  std::condition_variable cv_;  // waits on mu_: a reply came, or the connection failed
  std::unordered_map<uint64_t, Pending> in_flight_;  // guarded by mu_
  uint64_t next_handle_ = 1;                         // guarded by mu_
  uint64_t replies_ = 0;                             // guarded by mu_
  bool closed_ = false;                              // guarded by mu_
  Status error_;                                     // guarded by mu_: the first failure
};

Result<std::unique_ptr<NbdClient>> NbdClient::Connect(const HostPort& portal,
                                                      std::string_view export_name,
                                                      NbdClientOptions options) {
  if (options.max_in_flight < 1) {
    return InvalidArgumentError("max_in_flight: must be at least 1");
  }
  const Clock::time_point deadline = Clock::now() + options.connect_timeout;
  STRATA_ASSIGN_OR_RETURN(Fd fd, ConnectTcp(portal, deadline));
  auto impl = std::make_unique<Impl>(std::move(fd), "NBD " + portal.ToString(), options);
  if (Status s = impl->Handshake(export_name, deadline); !s.ok()) {
    impl->AbortHandshake();
    return s;
  }
  return std::unique_ptr<NbdClient>(new NbdClient(std::move(impl)));
}

NbdClient::NbdClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NbdClient::~NbdClient() = default;

const NbdExportDetails& NbdClient::details() const { return impl_->details(); }

Status NbdClient::Write(uint64_t offset, std::span<const char> data,
                        std::shared_ptr<const void> hold) {
  if (data.empty() || data.size() > details().max_payload_bytes) {
    return InvalidArgumentError("NBD_CMD_WRITE: length " + std::to_string(data.size()) +
                                " not in 1.." + std::to_string(details().max_payload_bytes));
  }
  return impl_->Send(kCmdWrite, offset, static_cast<uint32_t>(data.size()), data.data(),
                     std::move(hold));
}

Status NbdClient::WriteGuarded(uint64_t offset, std::span<const std::span<const char>> pieces,
                               PayloadGuard& guard) {
  uint64_t total = 0;
  for (const auto& p : pieces) total += p.size();
  if (total == 0 || total > details().max_payload_bytes) {
    return InvalidArgumentError("NBD_CMD_WRITE: length " + std::to_string(total) + " not in 1.." +
                                std::to_string(details().max_payload_bytes));
  }
  return impl_->SendGuarded(offset, pieces, static_cast<uint32_t>(total), guard);
}

Status NbdClient::WriteZeroes(uint64_t offset, uint64_t length) {
  return impl_->WriteZeroes(offset, length);
}

Status NbdClient::Flush() {
  if (!(details().transmission_flags & kFlagSendFlush)) {
    return FailedPreconditionError("NBD_CMD_FLUSH: the export does not take it");
  }
  STRATA_RETURN_IF_ERROR(impl_->Send(kCmdFlush, 0, 0, nullptr, nullptr));
  return impl_->Wait();
}

Status NbdClient::Wait() { return impl_->Wait(); }
Status NbdClient::Close() { return impl_->Close(); }

}  // namespace strata::nbd
