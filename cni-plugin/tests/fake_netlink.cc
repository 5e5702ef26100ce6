#include "fake_netlink.h"

namespace strata::cni::testing {
namespace {

class FakeManager final : public NetlinkManager {
 public:
  FakeManager(FakeKernel* k, std::string ns) : k_(k), ns_(std::move(ns)) {}
  const std::string& netns_path() const override { return ns_; }

  Result<LinkInfo> GetLink(const std::string& name) override {
    STRATA_ASSIGN_OR_RETURN(FakeLink * l, Get(name));
    return l->info;
  }
  Result<LinkInfo> GetLinkByIndex(int index) override {
    for (auto& [n, l] : Links()) {
      if (l.info.index == index) return l.info;
    }
    return NotFoundError("link #" + std::to_string(index));
  }
  Result<std::vector<LinkInfo>> ListLinks() override {
    std::vector<LinkInfo> out;
    for (auto& [n, l] : Links()) out.push_back(l.info);
    return out;
  }
  Result<LinkStats> GetLinkStats(const std::string& name) override {
    STRATA_ASSIGN_OR_RETURN(FakeLink * l, Get(name));
    return l->stats;
  }
  Status SetLinkUp(const std::string& name, bool up) override {
    STRATA_RETURN_IF_ERROR(Maybe("SetLinkUp"));
    STRATA_ASSIGN_OR_RETURN(FakeLink * l, Get(name));
    l->info.admin_up = up;
    return Status::Ok();
  }
  Status RenameLink(const std::string& name, const std::string& to) override {
    STRATA_RETURN_IF_ERROR(Maybe("RenameLink"));
    STRATA_ASSIGN_OR_RETURN(FakeLink * l, Get(name));
    if (l->info.admin_up) return InternalError("rename " + name + ": device is up (EBUSY)");
    if (Links().count(to)) return AlreadyExistsError("rename: " + to + " exists");
    FakeLink copy = *l;
    copy.info.name = to;
    Links().erase(name);
    Links()[to] = copy;
    return Status::Ok();
  }
  Status SetLinkMac(const std::string& name, const std::string& mac) override {
    STRATA_RETURN_IF_ERROR(Maybe("SetLinkMac"));
    STRATA_ASSIGN_OR_RETURN(FakeLink * l, Get(name));
    l->info.mac = mac;
    return Status::Ok();
  }
  Status SetLinkMtu(const std::string& name, int mtu) override {
    STRATA_RETURN_IF_ERROR(Maybe("SetLinkMtu"));
    STRATA_ASSIGN_OR_RETURN(FakeLink * l, Get(name));
    l->info.mtu = mtu;
    return Status::Ok();
  }
  Status MoveLinkToNetns(const std::string& name, const std::string& to) override {
    STRATA_RETURN_IF_ERROR(Maybe("MoveLinkToNetns"));
    STRATA_ASSIGN_OR_RETURN(FakeLink * l, Get(name));
    std::map<std::string, FakeLink>* dest = nullptr;
    try {
      dest = &k_->Links(to);
    } catch (...) {
      return NotFoundError("netns " + to);
    }
    if (dest->count(name)) return AlreadyExistsError(name + " exists in " + to);
    FakeLink copy = *l;
    copy.info.admin_up = false;
    Links().erase(name);
    (*dest)[name] = copy;
    return Status::Ok();
  }
  Status DeleteLink(const std::string& name) override {
    STRATA_ASSIGN_OR_RETURN(FakeLink * l, Get(name));
    int index = l->info.index;
    for (auto& [n, m] : Links()) {
      if (m.info.master_index == index) m.info.master_index = 0;
    }
    Links().erase(name);
    return Status::Ok();
  }
  Status ReplaceRootTbf(int ifindex, uint32_t handle, const TbfSpec& spec) override {
    STRATA_RETURN_IF_ERROR(Maybe("ReplaceRootTbf"));
    STRATA_ASSIGN_OR_RETURN(FakeLink * l, ByIndex(ifindex));
    if (l->root && l->root->handle_major != handle && l->root->handle_major != 0) {
      // The real kernel would graft over it; the plugin must never ask for that.
      return InternalError("fake: replacing a foreign root qdisc");
    }
    RootQdisc q;
    q.kind = "tbf";
    q.handle_major = handle;
    q.tbf = spec;
    l->root = q;
    return Status::Ok();
  }
  Result<RootQdisc> GetRootQdisc(int ifindex) override {
    STRATA_ASSIGN_OR_RETURN(FakeLink * l, ByIndex(ifindex));
    if (!l->root) {
      RootQdisc def;
      def.kind = "noqueue";
      return def;
    }
    return *l->root;
  }
  Status DeleteRootQdisc(int ifindex, uint32_t handle) override {
    STRATA_ASSIGN_OR_RETURN(FakeLink * l, ByIndex(ifindex));
    if (!l->root || l->root->handle_major != handle) return NotFoundError("no such qdisc");
    l->root.reset();
    return Status::Ok();
  }
  Result<VfState> GetVf(const std::string& pf, int vf) override {
    auto it = k_->vfs.find({pf, vf});
    if (it == k_->vfs.end()) return NotFoundError("VF " + pf + "/" + std::to_string(vf));
    return it->second;
  }
  Status SetVf(const std::string& pf, int vf, const VfConfig& c) override {
    STRATA_RETURN_IF_ERROR(Maybe("SetVf"));
    auto it = k_->vfs.find({pf, vf});
    if (it == k_->vfs.end()) return NotFoundError("VF " + pf + "/" + std::to_string(vf));
    VfState& s = it->second;
    if (c.mac) s.mac = *c.mac;
    if (c.vlan) s.vlan = *c.vlan;
    if (c.vlan_qos) s.vlan_qos = *c.vlan_qos;
    if (c.spoof_check) s.spoof_check = *c.spoof_check;
    if (c.trust) s.trust = *c.trust;
    if (c.link_state) s.link_state = *c.link_state;
    if (c.min_tx_rate_mbps) s.min_tx_rate_mbps = *c.min_tx_rate_mbps;
    if (c.max_tx_rate_mbps) s.max_tx_rate_mbps = *c.max_tx_rate_mbps;
    return Status::Ok();
  }
  Status CreateBond(const BondSpec& spec) override {
    STRATA_RETURN_IF_ERROR(Maybe("CreateBond"));
    if (Links().count(spec.name)) return AlreadyExistsError(spec.name);
    k_->AddLink(ns_, spec.name, "bond", spec.mtu > 0 ? spec.mtu : 1500);
    FakeLink& b = Links()[spec.name];
    b.bond.mode = spec.mode;
    b.bond.miimon_ms = spec.miimon_ms;
    return Status::Ok();
  }
  Status EnslaveLink(const std::string& member, const std::string& bond) override {
    STRATA_RETURN_IF_ERROR(Maybe("EnslaveLink"));
    STRATA_ASSIGN_OR_RETURN(FakeLink * m, Get(member));
    STRATA_ASSIGN_OR_RETURN(FakeLink * b, Get(bond));
    if (m->info.admin_up) return InternalError("enslave: " + member + " is up");
    m->info.master_index = b->info.index;
    m->info.admin_up = true;
    if (b->bond.active_slave_index == 0) b->bond.active_slave_index = m->info.index;
    return Status::Ok();
  }
  Status ReleaseLink(const std::string& member) override {
    STRATA_ASSIGN_OR_RETURN(FakeLink * m, Get(member));
    m->info.master_index = 0;
    return Status::Ok();
  }
  Status SetBondPrimary(const std::string& bond, const std::string& primary) override {
    STRATA_ASSIGN_OR_RETURN(FakeLink * b, Get(bond));
    STRATA_ASSIGN_OR_RETURN(FakeLink * p, Get(primary));
    b->bond.primary_index = p->info.index;
    b->bond.active_slave_index = p->info.index;
    return Status::Ok();
  }
  Result<BondState> GetBond(const std::string& bond) override {
    STRATA_ASSIGN_OR_RETURN(FakeLink * b, Get(bond));
    return b->bond;
  }

