// NodeHost on Linux: NBD fixed-newstyle handshake in userspace, then the socket handed to
// the kernel over generic netlink family "nbd" (raw netlink, no libnl); dm-multipath
// through dmsetup; bind mounts through mount(2).
#include <arpa/inet.h>
#include <endian.h>
#include <fcntl.h>
#include <linux/genetlink.h>
#include <linux/nbd-netlink.h>
#include <linux/netlink.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "strata/csi/node_host.h"

extern char** environ;

namespace strata::csi {

std::vector<std::string> SplitPortals(std::string_view portals) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= portals.size()) {
    size_t comma = portals.find(',', start);
    if (comma == std::string_view::npos) comma = portals.size();
    std::string_view item = portals.substr(start, comma - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) out.emplace_back(item);
    start = comma + 1;
  }
  return out;
}

Result<std::string> DmNameForWwn(std::string_view wwn, std::string_view prefix) {
  std::string name(prefix);
  bool any = false;
  for (char c : wwn) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      name += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      any = true;
    }
  }
  if (!any)
    return InvalidArgumentError("publish_context: wwn '" + std::string(wwn) + "' is not usable");
  return name;
}

std::string MultipathTable(uint64_t size_bytes, const std::vector<std::string>& devs) {
  std::string t = "0 " + std::to_string(size_bytes / 512) +
                  " multipath 1 queue_if_no_path 0 1 1 round-robin 0 " +
                  std::to_string(devs.size()) + " 1";
  for (const auto& d : devs) t += " " + d + " 1";
  return t;
}

Result<std::vector<DmPath>> ParseMultipathStatus(std::string_view status) {
  std::istringstream in{std::string(status)};
  std::vector<std::string> t;
  for (std::string w; in >> w;) t.push_back(w);
  size_t i = 0;
  auto bad = [&](const char* why) {
    return InternalError("dm multipath status '" + std::string(status) + "': " + why);
  };
  auto number = [&](uint64_t* out) {
    if (i >= t.size()) return false;
    char* end = nullptr;
    *out = std::strtoull(t[i].c_str(), &end, 10);
    if (end == t[i].c_str() || *end != '\0') return false;
    ++i;
    return true;
  };
  // start length "multipath"
  if (t.size() < 3 || t[2] != "multipath") return bad("not a multipath target");
  i = 3;
  uint64_t n = 0;
  if (!number(&n)) return bad("no feature count");  // features
  i += n;
  if (!number(&n)) return bad("no hardware handler count");
  i += n;
  uint64_t groups = 0, next_group = 0;
  if (!number(&groups) || !number(&next_group)) return bad("no path group count");
  std::vector<DmPath> paths;
  for (uint64_t g = 0; g < groups; ++g) {
    ++i;  // group state A/D/E
    if (!number(&n)) return bad("no selector status count");
    i += n;
    uint64_t npaths = 0, info_args = 0;
    if (!number(&npaths) || !number(&info_args)) return bad("no path count");
    for (uint64_t p = 0; p < npaths; ++p) {
      if (i + 3 > t.size()) return bad("truncated path");
      DmPath path;
      path.dev = t[i];
      path.active = t[i + 1] == "A";
      i += 3 + info_args;  // dev, A|F, fail count, selector info
      paths.push_back(std::move(path));
    }
  }
  if (i > t.size()) return bad("truncated");
  return paths;
}

