#pragma once

// Generic netlink over a raw NETLINK_GENERIC socket (no libnl): building a request with
// (nested) attributes, one request/ACK exchange, and resolving a family's id by name.
// The node plugin drives the kernel's "nbd" family with it.

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "strata/common/result.h"

namespace strata::csi {

// One generic netlink request: nlmsghdr + genlmsghdr (version 1) + attributes.
class GenlMessage {
 public:
  GenlMessage(uint16_t family, uint16_t flags, uint8_t cmd);
  // An attribute of `len` bytes (NLA-aligned; the padding is zero).
  void Put(uint16_t type, const void* data, size_t len);
  void PutU32(uint16_t type, uint32_t v) { Put(type, &v, sizeof v); }
  void PutU64(uint16_t type, uint64_t v) { Put(type, &v, sizeof v); }
  // A nested attribute: the attributes Put until EndNest(returned offset) are inside it.
  size_t BeginNest(uint16_t type);
  void EndNest(size_t offset);
  // The wire bytes, with nlmsg_len set.
  const std::string& Finish();

 private:
  std::string buf_;
};

// The top-level attributes of a reply: (type without flag bits, payload).
using GenlAttrs = std::vector<std::pair<uint16_t, std::string>>;

// Sends `msg` and collects the attributes of the (single) reply, if any, until the ACK
// (NLM_F_ACK expected in the message's flags). A netlink error is the errno it carries,
// prefixed with `what`; no answer within 10 s is an error too.
Result<GenlAttrs> GenlTransact(GenlMessage& msg, const std::string& what);

// The id of generic netlink family `name` (CTRL_CMD_GETFAMILY); FAILED_PRECONDITION
// when the kernel has no such family (its module not loaded).
Result<uint16_t> GenlFamilyId(const std::string& name);

}  // namespace strata::csi
