#pragma once

// Ownership records of SR-IOV VFs: which attachment holds a VF and what the VF looked like
// before, so DEL restores it and never touches a VF that has since gone to another pod.
// One JSON file per VF (<dir>/<pci>.json), written atomically (temp + fsync + rename).
// Not thread-safe across processes for the same VF: the device plugin hands a VF to one pod.

#include <optional>
#include <string>
#include <vector>

#include "strata/cni/netlink.h"
#include "strata/common/result.h"

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
  VfState original;  // the PF's view before ADD
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