namespace {

namespace fs = std::filesystem;

// NBD wire constants (see storage/nbd/include/strata/nbd/protocol.h).
constexpr uint64_t kNbdMagic = 0x4e42444d41474943ull;
constexpr uint64_t kOptsMagic = 0x49484156454F5054ull;
constexpr uint64_t kOptReplyMagic = 0x3e889045565a9ull;
constexpr uint16_t kFlagFixedNewstyle = 1 << 0;
constexpr uint16_t kFlagNoZeroes = 1 << 1;
constexpr uint32_t kOptGo = 7;
constexpr uint32_t kRepAck = 1;
constexpr uint32_t kRepInfo = 3;
constexpr uint32_t kRepErrBit = 1u << 31;
constexpr uint16_t kInfoExport = 0;

constexpr uint64_t kBlockSize = 4096;
constexpr uint64_t kRequestTimeoutSec = 5;
constexpr int kHandshakeTimeoutSec = 10;

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

Status WriteAll(int fd, const void* buf, size_t n) {
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

Status ReadAll(int fd, void* buf, size_t n) {
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

Result<uint64_t> ReadU64(int fd) {
  uint64_t v = 0;
  STRATA_RETURN_IF_ERROR(ReadAll(fd, &v, sizeof v));
  return be64toh(v);
}
Result<uint32_t> ReadU32(int fd) {
  uint32_t v = 0;
  STRATA_RETURN_IF_ERROR(ReadAll(fd, &v, sizeof v));
  return be32toh(v);
}
Result<uint16_t> ReadU16(int fd) {
  uint16_t v = 0;
  STRATA_RETURN_IF_ERROR(ReadAll(fd, &v, sizeof v));
  return be16toh(v);
}
void PutU64(std::string* b, uint64_t v) {
  v = htobe64(v);
  b->append(reinterpret_cast<const char*>(&v), sizeof v);
}
void PutU32(std::string* b, uint32_t v) {
  v = htobe32(v);
  b->append(reinterpret_cast<const char*>(&v), sizeof v);
}
void PutU16(std::string* b, uint16_t v) {
  v = htobe16(v);
  b->append(reinterpret_cast<const char*>(&v), sizeof v);
}

Result<int> DialPortal(const std::string& portal) {
  size_t colon = portal.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == portal.size()) {
    return InvalidArgumentError("portal '" + portal + "' is not HOST:PORT");
  }
  std::string host = portal.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string port = portal.substr(colon + 1);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return UnavailableError("portal " + portal + ": " + gai_strerror(rc));
  }
  int err = ECONNREFUSED;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    timeval tv{kHandshakeTimeoutSec, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      freeaddrinfo(res);
      return fd;
    }
    err = errno;
    close(fd);
  }
  freeaddrinfo(res);
  return ErrnoError("connect to " + portal, err);
}

struct ExportInfo {
  uint64_t size = 0;
  uint16_t flags = 0;
};

// Fixed newstyle handshake ending in NBD_OPT_GO for `name`.
Result<ExportInfo> Handshake(int fd, const std::string& name) {
  auto magic = ReadU64(fd);
  if (!magic.ok()) return magic.status();
  auto opts = ReadU64(fd);
  if (!opts.ok()) return opts.status();
  if (*magic != kNbdMagic || *opts != kOptsMagic) {
    return UnavailableError("nbd handshake: not a newstyle NBD server");
  }
  auto hflags = ReadU16(fd);
  if (!hflags.ok()) return hflags.status();
  if ((*hflags & kFlagFixedNewstyle) == 0) {
    return UnavailableError("nbd handshake: server is not fixed newstyle");
  }
  std::string out;
  PutU32(&out,
         (*hflags & kFlagNoZeroes) ? (kFlagFixedNewstyle | kFlagNoZeroes) : kFlagFixedNewstyle);
  PutU64(&out, kOptsMagic);
  PutU32(&out, kOptGo);
  PutU32(&out, static_cast<uint32_t>(4 + name.size() + 2));
  PutU32(&out, static_cast<uint32_t>(name.size()));
  out += name;
  PutU16(&out, 0);  // no information requests
  STRATA_RETURN_IF_ERROR(WriteAll(fd, out.data(), out.size()));

  ExportInfo info;
  bool have_info = false;
  for (int replies = 0; replies < 64; ++replies) {
    auto rmagic = ReadU64(fd);
    if (!rmagic.ok()) return rmagic.status();
    auto ropt = ReadU32(fd);
    if (!ropt.ok()) return ropt.status();
    auto rtype = ReadU32(fd);
    if (!rtype.ok()) return rtype.status();
    auto rlen = ReadU32(fd);
    if (!rlen.ok()) return rlen.status();
    if (*rmagic != kOptReplyMagic || *ropt != kOptGo || *rlen > (1u << 20)) {
      return UnavailableError("nbd handshake: malformed option reply");
    }
    std::string data(*rlen, '\0');
    if (*rlen > 0) STRATA_RETURN_IF_ERROR(ReadAll(fd, data.data(), data.size()));
    if (*rtype & kRepErrBit) {
      return NotFoundError("nbd handshake: export '" + name + "' refused (error " +
                           std::to_string(*rtype & ~kRepErrBit) + ")" +
                           (data.empty() ? "" : ": " + data));
    }
    if (*rtype == kRepInfo && data.size() >= 12) {
      uint16_t itype = 0;
      std::memcpy(&itype, data.data(), 2);
      if (be16toh(itype) == kInfoExport) {
        uint64_t size = 0;
        uint16_t flags = 0;
        std::memcpy(&size, data.data() + 2, 8);
        std::memcpy(&flags, data.data() + 10, 2);
        info.size = be64toh(size);
        info.flags = be16toh(flags);
        have_info = true;
      }
    } else if (*rtype == kRepAck) {
      if (!have_info) return UnavailableError("nbd handshake: no export information");
      return info;
    }
  }
  return UnavailableError("nbd handshake: too many option replies");
}

