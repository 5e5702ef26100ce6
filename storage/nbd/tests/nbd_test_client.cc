#include "nbd_test_client.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace strata::nbd::test {

std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 12345;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    s[i] = static_cast<char>(x);
  }
  return s;
}

Result<std::unique_ptr<TestClient>> TestClient::Connect(const HostPort& portal,
                                                        const std::string& source) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port = std::to_string(portal.port);
  if (::getaddrinfo(portal.host.c_str(), port.c_str(), &hints, &res) != 0) {
    return InvalidArgumentError("cannot resolve " + portal.ToString());
  }
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ::freeaddrinfo(res);
    return ErrnoError("socket", errno);
  }
  if (!source.empty()) {
    addrinfo* src = nullptr;
    addrinfo shints{};
    shints.ai_family = res->ai_family;
    shints.ai_socktype = SOCK_STREAM;
    shints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
    if (::getaddrinfo(source.c_str(), nullptr, &shints, &src) != 0) {
      ::close(fd);
      ::freeaddrinfo(res);
      return InvalidArgumentError("source address '" + source +
                                  "' is not an IP of the portal's family");
    }
    int brc = ::bind(fd, src->ai_addr, src->ai_addrlen);
    int berr = errno;
    ::freeaddrinfo(src);
    if (brc != 0) {
      ::close(fd);
      ::freeaddrinfo(res);
      return ErrnoError("bind " + source, berr);
    }
  }
  int rc = ::connect(fd, res->ai_addr, res->ai_addrlen);
  int err = errno;
  ::freeaddrinfo(res);
  if (rc != 0) {
    ::close(fd);
    return ErrnoError("connect " + portal.ToString(), err);
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  return std::unique_ptr<TestClient>(new TestClient(fd));
}

TestClient::~TestClient() { Close(); }

void TestClient::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void TestClient::ShutdownWrite() { ::shutdown(fd_, SHUT_WR); }

Status TestClient::SendRaw(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("send", errno);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Result<std::string> TestClient::RecvExactly(size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::recv(fd_, out.data() + got, n - got, 0);
    if (r == 0) return UnavailableError("server closed the connection");
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("recv", errno);
    }
    got += static_cast<size_t>(r);
  }
  return out;
}

bool TestClient::WaitClosed(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[65536];
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    int rc = ::poll(&p, 1, static_cast<int>(left.count()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) return false;
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n == 0) return true;
    if (n < 0 && errno != EINTR && errno != EAGAIN) return true;  // reset
  }
}

Result<uint16_t> TestClient::ReadGreeting() {
  STRATA_ASSIGN_OR_RETURN(std::string g, RecvExactly(18));
  if (GetBe64(g.data()) != kNbdMagic) return InternalError("greeting: bad NBDMAGIC");
  if (GetBe64(g.data() + 8) != kOptsMagic) return InternalError("greeting: bad IHAVEOPT");
  return GetBe16(g.data() + 16);
}

Status TestClient::SendClientFlags(uint32_t flags) { return SendRaw(Be32(flags)); }

Status TestClient::Greet(uint32_t client_flags) {
  STRATA_RETURN_IF_ERROR(ReadGreeting().status());
  return SendClientFlags(client_flags);
}

Status TestClient::SendOption(uint32_t option, std::string_view data) {
  return SendRaw(Be64(kOptsMagic) + Be32(option) + Be32(static_cast<uint32_t>(data.size())) +
                 std::string(data));
}

Result<OptionReply> TestClient::ReadOptionReply() {
  STRATA_ASSIGN_OR_RETURN(std::string h, RecvExactly(20));
  if (GetBe64(h.data()) != kOptReplyMagic) return InternalError("option reply: bad magic");
  OptionReply r;
  r.option = GetBe32(h.data() + 8);
  r.type = GetBe32(h.data() + 12);
  uint32_t len = GetBe32(h.data() + 16);
  if (len > (1u << 20)) return InternalError("option reply: absurd length");
  STRATA_ASSIGN_OR_RETURN(r.data, RecvExactly(len));
  return r;
}

std::string TestClient::GoData(std::string_view name, const std::vector<uint16_t>& requests) {
  std::string d = Be32(static_cast<uint32_t>(name.size())) + std::string(name) +
                  Be16(static_cast<uint16_t>(requests.size()));
  for (uint16_t r : requests) d += Be16(r);
  return d;
}

Result<InfoResult> TestClient::InfoOrGo(uint32_t option, std::string_view name,
                                        const std::vector<uint16_t>& requests) {
  STRATA_RETURN_IF_ERROR(SendOption(option, GoData(name, requests)));
  InfoResult out;
  while (true) {
    STRATA_ASSIGN_OR_RETURN(OptionReply r, ReadOptionReply());
    if (r.option != option) return InternalError("reply for another option");
    if (r.type != kRepInfo) {
      out.final_type = r.type;
      if (r.type != kRepAck) out.error_message = r.data;
      return out;
    }
    if (r.data.size() < 2) return InternalError("NBD_REP_INFO shorter than 2 bytes");
    uint16_t info = GetBe16(r.data.data());
    switch (info) {
      case kInfoExport:
        if (r.data.size() != 12) return InternalError("NBD_INFO_EXPORT length != 12");
        out.have_export = true;
        out.size = GetBe64(r.data.data() + 2);
        out.flags = GetBe16(r.data.data() + 10);
        break;
      case kInfoBlockSize:
        if (r.data.size() != 14) return InternalError("NBD_INFO_BLOCK_SIZE length != 14");
        out.have_block_size = true;
        out.min_block = GetBe32(r.data.data() + 2);
        out.preferred_block = GetBe32(r.data.data() + 6);
        out.max_block = GetBe32(r.data.data() + 10);
        break;
      case kInfoName:
        out.name = r.data.substr(2);
        break;
      case kInfoDescription:
        out.description = r.data.substr(2);
        break;
      default:
        break;
    }
  }
}

