#include "strata/cni/sriov_state.h"

#include <dirent.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "strata/cni/spec.h"
#include "strata/common/file_util.h"

namespace strata::cni {
namespace {

using nlohmann::json;

json ToJson(const VfRecord& r) {
  return {{"pciAddress", r.pci},
          {"containerID", r.container_id},
          {"ifname", r.ifname},
          {"netns", r.netns},
          {"pf", r.pf},
          {"vfIndex", r.vf_index},
          {"userspace", r.userspace},
          {"hostIfName", r.host_ifname},
          {"hostMac", r.host_mac},
          {"hostMtu", r.host_mtu},
          {"original",
           {{"mac", r.original.mac},
            {"vlan", r.original.vlan},
            {"vlanQoS", r.original.vlan_qos},
            {"spoofchk", r.original.spoof_check},
            {"trust", r.original.trust},
            {"linkState", r.original.link_state},
            {"minTxRate", r.original.min_tx_rate_mbps},
            {"maxTxRate", r.original.max_tx_rate_mbps}}}};
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