// ---- generic netlink, raw ----

class NlMsg {
 public:
  NlMsg(uint16_t type, uint16_t flags, uint8_t cmd) {
    buf_.resize(NLMSG_HDRLEN + GENL_HDRLEN);
    auto* nh = reinterpret_cast<nlmsghdr*>(buf_.data());
    nh->nlmsg_type = type;
    nh->nlmsg_flags = flags;
    auto* gh = reinterpret_cast<genlmsghdr*>(buf_.data() + NLMSG_HDRLEN);
    gh->cmd = cmd;
    gh->version = 1;
  }
  void Put(uint16_t type, const void* data, size_t len) {
    nlattr a{};
    a.nla_type = type;
    a.nla_len = static_cast<uint16_t>(NLA_HDRLEN + len);
    const size_t off = buf_.size();
    buf_.resize(off + NLA_ALIGN(a.nla_len), '\0');
    std::memcpy(buf_.data() + off, &a, sizeof a);
    if (len > 0) std::memcpy(buf_.data() + off + NLA_HDRLEN, data, len);
  }
  void PutU32(uint16_t type, uint32_t v) { Put(type, &v, sizeof v); }
  void PutU64(uint16_t type, uint64_t v) { Put(type, &v, sizeof v); }
  size_t BeginNest(uint16_t type) {
    const size_t off = buf_.size();
    Put(type | NLA_F_NESTED, nullptr, 0);
    return off;
  }
  void EndNest(size_t off) {
    auto* a = reinterpret_cast<nlattr*>(buf_.data() + off);
    a->nla_len = static_cast<uint16_t>(buf_.size() - off);
  }
  std::string& Finish() {
    reinterpret_cast<nlmsghdr*>(buf_.data())->nlmsg_len = static_cast<uint32_t>(buf_.size());
    return buf_;
  }

 private:
  std::string buf_;
};

