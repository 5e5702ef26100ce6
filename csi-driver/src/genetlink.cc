#include "genetlink.h"

#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "strata/common/fd.h"
#include "strata/common/status.h"

namespace strata::csi {

GenlMessage::GenlMessage(uint16_t family, uint16_t flags, uint8_t cmd) {
  buf_.resize(NLMSG_HDRLEN + GENL_HDRLEN);
  auto* nh = reinterpret_cast<nlmsghdr*>(buf_.data());
  nh->nlmsg_type = family;
  nh->nlmsg_flags = flags;
  auto* gh = reinterpret_cast<genlmsghdr*>(buf_.data() + NLMSG_HDRLEN);
  gh->cmd = cmd;
  gh->version = 1;
}

void GenlMessage::Put(uint16_t type, const void* data, size_t len) {
  nlattr a{};
  a.nla_type = type;
  a.nla_len = static_cast<uint16_t>(NLA_HDRLEN + len);
  const size_t off = buf_.size();
  buf_.resize(off + NLA_ALIGN(a.nla_len), '\0');
  std::memcpy(buf_.data() + off, &a, sizeof a);
  if (len > 0) std::memcpy(buf_.data() + off + NLA_HDRLEN, data, len);
}

size_t GenlMessage::BeginNest(uint16_t type) {
  const size_t off = buf_.size();
  Put(type | NLA_F_NESTED, nullptr, 0);
  return off;
}

void GenlMessage::EndNest(size_t offset) {
  auto* a = reinterpret_cast<nlattr*>(buf_.data() + offset);
  a->nla_len = static_cast<uint16_t>(buf_.size() - offset);
}

const std::string& GenlMessage::Finish() {
  reinterpret_cast<nlmsghdr*>(buf_.data())->nlmsg_len = static_cast<uint32_t>(buf_.size());
  return buf_;
}

Result<GenlAttrs> GenlTransact(GenlMessage& msg, const std::string& what) {
  Fd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC));
  if (!fd.valid()) return ErrnoError(what + ": netlink socket", errno);
  timeval tv{10, 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  const std::string& buf = msg.Finish();
  if (sendto(fd.get(), buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa) <
      0) {
    return ErrnoError(what + ": netlink send", errno);
  }
  GenlAttrs attrs;
  std::string rbuf(65536, '\0');
  for (;;) {
    ssize_t n = recv(fd.get(), rbuf.data(), rbuf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(what + ": netlink recv", errno);
    }
    size_t off = 0;
    const size_t total = static_cast<size_t>(n);
    while (off + sizeof(nlmsghdr) <= total) {
      auto* nh = reinterpret_cast<nlmsghdr*>(rbuf.data() + off);
      if (nh->nlmsg_len < sizeof(nlmsghdr) || off + nh->nlmsg_len > total) break;
      off += NLMSG_ALIGN(nh->nlmsg_len);
      if (nh->nlmsg_type == NLMSG_ERROR) {
        nlmsgerr e{};
        std::memcpy(&e, reinterpret_cast<const char*>(nh) + NLMSG_HDRLEN,
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

Result<uint16_t> GenlFamilyId(const std::string& name) {
  GenlMessage msg(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, CTRL_CMD_GETFAMILY);
  msg.Put(CTRL_ATTR_FAMILY_NAME, name.c_str(), name.size() + 1);  // with the NUL
  auto attrs = GenlTransact(msg, "resolve genl family " + name);
  if (!attrs.ok()) return attrs.status();
  for (const auto& [type, data] : *attrs) {
    if (type == CTRL_ATTR_FAMILY_ID && data.size() >= 2) {
      uint16_t id = 0;
      std::memcpy(&id, data.data(), 2);
      return id;
    }
  }
  return FailedPreconditionError("generic netlink family " + name + " not found");
}

}  // namespace strata::csi