Status TestClient::Handshake(std::string_view export_name, bool structured_replies) {
  STRATA_RETURN_IF_ERROR(Greet());
  if (structured_replies) {
    STRATA_RETURN_IF_ERROR(SendOption(kOptStructuredReply, {}));
    STRATA_ASSIGN_OR_RETURN(OptionReply r, ReadOptionReply());
    if (r.type != kRepAck) return InternalError("structured replies refused");
  }
  STRATA_ASSIGN_OR_RETURN(InfoResult go, InfoOrGo(kOptGo, export_name, {kInfoBlockSize}));
  if (go.final_type != kRepAck) {
    return InternalError("NBD_OPT_GO failed: type " + std::to_string(go.final_type) + ": " +
                         go.error_message);
  }
  return Status::Ok();
}

Status TestClient::SendRequest(uint16_t type, uint16_t flags, uint64_t handle, uint64_t offset,
                               uint32_t length, std::string_view payload) {
  pending_[handle] = Pending{type, length, offset};
  std::string h =
      Be32(kRequestMagic) + Be16(flags) + Be16(type) + Be64(handle) + Be64(offset) + Be32(length);
  return SendRaw(h + std::string(payload));
}

Status TestClient::SendRequestsAtOnce(const std::vector<RequestHeader>& requests) {
  std::string all;
  for (const RequestHeader& r : requests) {
    pending_[r.handle] = Pending{r.type, r.length, r.offset};
    all += Be32(kRequestMagic) + Be16(0) + Be16(r.type) + Be64(r.handle) + Be64(r.offset) +
           Be32(r.length);
  }
  return SendRaw(all);
}

Result<Reply> TestClient::ReadReply() {
  STRATA_ASSIGN_OR_RETURN(std::string m, RecvExactly(4));
  uint32_t magic = GetBe32(m.data());
  Reply r;
  if (magic == kSimpleReplyMagic) {
    STRATA_ASSIGN_OR_RETURN(std::string h, RecvExactly(12));
    r.error = GetBe32(h.data());
    r.handle = GetBe64(h.data() + 4);
    auto it = pending_.find(r.handle);
    if (it == pending_.end()) return InternalError("reply for an unknown handle");
    Pending p = it->second;
    pending_.erase(it);
    if (p.type == kCmdRead && r.error == 0) {
      STRATA_ASSIGN_OR_RETURN(r.data, RecvExactly(p.length));
    }
    return r;
  }
  if (magic != kStructuredReplyMagic) return InternalError("reply with a bad magic");
  r.structured = true;
  bool first = true;
  while (true) {
    if (!first) {
      STRATA_ASSIGN_OR_RETURN(std::string mm, RecvExactly(4));
      if (GetBe32(mm.data()) != kStructuredReplyMagic) {
        return InternalError("chunk with a bad magic");
      }
    }
    STRATA_ASSIGN_OR_RETURN(std::string h, RecvExactly(16));
    uint16_t flags = GetBe16(h.data());
    uint16_t type = GetBe16(h.data() + 2);
    uint64_t handle = GetBe64(h.data() + 4);
    uint32_t len = GetBe32(h.data() + 12);
    if (!first && handle != r.handle) return InternalError("interleaved chunks");
    r.handle = handle;
    auto it = pending_.find(handle);
    if (it == pending_.end()) return InternalError("chunk for an unknown handle");
    first = false;
    STRATA_ASSIGN_OR_RETURN(std::string payload, RecvExactly(len));
    if (type == kReplyTypeOffsetData) {
      if (len < 9) return InternalError("OFFSET_DATA shorter than 9");
      // Single-chunk or in-order chunks are all this server sends.
      if (GetBe64(payload.data()) != it->second.offset + r.data.size()) {
        return InternalError("OFFSET_DATA at an unexpected offset");
      }
      r.data += payload.substr(8);
    } else if (type == kReplyTypeError) {
      if (len < 6) return InternalError("ERROR chunk shorter than 6");
      r.error = GetBe32(payload.data());
      uint16_t mlen = GetBe16(payload.data() + 4);
      if (mlen > len - 6) return InternalError("ERROR message longer than the chunk");
      r.message = payload.substr(6, mlen);
    } else if (type != kReplyTypeNone) {
      return InternalError("unexpected chunk type " + std::to_string(type));
    }
    if (flags & kReplyFlagDone) {
      pending_.erase(it);
      return r;
    }
  }
}

Result<Reply> TestClient::Call(uint16_t type, uint16_t flags, uint64_t offset, uint32_t length,
                               std::string_view payload) {
  uint64_t handle = next_handle_++;
  STRATA_RETURN_IF_ERROR(SendRequest(type, flags, handle, offset, length, payload));
  STRATA_ASSIGN_OR_RETURN(Reply r, ReadReply());
  if (r.handle != handle) return InternalError("reply for handle " + std::to_string(r.handle));
  return r;
}

}  // namespace strata::nbd::test