// Sends `msg` and collects the attributes of the (single) genl reply, if any, until the
// ACK. Returns attribute type -> payload.
Result<std::vector<std::pair<uint16_t, std::string>>> NlTransact(NlMsg& msg, const char* what) {
  Fd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC));
  if (fd.get() < 0) return ErrnoError(std::string(what) + ": netlink socket", errno);
  timeval tv{10, 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  std::string& buf = msg.Finish();
  if (sendto(fd.get(), buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa) <
      0) {
    return ErrnoError(std::string(what) + ": netlink send", errno);
  }
  std::vector<std::pair<uint16_t, std::string>> attrs;
  std::string rbuf(65536, '\0');
  for (;;) {
    ssize_t n = recv(fd.get(), rbuf.data(), rbuf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(std::string(what) + ": netlink recv", errno);
    }
    size_t off = 0;
    const size_t total = static_cast<size_t>(n);
    while (off + sizeof(nlmsghdr) <= total) {
      auto* nh = reinterpret_cast<nlmsghdr*>(rbuf.data() + off);
      if (nh->nlmsg_len < sizeof(nlmsghdr) || off + nh->nlmsg_len > total) break;
      off += NLMSG_ALIGN(nh->nlmsg_len);
      if (nh->nlmsg_type == NLMSG_ERROR) {
        nlmsgerr e{};
        std::memcpy(&e, rbuf.data() + (off - NLMSG_ALIGN(nh->nlmsg_len)) + NLMSG_HDRLEN,
                    std::min(sizeof e, static_cast<size_t>(nh->nlmsg_len) - NLMSG_HDRLEN));
        if (e.error != 0) return ErrnoError(what, -e.error);
        return attrs;
      }
      if (nh->nlmsg_type == NLMSG_DONE) return attrs;
      const char* p = reinterpret_cast<const char*>(nh) + NLMSG_HDRLEN + GENL_HDRLEN;
      const char* end = reinterpret_cast<const char*>(nh) + nh->nlmsg_len;
      while (p + NLA_HDRLEN <= end) {
        nlattr a;
        std::memcpy(&a, p, sizeof a);
        if (a.nla_len < NLA_HDRLEN || p + a.nla_len > end) break;
        attrs.emplace_back(static_cast<uint16_t>(a.nla_type & NLA_TYPE_MASK),
                           std::string(p + NLA_HDRLEN, a.nla_len - NLA_HDRLEN));
        p += NLA_ALIGN(a.nla_len);
      }
    }
  }
}

// NBD_ATTR_SOCKETS with the one socket `fd`.
void PutSocket(NlMsg* msg, int fd) {
  size_t socks = msg->BeginNest(NBD_ATTR_SOCKETS);
  size_t item = msg->BeginNest(NBD_SOCK_ITEM);
  msg->PutU32(NBD_SOCK_FD, static_cast<uint32_t>(fd));
  msg->EndNest(item);
  msg->EndNest(socks);
}

Result<uint16_t> NbdFamily() {
  NlMsg msg(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, CTRL_CMD_GETFAMILY);
  msg.Put(CTRL_ATTR_FAMILY_NAME, NBD_GENL_FAMILY_NAME, sizeof(NBD_GENL_FAMILY_NAME));
  auto attrs = NlTransact(msg, "resolve genl family nbd");
  if (!attrs.ok()) return attrs.status();
  for (const auto& [type, data] : *attrs) {
    if (type == CTRL_ATTR_FAMILY_ID && data.size() >= 2) {
      uint16_t id = 0;
      std::memcpy(&id, data.data(), 2);
      return id;
    }
  }
  return FailedPreconditionError("generic netlink family nbd not found");
}

std::string ReadFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

std::string JoinArgs(const std::vector<std::string>& args) {
  std::string cmd;
  for (const auto& a : args) cmd += (cmd.empty() ? "" : " ") + a;
  return cmd;
}

