#include "strata/cni/sysfs.h"

#include <dirent.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace strata::cni {
namespace {

std::string BaseName(const std::string& p) {
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

class RootedSysfs final : public Sysfs {
 public:
  explicit RootedSysfs(std::string root) : root_(std::move(root)) {
    while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
  }
  const std::string& root() const override { return root_; }

  Result<std::vector<std::string>> ListDir(const std::string& rel) override {
    std::string path = Abs(rel);
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) return ErrnoError("list " + path, errno);
    std::vector<std::string> out;
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") out.push_back(std::move(n));
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
  }

  Result<std::string> ReadLink(const std::string& rel) override {
    std::string path = Abs(rel);
    char buf[PATH_MAX];
    ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf) - 1);
    if (n < 0) return ErrnoError("readlink " + path, errno);
    return std::string(buf, static_cast<size_t>(n));
  }

  bool Exists(const std::string& rel) override {
    struct stat st {};
    return ::lstat(Abs(rel).c_str(), &st) == 0;
  }

 private:
  std::string Abs(const std::string& rel) const { return root_ + "/" + rel; }
  std::string root_;
};

}  // namespace

std::unique_ptr<Sysfs> NewSysfs(std::string root) {
  return std::make_unique<RootedSysfs>(std::move(root));
}

Result<VfLocation> LocateVf(Sysfs& sysfs, const std::string& pci, std::string_view field) {
  const std::string f(field);
  const std::string dev = "bus/pci/devices/" + pci;
  if (pci.empty() || pci.find('/') != std::string::npos || !sysfs.Exists(dev)) {
    return InvalidArgumentError(f + ": PCI device '" + pci + "' not found under " + sysfs.root() +
                                "/bus/pci/devices");
  }
  VfLocation loc;
  loc.pci = pci;
  auto physfn = sysfs.ReadLink(dev + "/physfn");
  if (!physfn.ok()) {
    return InvalidArgumentError(f + ": " + pci + " is not an SR-IOV virtual function (no physfn)");
  }
  loc.pf_pci = BaseName(*physfn);
  const std::string pf_dev = "bus/pci/devices/" + loc.pf_pci;
  auto pf_net = sysfs.ListDir(pf_dev + "/net");
  if (!pf_net.ok() || pf_net->empty()) {
    return InvalidArgumentError(f + ": the PF " + loc.pf_pci + " of " + pci +
                                " has no network interface");
  }
  loc.pf_netdev = pf_net->front();
  auto pf_entries = sysfs.ListDir(pf_dev);
  if (pf_entries.ok()) {
    for (const auto& e : *pf_entries) {
      if (e.rfind("virtfn", 0) != 0) continue;
      auto target = sysfs.ReadLink(pf_dev + "/" + e);
      if (target.ok() && BaseName(*target) == pci) {
        loc.vf_index = std::atoi(e.c_str() + 6);
        break;
      }
    }
  }
  if (loc.vf_index < 0) {
    return InvalidArgumentError(f + ": " + pci + " is not listed as a virtfn of its PF " +
                                loc.pf_pci);
  }
  auto driver = sysfs.ReadLink(dev + "/driver");
  if (driver.ok()) loc.driver = BaseName(*driver);
  loc.userspace =
      loc.driver == "vfio-pci" || loc.driver == "igb_uio" || loc.driver == "uio_pci_generic";
  if (!loc.userspace) {
    auto net = sysfs.ListDir(dev + "/net");
    if (net.ok() && !net->empty()) loc.netdev = net->front();
  }
  return loc;
}

}  // namespace strata::cni