 private:
  std::map<std::string, FakeLink>& Links() { return k_->Links(ns_); }
  Result<FakeLink*> Get(const std::string& name) {
    auto it = Links().find(name);
    if (it == Links().end()) return NotFoundError("link " + name);
    return &it->second;
  }
  Result<FakeLink*> ByIndex(int index) {
    for (auto& [n, l] : Links()) {
      if (l.info.index == index) return &l;
    }
    return NotFoundError("link #" + std::to_string(index));
  }
  Status Maybe(const std::string& op) {
    if (k_->ShouldFail(op)) return InternalError("injected failure: " + op);
    return Status::Ok();
  }
  FakeKernel* k_;
  std::string ns_;
};

}  // namespace

Result<NetlinkManagerPtr> FakeKernel::Open(const std::string& netns_path) {
  if (!namespaces_.count(netns_path)) return NotFoundError("netns " + netns_path);
  return NetlinkManagerPtr(std::make_unique<FakeManager>(this, netns_path));
}

void FakeKernel::AddLink(const std::string& ns, const std::string& name, const std::string& kind,
                         int mtu) {
  FakeLink l;
  l.info.index = next_index++;
  l.info.name = name;
  l.info.kind = kind;
  l.info.mtu = mtu;
  l.info.mac = "02:00:00:00:00:" + std::to_string(10 + l.info.index % 90);
  namespaces_.at(ns)[name] = l;
}

void FakeKernel::AddVeth(const std::string& ns_a, const std::string& a, const std::string& ns_b,
                         const std::string& b, int mtu) {
  AddLink(ns_a, a, "veth", mtu);
  AddLink(ns_b, b, "veth", mtu);
  namespaces_.at(ns_a)[a].info.peer_index = namespaces_.at(ns_b)[b].info.index;
  namespaces_.at(ns_b)[b].info.peer_index = namespaces_.at(ns_a)[a].info.index;
}

FakeLink* FakeKernel::Find(const std::string& ns, const std::string& name) {
  auto n = namespaces_.find(ns);
  if (n == namespaces_.end()) return nullptr;
  auto it = n->second.find(name);
  return it == n->second.end() ? nullptr : &it->second;
}

}  // namespace strata::cni::testing