// Runs argv[0] (searched in PATH) with stdin from /dev/null; its stdout (and stderr, for
// error messages) into `*out` when given. Returns the exit status.
Result<int> RunStatus(const std::vector<std::string>& args, std::string* out) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int pipefd[2] = {-1, -1};
  if (pipe2(pipefd, O_CLOEXEC) != 0) return ErrnoError("pipe for " + args[0], errno);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(pipefd[1]);
  if (rc != 0) {
    close(pipefd[0]);
    return ErrnoError("spawn " + args[0], rc);
  }
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = read(pipefd[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (text.size() < (1u << 20)) text.append(buf, static_cast<size_t>(n));
  }
  close(pipefd[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoError("waitpid " + args[0], errno);
  }
  if (out != nullptr) *out = std::move(text);
  if (!WIFEXITED(status)) return InternalError("'" + JoinArgs(args) + "' was killed");
  return WEXITSTATUS(status);
}

// Runs the command; OK when it exits 0, else an error with its output.
Status Run(const std::vector<std::string>& args, std::string* out = nullptr) {
  std::string text;
  auto rc = RunStatus(args, &text);
  if (!rc.ok()) return rc.status();
  if (*rc != 0) {
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    return InternalError("'" + JoinArgs(args) + "' failed (exit " + std::to_string(*rc) + ")" +
                         (text.empty() ? "" : ": " + text));
  }
  if (out != nullptr) *out = std::move(text);
  return Status::Ok();
}

// "MAJ:MIN" of a dev_t.
std::string DevString(dev_t d) { return std::to_string(major(d)) + ":" + std::to_string(minor(d)); }

// A socket past the NBD handshake for `export_name` at `portal`, with no socket timeouts
// (the kernel keeps its own, NBD_ATTR_TIMEOUT).
Result<int> OpenExport(const std::string& portal, const std::string& export_name,
                       ExportInfo* info) {
  auto fd_or = DialPortal(portal);
  if (!fd_or.ok()) return fd_or.status();
  int fd = *fd_or;
  auto got = Handshake(fd, export_name);
  if (!got.ok()) {
    close(fd);
    return got.status();
  }
  *info = *got;
  timeval zero{0, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &zero, sizeof zero);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &zero, sizeof zero);
  return fd;
}

class LinuxNodeHost final : public NodeHost {
 public:
  bool HasModule(const std::string& module) override {
    std::error_code ec;
    return fs::exists("/sys/module/" + module, ec);
  }

  Result<NbdAttachment> ConnectNbd(const std::string& portal,
                                   const std::string& export_name) override {
    ExportInfo einfo;
    auto fd_or = OpenExport(portal, export_name, &einfo);
    if (!fd_or.ok()) return fd_or.status();
    Fd sock(*fd_or);
    const ExportInfo* info = &einfo;
    auto family = NbdFamily();
    if (!family.ok()) return family.status();

    NlMsg msg(*family, NLM_F_REQUEST | NLM_F_ACK, NBD_CMD_CONNECT);
    msg.PutU64(NBD_ATTR_SIZE_BYTES, info->size);
    msg.PutU64(NBD_ATTR_BLOCK_SIZE_BYTES, kBlockSize);
    msg.PutU64(NBD_ATTR_SERVER_FLAGS, info->flags);
    msg.PutU64(NBD_ATTR_TIMEOUT, kRequestTimeoutSec);
    msg.PutU64(NBD_ATTR_DEAD_CONN_TIMEOUT, 0);
    PutSocket(&msg, sock.get());
    auto attrs = NlTransact(msg, "NBD_CMD_CONNECT");
    if (!attrs.ok()) return attrs.status();
    NbdAttachment a;
    a.size = info->size;
    for (const auto& [type, data] : *attrs) {
      if (type == NBD_ATTR_INDEX && data.size() >= 4) {
        uint32_t idx = 0;
        std::memcpy(&idx, data.data(), 4);
        a.index = static_cast<int>(idx);
      }
    }
    if (a.index < 0) return InternalError("NBD_CMD_CONNECT: no device index in the reply");
    a.dev = ReadFirstLine("/sys/block/nbd" + std::to_string(a.index) + "/dev");
    if (a.dev.empty()) {
      (void)DisconnectNbd(a.index);
      return InternalError("nbd" + std::to_string(a.index) + ": no /sys/block/.../dev");
    }
    return a;
  }

  bool NbdConnected(int index) override {
    std::error_code ec;
    return fs::exists("/sys/block/nbd" + std::to_string(index) + "/pid", ec);
  }

  Status DisconnectNbd(int index) override {
    auto family = NbdFamily();
    if (!family.ok()) return family.status();
    NlMsg msg(*family, NLM_F_REQUEST | NLM_F_ACK, NBD_CMD_DISCONNECT);
    msg.PutU32(NBD_ATTR_INDEX, static_cast<uint32_t>(index));
    auto attrs = NlTransact(msg, "NBD_CMD_DISCONNECT");
    return attrs.ok() ? Status::Ok() : attrs.status();
  }

