#include "nbd_client.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>

#include "nbd_tls_client.h"
#include "strata/common/net_address.h"
#include "strata/common/status.h"
#include "strata/nbd/protocol.h"

namespace strata::csi {
namespace {

namespace wire = ::strata::nbd;

// At most this many option replies to one NBD_OPT_GO (NBD_REP_INFO items, then the ACK).
constexpr int kMaxGoReplies = 64;
// The longest option reply payload accepted.
constexpr uint32_t kMaxOptionReplyBytes = 1u << 20;

Status SendAll(int fd, const void* buf, size_t n) {
  const char* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("nbd handshake: send", errno);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

Status RecvAll(int fd, void* buf, size_t n) {
  char* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t r = recv(fd, p, n, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("nbd handshake: recv", errno);
    }
    if (r == 0) return UnavailableError("nbd handshake: server closed the connection");
    p += r;
    n -= static_cast<size_t>(r);
  }
  return Status::Ok();
}

class PlainStream final : public NbdStream {
 public:
  explicit PlainStream(int fd) : fd_(fd) {}
  Status SendAll(const void* buf, size_t n) override { return ::strata::csi::SendAll(fd_, buf, n); }
  Status RecvAll(void* buf, size_t n) override { return ::strata::csi::RecvAll(fd_, buf, n); }

