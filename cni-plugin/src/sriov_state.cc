#include "strata/cni/sriov_state.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "strata/cni/spec.h"
#include "strata/common/file_util.h"

namespace strata::cni {
namespace {

using nlohmann::json;

json ToJson(const VfRecord& r) {
  json j = {{"pciAddress", r.pci},
            {"containerID", r.container_id},
            {"ifname", r.ifname},
            {"netns", r.netns},
            {"pf", r.pf},
            {"vfIndex", r.vf_index},
            {"userspace", r.userspace},
            {"hostIfName", r.host_ifname},
            {"hostMac", r.host_mac},
            {"hostMtu", r.host_mtu},
            {"hostAdminUp", r.host_admin_up},
            {"ipamType", r.ipam_type},
            {"original",
             {{"mac", r.original.mac},
              {"vlan", r.original.vlan},
              {"vlanQoS", r.original.vlan_qos},
              {"spoofchk", r.original.spoof_check},
              {"trust", r.original.trust},
              {"linkState", r.original.link_state},
              {"minTxRate", r.original.min_tx_rate_mbps},
              {"maxTxRate", r.original.max_tx_rate_mbps}}}};
  if (!r.ipam_config.empty()) j["ipamConfig"] = json::parse(r.ipam_config, nullptr, false);
  return j;
}

Result<VfRecord> FromJson(const std::string& text, const std::string& path) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return IoFailureError(path + ": not a VF record");
  try {
    VfRecord r;
    r.pci = j.at("pciAddress").get<std::string>();
    r.container_id = j.at("containerID").get<std::string>();
    r.ifname = j.at("ifname").get<std::string>();
    r.netns = j.at("netns").get<std::string>();
    r.pf = j.at("pf").get<std::string>();
    r.vf_index = j.at("vfIndex").get<int>();
    r.userspace = j.at("userspace").get<bool>();
    r.host_ifname = j.at("hostIfName").get<std::string>();
    r.host_mac = j.at("hostMac").get<std::string>();
    r.host_mtu = j.at("hostMtu").get<int>();
    // Absent in records written before they were kept: the netdev was down, no IPAM.
    r.host_admin_up = j.value("hostAdminUp", false);
    r.ipam_type = j.value("ipamType", std::string());
    if (j.contains("ipamConfig") && j["ipamConfig"].is_object()) {
      r.ipam_config = j["ipamConfig"].dump();
    }
    const json& o = j.at("original");
    r.original.mac = o.at("mac").get<std::string>();
    r.original.vlan = o.at("vlan").get<int>();
    r.original.vlan_qos = o.at("vlanQoS").get<int>();
    r.original.spoof_check = o.at("spoofchk").get<bool>();
    r.original.trust = o.at("trust").get<bool>();
    r.original.link_state = o.at("linkState").get<std::string>();
    r.original.min_tx_rate_mbps = o.at("minTxRate").get<int>();
    r.original.max_tx_rate_mbps = o.at("maxTxRate").get<int>();
    return r;
  } catch (const json::exception& e) {
    return IoFailureError(path + ": " + e.what());
  }
}

}  // namespace

Result<VfLock> VfLock::Acquire(const std::string& dir, const std::string& pci) {
  // `pci` becomes a file name: a deviceID from a config that was never located in sysfs (CHECK)
  // must not point elsewhere.
  if (pci.empty() || pci.find('/') != std::string::npos || pci[0] == '.') {
    return InvalidArgumentError("deviceID: '" + pci + "' is not a PCI address");
  }
  STRATA_RETURN_IF_ERROR(CreateDirectories(dir));
  const std::string path = dir + "/" + pci + ".lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return IoFailureError("lock " + path + ": " + std::strerror(errno));
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    int err = errno;
    ::close(fd);
    return IoFailureError("lock " + path + ": " + std::strerror(err));
  }
  return VfLock(fd);
}

VfLock::~VfLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

Status VfRecordStore::EnsureDir() { return CreateDirectories(dir_); }

Result<std::optional<VfRecord>> VfRecordStore::Read(const std::string& pci) {
  auto text = ReadFileToString(Path(pci));
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return std::optional<VfRecord>();
    return text.status();
  }
  STRATA_ASSIGN_OR_RETURN(VfRecord r, FromJson(*text, Path(pci)));
  return std::optional<VfRecord>(std::move(r));
}

Status VfRecordStore::Write(const VfRecord& record) {
  STRATA_RETURN_IF_ERROR(EnsureDir());
  Status s = WriteFileAtomically(Path(record.pci), ToJson(record).dump(2) + "\n");
  if (!s.ok()) return IoFailureError("VF record: " + s.message());
  return Status::Ok();
}

Status VfRecordStore::Remove(const std::string& pci) {
  if (::unlink(Path(pci).c_str()) != 0 && errno != ENOENT) {
    return ErrnoError("remove " + Path(pci), errno);
  }
  return Status::Ok();
}

Result<std::vector<VfRecord>> VfRecordStore::List() {
  std::vector<VfRecord> out;
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return out;
    return ErrnoError("list " + dir_, errno);
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.size() > 5 && n.compare(n.size() - 5, 5, ".json") == 0) names.push_back(n);
  }
  ::closedir(d);
  for (const auto& n : names) {
    auto rec = Read(n.substr(0, n.size() - 5));
    if (rec.ok() && rec->has_value()) out.push_back(std::move(**rec));
  }
  return out;
}

}  // namespace strata::cni
