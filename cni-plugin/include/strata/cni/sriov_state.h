#pragma once

// Ownership records of SR-IOV VFs: which attachment holds a VF and what the VF looked like
// before, so DEL restores it and never touches a VF that has since gone to another pod.
// One JSON file per VF (<dir>/<pci>.json), written atomically (temp + fsync + rename).
// The store itself does no locking: callers hold the VF's VfLock around read-modify-write.

#include <optional>
#include <string>
#include <vector>

#include "strata/common/result.h"
#include "strata/net/netlink.h"

namespace strata::cni {

struct VfRecord {
  std::string pci;
  std::string container_id;
  std::string ifname;  // the name in the pod
  std::string netns;
  std::string pf;  // PF netdev
  int vf_index = 0;
  bool userspace = false;  // vfio etc.: no netdev was moved
  // The VF netdev as found in the host namespace (empty for userspace VFs).
  std::string host_ifname;
  std::string host_mac;
  int host_mtu = 0;
  bool host_admin_up = false;  // the netdev was up on the host before ADD
  net::VfState original;       // the PF's view before ADD (every IFLA_VF_* setting ADD may change)
  std::string ipam_type;       // the IPAM plugin ADD ran; empty: none
  std::string ipam_config;     // the network config (JSON) ADD gave it, for its DEL
};

// An exclusive flock(2) on <dir>/<pci>.lock for the object's lifetime, so ADD, DEL, CHECK and GC
// of one VF run one at a time across processes (two pods handed the same VF by a confused device
// plugin, a DEL racing a retried ADD). Blocking; the kernel drops the lock when the holder exits,
// so a crashed plugin cannot wedge the VF. Lock files stay: deleting one while another process
// waits on it would let two processes hold "the" lock on different inodes.
class VfLock {
 public:
  static Result<VfLock> Acquire(const std::string& dir, const std::string& pci);
  VfLock(VfLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  VfLock& operator=(VfLock&&) = delete;
  VfLock(const VfLock&) = delete;
  ~VfLock();

 private:
  explicit VfLock(int fd) : fd_(fd) {}
  int fd_;
};

class VfRecordStore {
 public:
  explicit VfRecordStore(std::string dir) : dir_(std::move(dir)) {}
  const std::string& dir() const { return dir_; }

  Status EnsureDir();
  // nullopt when no record exists.
  Result<std::optional<VfRecord>> Read(const std::string& pci);
  Status Write(const VfRecord& record);
  // Absent is fine.
  Status Remove(const std::string& pci);
  Result<std::vector<VfRecord>> List();

 private:
  std::string Path(const std::string& pci) const { return dir_ + "/" + pci + ".json"; }
  std::string dir_;
};

}  // namespace strata::cni
