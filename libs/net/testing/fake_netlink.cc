#include "strata/net/testing/fake_netlink.h"

namespace strata::net::testing {
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
  // As do_setlink: move (closing the link; the new name is used when the old one is taken
  // there), MAC, MTU, rename, up/down; a failure leaves the steps before it applied.
  Status ChangeLink(const std::string& name, const LinkChange& c) override {
    STRATA_RETURN_IF_ERROR(Maybe("ChangeLink"));
    STRATA_ASSIGN_OR_RETURN(FakeLink * l, Get(name));
    std::string ns = ns_;
    std::string cur = name;
    if (c.netns) {
      std::map<std::string, FakeLink>* dest = nullptr;
      try {
        dest = &k_->Links(*c.netns);
      } catch (...) {
        return NotFoundError("netns " + *c.netns);
      }
      std::string dest_name = name;
      if (dest->count(name)) {
        if (!c.name || dest->count(*c.name))
          return AlreadyExistsError(name + " exists in " + *c.netns);
        dest_name = *c.name;
      }
      FakeLink copy = *l;
      copy.info.admin_up = false;
      copy.info.name = dest_name;
      copy.addresses.clear();  // the kernel drops addresses and routes on a move
      copy.routes.clear();
      Links().erase(name);
      (*dest)[dest_name] = copy;
      ns = *c.netns;
      cur = dest_name;
      ++k_->moves;
      // A kernel that refuses a later step (say, the MTU) after the move.
      if (k_->ShouldFail("ChangeLink:after-move")) {
        return InternalError("injected failure after the move: ChangeLink");
      }
    }
    auto& links = k_->Links(ns);
    FakeLink* link = &links.at(cur);
    if (c.mac) link->info.mac = *c.mac;
    if (c.mtu) link->info.mtu = *c.mtu;
    if (c.name && *c.name != cur) {
      if (link->info.admin_up) return InternalError("rename " + cur + ": device is up (EBUSY)");
      if (links.count(*c.name)) return AlreadyExistsError("rename: " + *c.name + " exists");
      FakeLink copy = *link;
      copy.info.name = *c.name;
      links.erase(cur);
      links[*c.name] = copy;
      link = &links.at(*c.name);
    }
    if (c.up) link->info.admin_up = *c.up;
    return Status::Ok();
  }
  Status AddAddress(const std::string& link, const std::string& cidr) override {
    STRATA_RETURN_IF_ERROR(Maybe("AddAddress"));
    STRATA_ASSIGN_OR_RETURN(FakeLink * l, Get(link));
    if (!l->addresses.insert(cidr).second) return AlreadyExistsError(cidr + " on " + link);
    return Status::Ok();
  }
  Status AddRoute(const std::string& link, const std::string& dst,
                  const std::string& gateway) override {
    STRATA_RETURN_IF_ERROR(Maybe("AddRoute"));
    STRATA_ASSIGN_OR_RETURN(FakeLink * l, Get(link));
    l->routes.push_back(dst + (gateway.empty() ? "" : " via " + gateway));
    return Status::Ok();
  }
  Status DeleteLink(const std::string& name) override {
    STRATA_RETURN_IF_ERROR(Maybe("DeleteLink"));
    STRATA_ASSIGN_OR_RETURN(FakeLink * l, Get(name));
    int index = l->info.index;
    for (auto& [n, m] : Links()) {
      if (m.info.master_index == index) m.info.master_index = 0;
    }
    Links().erase(name);
    // The kernel deletes the VLANs on a deleted device.
    std::erase_if(Links(), [index](const auto& e) {
      return e.second.info.kind == "vlan" && e.second.info.peer_index == index;
    });
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
    SetOptions(b.bond, spec);
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
    STRATA_RETURN_IF_ERROR(Maybe("ReleaseLink"));
    STRATA_ASSIGN_OR_RETURN(FakeLink * m, Get(member));
    m->info.master_index = 0;
    return Status::Ok();
  }
  Status SetBondPrimary(const std::string& bond, const std::string& primary) override {
    STRATA_RETURN_IF_ERROR(Maybe("SetBondPrimary"));
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
  Status CreateVlan(const std::string& name, const std::string& lower, int vlan_id,
                    int mtu) override {
    STRATA_RETURN_IF_ERROR(Maybe("CreateVlan"));
    STRATA_ASSIGN_OR_RETURN(FakeLink * l, Get(lower));
    if (Links().count(name)) return AlreadyExistsError(name);
    const int lower_index = l->info.index;
    const int lower_mtu = l->info.mtu;
    k_->AddLink(ns_, name, "vlan", mtu > 0 ? mtu : lower_mtu);
    FakeLink& v = Links()[name];
    v.info.peer_index = lower_index;
    v.info.vlan_id = vlan_id;
    return Status::Ok();
  }

  Status SetBondOptions(const std::string& bond, const BondSpec& spec) override {
    STRATA_RETURN_IF_ERROR(Maybe("SetBondOptions"));
    STRATA_ASSIGN_OR_RETURN(FakeLink * b, Get(bond));
    if (b->info.kind != "bond") return InvalidArgumentError(bond + " is not a bond");
    if (spec.lacp_rate && b->info.admin_up) {
      return InternalError("set lacp_rate of " + bond + ": the bond is up (EBUSY)");
    }
    SetOptions(b->bond, spec);
    return Status::Ok();
  }
  Status CreateBridge(const BridgeSpec& spec) override {
    STRATA_RETURN_IF_ERROR(Maybe("CreateBridge"));
    if (Links().count(spec.name)) return AlreadyExistsError(spec.name);
    k_->AddLink(ns_, spec.name, "bridge", spec.mtu > 0 ? spec.mtu : 1500);
    Links()[spec.name].bridge = {spec.vlan_filtering, spec.stp};
    return Status::Ok();
  }
  Result<BridgeState> GetBridge(const std::string& bridge) override {
    STRATA_ASSIGN_OR_RETURN(FakeLink * b, Get(bridge));
    if (b->info.kind != "bridge") return FailedPreconditionError(bridge + " is not a bridge");
    return b->bridge;
  }
  Status SetBridgeOptions(const BridgeSpec& spec) override {
    STRATA_RETURN_IF_ERROR(Maybe("SetBridgeOptions"));
    STRATA_ASSIGN_OR_RETURN(FakeLink * b, Get(spec.name));
    b->bridge = {spec.vlan_filtering, spec.stp};
    return Status::Ok();
  }
  Status SetMaster(const std::string& link, const std::string& master) override {
    STRATA_RETURN_IF_ERROR(Maybe("SetMaster"));
    STRATA_ASSIGN_OR_RETURN(FakeLink * l, Get(link));
    int index = 0;
    if (!master.empty()) {
      STRATA_ASSIGN_OR_RETURN(FakeLink * m, Get(master));
      index = m->info.index;
    }
    l->info.master_index = index;
    return Status::Ok();
  }
  Result<std::vector<std::string>> ListAddresses(const std::string& link) override {
    STRATA_ASSIGN_OR_RETURN(FakeLink * l, Get(link));
    return std::vector<std::string>(l->addresses.begin(), l->addresses.end());
  }

 private:
  static void SetOptions(BondState& st, const BondSpec& spec) {
    st.miimon_ms = spec.miimon_ms;
    st.updelay_ms = spec.updelay_ms;
    st.downdelay_ms = spec.downdelay_ms;
    if (spec.xmit_hash_policy) st.xmit_hash_policy = *spec.xmit_hash_policy;
    if (spec.lacp_rate) st.lacp_rate = *spec.lacp_rate;
    if (spec.primary_reselect) st.primary_reselect = *spec.primary_reselect;
  }
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
    k_->calls[op]++;
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

}  // namespace strata::net::testing
