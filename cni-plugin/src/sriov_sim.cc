#include "strata/cni/sriov_sim.h"

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "strata/common/file_util.h"

namespace strata::cni {
namespace {

using nlohmann::json;

class SimulatedVfNetlinkManager final : public net::NetlinkManager {
 public:
  SimulatedVfNetlinkManager(net::NetlinkManagerPtr real, std::string dir)
      : real_(std::move(real)), dir_(std::move(dir)) {}

  const std::string& netns_path() const override { return real_->netns_path(); }
  Result<net::LinkInfo> GetLink(const std::string& n) override { return real_->GetLink(n); }
  Result<net::LinkInfo> GetLinkByIndex(int i) override { return real_->GetLinkByIndex(i); }
  Result<std::vector<net::LinkInfo>> ListLinks() override { return real_->ListLinks(); }
  Result<net::LinkStats> GetLinkStats(const std::string& n) override {
    return real_->GetLinkStats(n);
  }
  Status SetLinkUp(const std::string& n, bool up) override { return real_->SetLinkUp(n, up); }
  Status RenameLink(const std::string& n, const std::string& to) override {
    return real_->RenameLink(n, to);
  }
  Status ChangeLink(const std::string& n, const net::LinkChange& c) override {
    return real_->ChangeLink(n, c);
  }
  Status AddAddress(const std::string& l, const std::string& cidr) override {
    return real_->AddAddress(l, cidr);
  }
  Status AddRoute(const std::string& l, const std::string& dst, const std::string& gw) override {
    return real_->AddRoute(l, dst, gw);
  }
  Status DeleteLink(const std::string& n) override { return real_->DeleteLink(n); }
  Status ReplaceRootTbf(int i, uint32_t h, const net::TbfSpec& s) override {
    return real_->ReplaceRootTbf(i, h, s);
  }
  Result<net::RootQdisc> GetRootQdisc(int i) override { return real_->GetRootQdisc(i); }
  Status DeleteRootQdisc(int i, uint32_t h) override { return real_->DeleteRootQdisc(i, h); }
  Status CreateBond(const net::BondSpec& s) override { return real_->CreateBond(s); }
  Status EnslaveLink(const std::string& m, const std::string& b) override {
    return real_->EnslaveLink(m, b);
  }
  Status ReleaseLink(const std::string& m) override { return real_->ReleaseLink(m); }
  Status SetBondPrimary(const std::string& b, const std::string& p) override {
    return real_->SetBondPrimary(b, p);
  }
  Result<net::BondState> GetBond(const std::string& b) override { return real_->GetBond(b); }
  Status CreateVlan(const std::string& n, const std::string& lower, int id, int mtu) override {
    return real_->CreateVlan(n, lower, id, mtu);
  }

  Result<net::VfState> GetVf(const std::string& pf, int vf) override {
    auto text = ReadFileToString(Path(pf, vf));
    net::VfState
        s;  // an untouched VF: zero MAC, no VLAN, spoof check on, trust off, auto, no rates
    s.mac = "00:00:00:00:00:00";
    if (!text.ok()) {
      if (text.status().code() == StatusCode::kNotFound) return s;
      return text.status();
    }
    json j = json::parse(*text, nullptr, false);
    if (!j.is_object()) return InternalError(Path(pf, vf) + ": not JSON");
    s.mac = j.value("mac", s.mac);
    s.vlan = j.value("vlan", 0);
    s.vlan_qos = j.value("vlanQoS", 0);
    s.spoof_check = j.value("spoofchk", true);
    s.trust = j.value("trust", false);
    s.link_state = j.value("linkState", "auto");
    s.min_tx_rate_mbps = j.value("minTxRate", 0);
    s.max_tx_rate_mbps = j.value("maxTxRate", 0);
    return s;
  }

  Status SetVf(const std::string& pf, int vf, const net::VfConfig& c) override {
    STRATA_ASSIGN_OR_RETURN(net::VfState s, GetVf(pf, vf));
    if (c.mac) s.mac = *c.mac;
    if (c.vlan) s.vlan = *c.vlan;
    if (c.vlan_qos) s.vlan_qos = *c.vlan_qos;
    if (c.spoof_check) s.spoof_check = *c.spoof_check;
    if (c.trust) s.trust = *c.trust;
    if (c.link_state) s.link_state = *c.link_state;
    if (c.min_tx_rate_mbps) s.min_tx_rate_mbps = *c.min_tx_rate_mbps;
    if (c.max_tx_rate_mbps) s.max_tx_rate_mbps = *c.max_tx_rate_mbps;
    json j = {{"mac", s.mac},
              {"vlan", s.vlan},
              {"vlanQoS", s.vlan_qos},
              {"spoofchk", s.spoof_check},
              {"trust", s.trust},
              {"linkState", s.link_state},
              {"minTxRate", s.min_tx_rate_mbps},
              {"maxTxRate", s.max_tx_rate_mbps}};
    STRATA_RETURN_IF_ERROR(CreateDirectories(dir_ + "/" + pf));
    // Replaced by rename so readers never see half a file, but not fsynced: this stands in for a
    // netlink call to the PF, not for durable state, and must not add disk flushes to the timings.
    const std::string path = Path(pf, vf);
    const std::string tmp = path + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << j.dump() << "\n";
      if (!out.flush()) return InternalError("write " + tmp);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoError("rename " + tmp, errno);
    return Status::Ok();
  }

 private:
  std::string Path(const std::string& pf, int vf) const {
    return dir_ + "/" + pf + "/vf" + std::to_string(vf) + ".json";
  }
  net::NetlinkManagerPtr real_;
  std::string dir_;
};

}  // namespace

net::NetlinkManagerPtr NewSimulatedVfNetlinkManager(net::NetlinkManagerPtr real,
                                                    std::string sim_dir) {
  return std::make_unique<SimulatedVfNetlinkManager>(std::move(real), std::move(sim_dir));
}

}  // namespace strata::cni