  bool DmExists(const std::string& name) override {
    std::error_code ec;
    for (fs::directory_iterator it("/sys/block", ec), end; !ec && it != end; it.increment(ec)) {
      if (it->path().filename().string().rfind("dm-", 0) != 0) continue;
      if (ReadFirstLine((it->path() / "dm" / "name").string()) == name) return true;
    }
    return false;
  }

  Status DmCreate(const std::string& name, const std::string& table, bool readonly) override {
    std::vector<std::string> args{"dmsetup", "create", name, "--noudevsync", "--verifyudev"};
    if (readonly) args.push_back("--readonly");
    args.push_back("--table");
    args.push_back(table);
    return Run(args);
  }

  Status DmRemove(const std::string& name) override {
    return Run({"dmsetup", "remove", "--noudevsync", "--verifyudev", name});
  }

  bool IsMountPoint(const std::string& path) override {
    std::error_code ec;
    const fs::path want = fs::weakly_canonical(path, ec);
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string id, parent, devno, root, mount_point;
      fields >> id >> parent >> devno >> root >> mount_point;
      if (mount_point == want.string()) return true;
    }
    return false;
  }

  Status BindMount(const std::string& source, const std::string& target, bool readonly) override {
    if (mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      return ErrnoError("bind mount " + source + " on " + target, errno);
    }
    if (readonly &&
        mount(nullptr, target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
      const int err = errno;
      umount2(target.c_str(), MNT_DETACH);
      return ErrnoError("remount read-only " + target, err);
    }
    return Status::Ok();
  }

  Status Unmount(const std::string& target) override {
    if (umount2(target.c_str(), 0) != 0 && errno != EINVAL) {
      return ErrnoError("unmount " + target, errno);
    }
    return Status::Ok();
  }

  Status ReconnectNbd(int index, const std::string& portal,
                      const std::string& export_name) override {
    ExportInfo info;
    auto fd_or = OpenExport(portal, export_name, &info);
    if (!fd_or.ok()) return fd_or.status();
    Fd sock(*fd_or);
    auto family = NbdFamily();
    if (!family.ok()) return family.status();
    NlMsg msg(*family, NLM_F_REQUEST | NLM_F_ACK, NBD_CMD_RECONFIGURE);
    msg.PutU32(NBD_ATTR_INDEX, static_cast<uint32_t>(index));
    PutSocket(&msg, sock.get());
    auto attrs = NlTransact(msg, "NBD_CMD_RECONFIGURE");
    return attrs.ok() ? Status::Ok() : attrs.status();
  }

  Status ProbeNbd(int index) override {
    const std::string dev = "/dev/nbd" + std::to_string(index);
    Fd fd(open(dev.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC));
    if (fd.get() < 0) return ErrnoError("open " + dev, errno);
    void* buf = nullptr;
    if (posix_memalign(&buf, kBlockSize, kBlockSize) != 0) return InternalError("out of memory");
    const ssize_t n = pread(fd.get(), buf, kBlockSize, 0);
    const int err = errno;
    free(buf);
    if (n < 0) return ErrnoError("read " + dev, err);
    if (n != static_cast<ssize_t>(kBlockSize)) return InternalError("short read from " + dev);
    return Status::Ok();
  }

  Result<std::vector<DmPath>> DmPaths(const std::string& name) override {
    std::string out;
    STRATA_RETURN_IF_ERROR(Run({"dmsetup", "status", name}, &out));
    return ParseMultipathStatus(out);
  }

  Status DmMessage(const std::string& name, const std::string& message) override {
    std::vector<std::string> args{"dmsetup", "message", name, "0"};
    std::istringstream words(message);
    for (std::string w; words >> w;) args.push_back(w);
    return Run(args);
  }

  Status DmReload(const std::string& name, const std::string& table, bool readonly) override {
    std::vector<std::string> args{"dmsetup", "reload", name};
    if (readonly) args.push_back("--readonly");
    args.push_back("--table");
    args.push_back(table);
    STRATA_RETURN_IF_ERROR(Run(args));
    return Run({"dmsetup", "resume", "--noudevsync", name});
  }

  Result<std::string> FsTypeOf(const std::string& dev) override {
    std::string out;
    // -p: probe the device itself, not the cache; exit 2: nothing found (blank).
    auto rc = RunStatus({"blkid", "-p", "-o", "export", dev}, &out);
    if (!rc.ok()) return rc.status();
    if (*rc == 2) return std::string();
    if (*rc != 0)
      return InternalError("blkid -p " + dev + " failed (exit " + std::to_string(*rc) +
                           "): " + out);
    std::istringstream lines(out);
    std::string type, pttype;
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("TYPE=", 0) == 0) type = line.substr(5);
      if (line.rfind("PTTYPE=", 0) == 0) pttype = line.substr(7);
    }
    if (type.empty() && !pttype.empty()) return "partition table " + pttype;
    if (type.empty()) return std::string("unknown signature");
    return type;
  }

  Status MakeFs(const std::string& dev, const std::string& fs_type) override {
    if (fs_type == "ext4") {
      return Run({"mkfs.ext4", "-F", "-q", "-E", "nodiscard,lazy_itable_init=1", dev});
    }
    if (fs_type == "xfs") return Run({"mkfs.xfs", "-f", "-q", "-K", dev});
    return InvalidArgumentError("file system type '" + fs_type + "' is not supported");
  }

  Status MountFs(const std::string& dev, const std::string& target, const std::string& fs_type,
                 const std::string& options) override {
    std::vector<std::string> args{"mount", "-t", fs_type};
    if (!options.empty()) {
      args.push_back("-o");
      args.push_back(options);
    }
    args.push_back(dev);
    args.push_back(target);
    return Run(args);
  }

  Status GrowFs(const std::string& dev, const std::string& mount_point,
                const std::string& fs_type) override {
    if (fs_type == "ext4") return Run({"resize2fs", dev});
    if (fs_type == "xfs") return Run({"xfs_growfs", mount_point});
    return InvalidArgumentError("file system type '" + fs_type + "' cannot be grown");
  }

  Result<FsUsage> StatFs(const std::string& path) override {
    struct statvfs sv {};
    if (statvfs(path.c_str(), &sv) != 0) return ErrnoError("statvfs " + path, errno);
    FsUsage u;
    u.total_bytes = static_cast<uint64_t>(sv.f_blocks) * sv.f_frsize;
    u.available_bytes = static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize;
    u.used_bytes = static_cast<uint64_t>(sv.f_blocks - sv.f_bfree) * sv.f_frsize;
    u.total_inodes = sv.f_files;
    u.free_inodes = sv.f_ffree;
    u.used_inodes = sv.f_files - sv.f_ffree;
    return u;
  }

  Result<uint64_t> BlockDeviceSize(const std::string& path) override {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) return NotFoundError(path + " does not exist");
      return ErrnoError("stat " + path, errno);
    }
    const dev_t d = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev;
    const std::string line = ReadFirstLine("/sys/dev/block/" + DevString(d) + "/size");
    if (line.empty()) return FailedPreconditionError(path + " is not on a block device");
    return std::strtoull(line.c_str(), nullptr, 10) * 512;
  }

  Result<std::string> DmNameOf(const std::string& path) override {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) return NotFoundError(path + " does not exist");
      return ErrnoError("stat " + path, errno);
    }
    const dev_t d = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev;
    std::string name = ReadFirstLine("/sys/dev/block/" + DevString(d) + "/dm/name");
    if (name.empty()) {
      return FailedPreconditionError(path + " is not on a device-mapper device (" + DevString(d) +
                                     ")");
    }
    return name;
  }
};

}  // namespace

std::unique_ptr<NodeHost> MakeLinuxNodeHost() { return std::make_unique<LinuxNodeHost>(); }

}  // namespace strata::csi