 private:
  const int fd_;
};

void AppendBe16(std::string* b, uint16_t v) {
  char p[2];
  wire::PutBe16(p, v);
  b->append(p, sizeof p);
}
void AppendBe32(std::string* b, uint32_t v) {
  char p[4];
  wire::PutBe32(p, v);
  b->append(p, sizeof p);
}
void AppendBe64(std::string* b, uint64_t v) {
  char p[8];
  wire::PutBe64(p, v);
  b->append(p, sizeof p);
}

void SetTimeouts(int fd, std::chrono::seconds t) {
  timeval tv{static_cast<time_t>(t.count()), 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

}  // namespace

Result<Fd> DialNbdPortal(const std::string& portal) {
  auto hp = ParseHostPort(portal, "portal");
  if (!hp.ok()) return hp.status();
  const std::string port = std::to_string(hp->port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(hp->host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return UnavailableError("portal " + portal + ": " + gai_strerror(rc));
  }
  int err = ECONNREFUSED;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    Fd fd(socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd.valid()) {
      err = errno;
      continue;
    }
    SetTimeouts(fd.get(), kNbdHandshakeTimeout);
    if (connect(fd.get(), ai->ai_addr, ai->ai_addrlen) == 0) {
      int one = 1;
      setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      freeaddrinfo(res);
      return fd;
    }
    err = errno;
  }
  freeaddrinfo(res);
  return ErrnoError("connect to " + portal, err);
}

namespace {

// NBD_OPT_STARTTLS on the plain socket: OK on NBD_REP_ACK.
Status StartTls(int fd) {
  std::string out;
  AppendBe64(&out, wire::kOptsMagic);
  AppendBe32(&out, wire::kOptStartTls);
  AppendBe32(&out, 0);
  STRATA_RETURN_IF_ERROR(SendAll(fd, out.data(), out.size()));
  char header[20];
  STRATA_RETURN_IF_ERROR(RecvAll(fd, header, sizeof header));
  const uint32_t rtype = wire::GetBe32(header + 12);
  const uint32_t rlen = wire::GetBe32(header + 16);
  if (wire::GetBe64(header) != wire::kOptReplyMagic ||
      wire::GetBe32(header + 8) != wire::kOptStartTls || rlen > kMaxOptionReplyBytes) {
    return UnavailableError("nbd handshake: malformed reply to NBD_OPT_STARTTLS");
  }
  std::string data(rlen, '\0');
  if (rlen > 0) STRATA_RETURN_IF_ERROR(RecvAll(fd, data.data(), data.size()));
  if (rtype == wire::kRepAck && rlen == 0) return Status::Ok();
  if (rtype & wire::kRepErrBit) {
    return FailedPreconditionError(
        "the device does not offer TLS (NBD_OPT_STARTTLS refused, error " +
        std::to_string(rtype & ~wire::kRepErrBit) + (data.empty() ? "" : ": " + data) +
        ") and this node requires it (--nbd-tls=require)");
  }
  return UnavailableError("nbd handshake: unexpected reply " + std::to_string(rtype) +
                          " to NBD_OPT_STARTTLS");
}

// NBD_OPT_GO for `export_name` over `io`, up to its NBD_REP_ACK.
Result<NbdExportInfo> Go(NbdStream& io, const std::string& export_name, bool tls) {
  std::string out;
  AppendBe64(&out, wire::kOptsMagic);
  AppendBe32(&out, wire::kOptGo);
  AppendBe32(&out, static_cast<uint32_t>(4 + export_name.size() + 2));
  AppendBe32(&out, static_cast<uint32_t>(export_name.size()));
  out += export_name;
  AppendBe16(&out, 0);  // no information requests
  STRATA_RETURN_IF_ERROR(io.SendAll(out.data(), out.size()));

  NbdExportInfo info;
  bool have_info = false;
  for (int replies = 0; replies < kMaxGoReplies; ++replies) {
    // Option reply header: magic, option, reply type, length.
    char header[20];
    STRATA_RETURN_IF_ERROR(io.RecvAll(header, sizeof header));
    const uint64_t rmagic = wire::GetBe64(header);
    const uint32_t ropt = wire::GetBe32(header + 8);
    const uint32_t rtype = wire::GetBe32(header + 12);
    const uint32_t rlen = wire::GetBe32(header + 16);
    if (rmagic != wire::kOptReplyMagic || ropt != wire::kOptGo || rlen > kMaxOptionReplyBytes) {
      return UnavailableError("nbd handshake: malformed option reply");
    }
    std::string data(rlen, '\0');
    if (rlen > 0) STRATA_RETURN_IF_ERROR(io.RecvAll(data.data(), data.size()));
    if (rtype == wire::kRepErrTlsReqd && !tls) {
      return FailedPreconditionError(
          "the device requires TLS (NBD_REP_ERR_TLS_REQD) and this node has no NBD client "
          "certificate: start strata-csi with --nbd-tls=require --nbd-tls-cert --nbd-tls-key "
          "--nbd-tls-ca (chart: csi.node.nbdTlsSecret)");
    }
    if (rtype & wire::kRepErrBit) {
      return NotFoundError("nbd handshake: export '" + export_name + "' refused (error " +
                           std::to_string(rtype & ~wire::kRepErrBit) + ")" +
                           (data.empty() ? "" : ": " + data));
    }
    if (rtype == wire::kRepInfo && data.size() >= 12) {
      if (wire::GetBe16(data.data()) == wire::kInfoExport) {
        info.size = wire::GetBe64(data.data() + 2);
        info.flags = wire::GetBe16(data.data() + 10);
        have_info = true;
      }
    } else if (rtype == wire::kRepAck) {
      if (!have_info) return UnavailableError("nbd handshake: no export information");
      return info;
    }
  }
  return UnavailableError("nbd handshake: too many option replies");
}

}  // namespace

Result<NbdExportInfo> NbdHandshake(int fd, const std::string& export_name, const std::string& host,
                                   const NbdClientTls& tls) {
  // Server greeting: NBDMAGIC, IHAVEOPT, 16-bit handshake flags.
  char greeting[18];
  STRATA_RETURN_IF_ERROR(RecvAll(fd, greeting, sizeof greeting));
  if (wire::GetBe64(greeting) != wire::kNbdMagic ||
      wire::GetBe64(greeting + 8) != wire::kOptsMagic) {
    return UnavailableError("nbd handshake: not a newstyle NBD server");
  }
  const uint16_t hflags = wire::GetBe16(greeting + 16);
  if ((hflags & wire::kFlagFixedNewstyle) == 0) {
    return UnavailableError("nbd handshake: server is not fixed newstyle");
  }
  std::string out;
  AppendBe32(&out, (hflags & wire::kFlagNoZeroes)
                       ? (wire::kClientFlagFixedNewstyle | wire::kClientFlagNoZeroes)
                       : wire::kClientFlagFixedNewstyle);
  STRATA_RETURN_IF_ERROR(SendAll(fd, out.data(), out.size()));
  if (!tls.require) {
    PlainStream plain(fd);
    return Go(plain, export_name, false);
  }
  STRATA_RETURN_IF_ERROR(StartTls(fd));
  auto session = NbdTlsClient::Connect(fd, host, tls);
  if (!session.ok()) return session.status();
  auto info = Go(**session, export_name, true);
  if (!info.ok()) return info.status();
  // The kernel nbd driver takes the socket as it is: both directions must be in kTLS.
  STRATA_RETURN_IF_ERROR((*session)->ReadyForKernel());
  return info;
}

Result<Fd> OpenNbdExport(const std::string& portal, const std::string& export_name,
                         const NbdClientTls& tls, NbdExportInfo* info) {
  auto fd = DialNbdPortal(portal);
  if (!fd.ok()) return fd.status();
  auto hp = ParseHostPort(portal, "portal");
  if (!hp.ok()) return hp.status();
  auto got = NbdHandshake(fd->get(), export_name, hp->host, tls);
  if (!got.ok()) return got.status();
  *info = *got;
  SetTimeouts(fd->get(), std::chrono::seconds(0));
  return std::move(*fd);
}

}  // namespace strata::csi
