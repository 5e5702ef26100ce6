#pragma once

#include <memory>
#include <string>
#include <vector>

#include "strata/common/result.h"

namespace strata::cni {

// Read-only sysfs access below a root ("/sys" in production; a laid-out tree in tests).
// Paths are relative to the root ("bus/pci/devices/0000:03:00.1/physfn"). Thread-safe.
class Sysfs {
 public:
  virtual ~Sysfs() = default;
  virtual const std::string& root() const = 0;
  // Entry names, sorted. NOT_FOUND when the directory does not exist.
  virtual Result<std::vector<std::string>> ListDir(const std::string& rel) = 0;
  // The symlink's target as stored. NOT_FOUND when absent.
  virtual Result<std::string> ReadLink(const std::string& rel) = 0;
  virtual bool Exists(const std::string& rel) = 0;
};

std::unique_ptr<Sysfs> NewSysfs(std::string root);

// Where a VF is, as sysfs tells it.
struct VfLocation {
  std::string pci;         // the VF, "0000:03:02.0"
  std::string pf_pci;      // its PF
  std::string pf_netdev;   // the PF's interface, through which IFLA_VF_* is applied
  int vf_index = -1;       // N of the PF's virtfnN link to the VF
  std::string driver;      // "iavf", "vfio-pci", ... ; empty when unbound
  std::string netdev;      // the VF's interface in the host namespace; empty for DPDK/userspace
  bool userspace = false;  // bound to vfio-pci / igb_uio / uio_pci_generic: no netdev to move
};

// INVALID_ARGUMENT naming `field` when the device is absent or not a VF of a PF with a netdev.
Result<VfLocation> LocateVf(Sysfs& sysfs, const std::string& pci, std::string_view field);

}  // namespace strata::cni
