#include "strata/netd/sriov_inventory.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>

namespace strata::netd {
namespace {

std::string BaseName(const std::string& p) {
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

bool LooksLikePci(const std::string& s) { return s.find(':') != std::string::npos; }

}  // namespace

Result<std::pair<std::string, std::string>> SriovInventory::ResolvePf(const std::string& pf) {
  if (LooksLikePci(pf)) {
    const std::string dev = "bus/pci/devices/" + pf;
    if (!sysfs_->Exists(dev)) return NotFoundError("PF " + pf + ": no such PCI device");
    auto net = sysfs_->ListDir(dev + "/net");
    return std::make_pair(pf, net.ok() && !net->empty() ? net->front() : std::string());
  }
  // A real sysfs links class/net/<if>/device to the PCI device.
  auto device = sysfs_->ReadLink("class/net/" + pf + "/device");
  if (device.ok()) return std::make_pair(BaseName(*device), pf);
  // A tree without class/net (the tests' layout): the PCI device that has net/<if>.
  auto devices = sysfs_->ListDir("bus/pci/devices");
  if (devices.ok()) {
    for (const auto& d : *devices) {
      if (sysfs_->Exists("bus/pci/devices/" + d + "/net/" + pf)) return std::make_pair(d, pf);
    }
  }
  return NotFoundError("PF " + pf + ": no PCI device has this interface");
}

std::vector<SriovVf> SriovInventory::Scan(const SriovPoolSpec& pool) {
  std::vector<SriovVf> out;
  for (const auto& entry : pool.pfs) {
    auto pf = ResolvePf(entry);
    if (!pf.ok()) continue;
    const auto& [pf_pci, pf_netdev] = *pf;
    bool pf_up = false;
    std::string why;
    if (pf_netdev.empty()) {
      why = "PF " + pf_pci + " has no interface";
    } else {
      auto up = links_->IsUp(pf_netdev);
      pf_up = up.ok() && *up;
      if (!up.ok()) {
        why = "PF " + pf_netdev + ": " + up.status().message();
      } else if (!*up) {
        why = "PF " + pf_netdev + " link down";
      }
    }
    const std::string pf_dev = "bus/pci/devices/" + pf_pci;
    auto entries = sysfs_->ListDir(pf_dev);
    if (!entries.ok()) continue;
    for (const auto& e : *entries) {
      if (e.rfind("virtfn", 0) != 0) continue;
      auto target = sysfs_->ReadLink(pf_dev + "/" + e);
      if (!target.ok()) continue;
      auto loc = cni::LocateVf(*sysfs_, BaseName(*target), "VF");
      if (!loc.ok()) continue;
      SriovVf vf;
      vf.pci = loc->pci;
      vf.pf_pci = loc->pf_pci;
      vf.pf_netdev = pf_netdev;
      vf.vf_index = loc->vf_index;
      vf.driver = loc->driver;
      vf.vfio = loc->driver == "vfio-pci";
      auto group = sysfs_->ReadLink("bus/pci/devices/" + vf.pci + "/iommu_group");
      if (group.ok()) vf.iommu_group = BaseName(*group);
      std::ifstream numa(sysfs_->root() + "/bus/pci/devices/" + vf.pci + "/numa_node");
      int node = -1;
      if (numa >> node) vf.numa_node = node;
      vf.healthy = pf_up;
      vf.why_unhealthy = why;
      if (vf.vfio && vf.iommu_group.empty()) {
        vf.healthy = false;
        vf.why_unhealthy = "bound to vfio-pci without an IOMMU group";
      }
      out.push_back(std::move(vf));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const SriovVf& a, const SriovVf& b) { return a.pci < b.pci; });
  return out;
}

}  // namespace strata::netd
