#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "strata/common/result.h"
#include "strata/common/status.h"
#include "strata/csi/multipath.h"  // DmPath, and the helpers staging uses with a NodeHost

namespace strata::csi {

// One kernel nbd device connected to one portal.
struct NbdAttachment {
  int index = -1;     // /dev/nbdINDEX
  std::string dev;    // "MAJ:MIN"
  uint64_t size = 0;  // bytes, as the server announced
};

// Space of a mounted file system (statvfs).
struct FsUsage {
  uint64_t total_bytes = 0, available_bytes = 0, used_bytes = 0;
  uint64_t total_inodes = 0, free_inodes = 0, used_inodes = 0;
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
  // `readonly`: the dm device refuses writes (a read-only publish).
  virtual Status DmCreate(const std::string& name, const std::string& table, bool readonly) = 0;
  virtual Status DmRemove(const std::string& name) = 0;
  virtual bool IsMountPoint(const std::string& path) = 0;
  virtual Status BindMount(const std::string& source, const std::string& target, bool readonly) = 0;
  virtual Status Unmount(const std::string& target) = 0;

  // ---- paths (checker, reinstate, swap) ----
  // A new handshake with `portal` whose socket replaces the dead one of /dev/nbdINDEX
  // (NBD_CMD_RECONFIGURE): the device, and so the dm path, keeps its MAJ:MIN.
  virtual Status ReconnectNbd(int index, const std::string& portal,
                              const std::string& export_name) = 0;
  // Reads the first 4 KiB of /dev/nbdINDEX with O_DIRECT: OK when the path serves I/O.
  virtual Status ProbeNbd(int index) = 0;
  // The paths of multipath device `name` in table order.
  virtual Result<std::vector<DmPath>> DmPaths(const std::string& name) = 0;
  // `dmsetup message NAME 0 MESSAGE` (fail_path / reinstate_path MAJ:MIN).
  virtual Status DmMessage(const std::string& name, const std::string& message) = 0;
  // Loads `table` into `name` and resumes it: the swap is atomic for I/O (queued, not failed).
  virtual Status DmReload(const std::string& name, const std::string& table, bool readonly) = 0;

  // ---- file systems ----
  // The file system type on `dev` ("" when it holds none: blank).
  virtual Result<std::string> FsTypeOf(const std::string& dev) = 0;
  virtual Status MakeFs(const std::string& dev, const std::string& fs_type) = 0;
  // mount -t FS_TYPE -o OPTIONS DEV TARGET (OPTIONS may be empty).
  virtual Status MountFs(const std::string& dev, const std::string& target,
                         const std::string& fs_type, const std::string& options) = 0;
  // Grows the file system on `dev`, mounted at `mount_point`, to the device's size.
  virtual Status GrowFs(const std::string& dev, const std::string& mount_point,
                        const std::string& fs_type) = 0;
  virtual Result<FsUsage> StatFs(const std::string& path) = 0;

  // ---- lookups ----
  // The size in bytes of the block device that `path` is (a device node) or that holds
  // it (a file on a mounted file system: the mount's device).
  virtual Result<uint64_t> BlockDeviceSize(const std::string& path) = 0;
  // The dm device name behind `path` (a device node or a mounted file system);
  // NOT_FOUND when `path` does not exist, FAILED_PRECONDITION when it is not on a dm device.
  virtual Result<std::string> DmNameOf(const std::string& path) = 0;
};

// The node's NBD client TLS (strata-csi --nbd-tls=require, #14): every path does
// NBD_OPT_STARTTLS and a TLS 1.2 AES-GCM handshake with this client certificate, verifies the
// device's certificate against `ca_file` (and `crl_file` when set) and the portal's host
// name or IP, then hands the socket to the kernel nbd driver with kernel TLS on both
// directions; never plaintext. The files are read at every dial (rotation needs no restart).
struct NbdClientTls {
  bool require = false;
  std::string cert_file, key_file, ca_file, crl_file;
};

// The real host (Linux).
std::unique_ptr<NodeHost> MakeLinuxNodeHost(NbdClientTls tls = {});

}  // namespace strata::csi
