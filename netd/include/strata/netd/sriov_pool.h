#pragma once

// SR-IOV VF pools of strata-netd's device plugin: which PFs' VFs make up each extended resource.
//
//   --sriov-pool NAME=PF[,PF...]     e.g. --sriov-pool fast=ens1f0,ens1f1  --sriov-pool
//   dpdk=0000:3b:00.0
//
// A PF is its interface name or its PCI address. Every VF of the listed PFs is one device of the
// resource `<prefix>/sriov-<NAME>` (prefix "strata.io" by default), whatever driver it is bound to
// (a netdev driver: the CNI moves it into the pod; vfio-pci: passed to a VM or DPDK). Simpler than
// sriov-network-device-plugin's selectors (vendor, device, driver, pfNames with VF ranges): a pool
// is a set of whole PFs, which is how nodes are usually cabled; split VFs between pools by PF.

#include <string>
#include <string_view>
#include <vector>

#include "strata/common/result.h"

namespace strata::netd {

struct SriovPoolSpec {
  std::string name;              // a DNS label fragment: [a-z0-9]([-a-z0-9]*[a-z0-9])?, <= 40 chars
  std::vector<std::string> pfs;  // interface names or PCI addresses, in flag order, no duplicates
};

// Parses one --sriov-pool value. INVALID_ARGUMENT naming "--sriov-pool" and the reason.
Result<SriovPoolSpec> ParseSriovPool(std::string_view value);

// Parses every --sriov-pool value; also refuses a pool name or a PF given twice.
Result<std::vector<SriovPoolSpec>> ParseSriovPools(const std::vector<std::string>& values);

// "<prefix>/sriov-<name>", the extended resource a pod requests.
std::string SriovResourceName(std::string_view prefix, const SriovPoolSpec& pool);

// The environment variable Allocate sets to the allocated VFs' PCI addresses (comma-separated),
// named the way sriov-network-device-plugin and KubeVirt name it: "PCIDEVICE_" + the resource
// name upper-cased with '.' and '/' turned into '_' ("strata.io/sriov-fast" ->
// "PCIDEVICE_STRATA_IO_SRIOV-FAST"; KubeVirt looks the VM's host devices up under that name).
std::string PciDeviceEnvName(std::string_view resource_name);

}  // namespace strata::netd
