#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "strata/common/result.h"
#include "strata/common/status.h"

namespace strata::csi {

// One kernel nbd device connected to one portal.
struct NbdAttachment {
  int index = -1;     // /dev/nbdINDEX
  std::string dev;    // "MAJ:MIN"
  uint64_t size = 0;  // bytes, as the server announced
};

// What the node plugin does to the host, behind an interface so the staging logic is
// unit-testable with a fake. The Linux implementation: NBD handshake in userspace, then
// generic netlink family "nbd" (NBD_CMD_CONNECT / NBD_CMD_DISCONNECT), dmsetup, mount(2).
class NodeHost {
 public:
  virtual ~NodeHost() = default;
  // Whether the kernel module (as named under /sys/module, e.g. "dm_multipath") is present.
  virtual bool HasModule(const std::string& module) = 0;
  // Handshake with the NBD server at `portal` ("HOST:PORT") for `export_name`, then hands
  // the socket to a free kernel nbd device (request timeout 5 s, dead-conn timeout 0).
  virtual Result<NbdAttachment> ConnectNbd(const std::string& portal,
                                           const std::string& export_name) = 0;
  // Whether /dev/nbdINDEX is connected.
  virtual bool NbdConnected(int index) = 0;
  virtual Status DisconnectNbd(int index) = 0;
  virtual bool DmExists(const std::string& name) = 0;
  virtual Status DmCreate(const std::string& name, const std::string& table) = 0;
  virtual Status DmRemove(const std::string& name) = 0;
  virtual bool IsMountPoint(const std::string& path) = 0;
  virtual Status BindMount(const std::string& source, const std::string& target, bool readonly) = 0;
  virtual Status Unmount(const std::string& target) = 0;
};

// The real host (Linux).
std::unique_ptr<NodeHost> MakeLinuxNodeHost();

// "a,b,c" -> {"a","b","c"} (empty items dropped).
std::vector<std::string> SplitPortals(std::string_view portals);
// The dm device name for a LUN: "strata-" and the WWN's letters and digits, lower case
// (stable: the same LUN always maps to the same name). INVALID_ARGUMENT when the WWN has
// none.
Result<std::string> DmNameForWwn(std::string_view wwn);
// The dm-multipath table over `devs` ("MAJ:MIN"): round-robin, one path group,
// queue_if_no_path.
std::string MultipathTable(uint64_t size_bytes, const std::vector<std::string>& devs);

}  // namespace strata::csi
