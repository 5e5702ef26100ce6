#pragma once

#include <string>
#include <vector>

#include "strata/cni/sysfs.h"
#include "strata/netd/link_probe.h"
#include "strata/netd/sriov_pool.h"

namespace strata::netd {

// One VF as the device plugin advertises it. The device ID is the VF's PCI address: the CNI takes
// it as `deviceID` (runtimeConfig.deviceID from Multus, or strata-sriov's own PodResources lookup).
struct SriovVf {
  std::string pci;        // "0000:3b:02.1"
  std::string pf_pci;     // its PF
  std::string pf_netdev;  // the PF's interface ("" when the PF is gone)
  int vf_index = -1;
  std::string driver;       // "iavf", "mlx5_core", "vfio-pci", ...; "" when unbound
  std::string iommu_group;  // "/dev/vfio/<group>" exists for a vfio-pci VF; "" when unknown
  int numa_node = -1;       // -1: no NUMA affinity known
  bool vfio = false;        // bound to vfio-pci: Allocate hands out /dev/vfio nodes
  bool healthy = false;
  std::string why_unhealthy;  // for the log: "PF ens1f0 link down", "VF missing from sysfs", ...

  friend bool operator==(const SriovVf& a, const SriovVf& b) {
    return a.pci == b.pci && a.pf_pci == b.pf_pci && a.pf_netdev == b.pf_netdev &&
           a.vf_index == b.vf_index && a.driver == b.driver && a.iommu_group == b.iommu_group &&
           a.numa_node == b.numa_node && a.vfio == b.vfio && a.healthy == b.healthy;
  }
};

// Reads a pool's VFs from sysfs (below its root: "/sys", or a host sysfs mounted elsewhere, or a
// laid-out tree in tests) and their health from the PF's link. Thread-compatible.
class SriovInventory {
 public:
  // `sysfs` and `links` must outlive the inventory.
  SriovInventory(cni::Sysfs* sysfs, LinkProbe* links) : sysfs_(sysfs), links_(links) {}

  // The VFs of every PF of `pool`, sorted by PCI address. A VF is healthy when it is listed as a
  // virtfn of its PF and the PF's interface is up with carrier. A PF that cannot be found adds no
  // VFs (the caller keeps the ones it saw before, unhealthy: see SriovDevicePlugin::SetVfs).
  std::vector<SriovVf> Scan(const SriovPoolSpec& pool);

 private:
  // PF PCI address and interface for a pool entry (interface name or PCI address); NOT_FOUND.
  Result<std::pair<std::string, std::string>> ResolvePf(const std::string& pf);

  cni::Sysfs* sysfs_;
  LinkProbe* links_;
};

}  // namespace strata::netd
