#include "strata/net/linux_netlink.h"

#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/pkt_sched.h>
#include <net/if.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bonding.h>
#include <netlink/route/link/sriov.h>
#include <netlink/route/link/vlan.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/tbf.h>
#include <netlink/route/route.h>
#include <netlink/route/tc.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "strata/common/fd.h"

namespace strata::net {
namespace {

constexpr int kDumpRetries = 10;

Status NlError(const std::string& what, int err) {
  err = std::abs(err);
  std::string msg = what + ": " + nl_geterror(err);
  switch (err) {
    case NLE_OBJ_NOTFOUND:
    case NLE_NODEV:
      return NotFoundError(msg);
    case NLE_EXIST:
      return AlreadyExistsError(msg);
    case NLE_PERM:
    case NLE_NOACCESS:
      return PermissionDeniedError(msg);
    case NLE_BUSY:
    case NLE_AGAIN:
    case NLE_DUMP_INTR:
      return UnavailableError(msg);
    case NLE_INVAL:
    case NLE_RANGE:
      return InvalidArgumentError(msg);
    default:
      return InternalError(msg);
  }
}

// Owning wrappers for libnl objects (each has its own put/free function).
struct LinkPut {
  void operator()(rtnl_link* l) const { rtnl_link_put(l); }
};
using LinkPtr = std::unique_ptr<rtnl_link, LinkPut>;
struct QdiscPut {
  void operator()(rtnl_qdisc* q) const { rtnl_qdisc_put(q); }
};
using QdiscPtr = std::unique_ptr<rtnl_qdisc, QdiscPut>;
struct AddrPut {
  void operator()(nl_addr* a) const { nl_addr_put(a); }
};
using AddrPtr = std::unique_ptr<nl_addr, AddrPut>;
struct CachePut {
  void operator()(nl_cache* c) const { nl_cache_free(c); }
};
using CachePtr = std::unique_ptr<nl_cache, CachePut>;
struct MsgFree {
  void operator()(nl_msg* m) const { nlmsg_free(m); }
};
using MsgPtr = std::unique_ptr<nl_msg, MsgFree>;

std::string AddrToMac(nl_addr* addr) {
  if (addr == nullptr || nl_addr_get_len(addr) == 0) return "";
  char buf[64];
  nl_addr2str(addr, buf, sizeof(buf));
  return buf;
}

LinkInfo ToLinkInfo(rtnl_link* l) {
  LinkInfo i;
  i.index = rtnl_link_get_ifindex(l);
  if (const char* n = rtnl_link_get_name(l)) i.name = n;
  if (const char* t = rtnl_link_get_type(l)) i.kind = t;
  i.mac = AddrToMac(rtnl_link_get_addr(l));
  i.mtu = static_cast<int>(rtnl_link_get_mtu(l));
  i.admin_up = (rtnl_link_get_flags(l) & IFF_UP) != 0;
  i.carrier = rtnl_link_get_carrier(l) != 0;
  i.master_index = rtnl_link_get_master(l);
  i.peer_index = rtnl_link_get_link(l);
  // rtnl_link_vlan_get_id asserts the link is a VLAN: ask only then.
  if (i.kind == "vlan") i.vlan_id = std::max(0, rtnl_link_vlan_get_id(l));
  return i;
}

int NlReplyTrampoline(nl_msg* msg, void* arg) {
  (*static_cast<std::function<void(nl_msg*)>*>(arg))(msg);
  return NL_OK;
}

Result<int> OpenNetnsFd(const std::string& path) {
  const std::string p = path.empty() ? "/proc/thread-self/ns/net" : path;
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return NotFoundError("network namespace " + p + ": does not exist");
    return ErrnoError("open network namespace " + p, err);
  }
  return fd;
}

class LinuxNetlinkManager final : public NetlinkManager {
 public:
  LinuxNetlinkManager(nl_sock* sock, std::string netns_path)
      : sock_(sock), netns_path_(std::move(netns_path)) {}
  ~LinuxNetlinkManager() override { nl_socket_free(sock_); }

  const std::string& netns_path() const override { return netns_path_; }

  Result<LinkInfo> GetLink(const std::string& name) override {
    STRATA_ASSIGN_OR_RETURN(LinkPtr l, Fetch(name));
    return ToLinkInfo(l.get());
  }

  Result<LinkInfo> GetLinkByIndex(int index) override {
    rtnl_link* raw = nullptr;
    int err = rtnl_link_get_kernel(sock_, index, nullptr, &raw);
    if (err < 0) return NlError("link #" + std::to_string(index), err);
    LinkPtr l(raw);
    return ToLinkInfo(l.get());
  }

  Result<std::vector<LinkInfo>> ListLinks() override {
    nl_cache* raw = nullptr;
    int err = 0;
    // A dump that raced a change is flagged NLM_F_DUMP_INTR (libnl: -NLE_DUMP_INTR): redo it.
    for (int attempt = 0; attempt < kDumpRetries; ++attempt) {
      err = rtnl_link_alloc_cache(sock_, AF_UNSPEC, &raw);
      if (err != -NLE_DUMP_INTR) break;
    }
    if (err < 0) return NlError("dump links", err);
    CachePtr cache(raw);
    std::vector<LinkInfo> out;
    for (nl_object* o = nl_cache_get_first(cache.get()); o != nullptr; o = nl_cache_get_next(o)) {
      out.push_back(ToLinkInfo(reinterpret_cast<rtnl_link*>(o)));
    }
    return out;
  }

  Result<LinkStats> GetLinkStats(const std::string& name) override {
    STRATA_ASSIGN_OR_RETURN(LinkPtr l, Fetch(name));
    LinkStats s;
    s.rx_bytes = rtnl_link_get_stat(l.get(), RTNL_LINK_RX_BYTES);
    s.tx_bytes = rtnl_link_get_stat(l.get(), RTNL_LINK_TX_BYTES);
    s.rx_packets = rtnl_link_get_stat(l.get(), RTNL_LINK_RX_PACKETS);
    s.tx_packets = rtnl_link_get_stat(l.get(), RTNL_LINK_TX_PACKETS);
    s.rx_dropped = rtnl_link_get_stat(l.get(), RTNL_LINK_RX_DROPPED);
    s.tx_dropped = rtnl_link_get_stat(l.get(), RTNL_LINK_TX_DROPPED);
    s.rx_errors = rtnl_link_get_stat(l.get(), RTNL_LINK_RX_ERRORS);
    s.tx_errors = rtnl_link_get_stat(l.get(), RTNL_LINK_TX_ERRORS);
    return s;
  }

  Status SetLinkUp(const std::string& name, bool up) override {
    return Change(name, up ? "set up" : "set down", [&](rtnl_link* c) {
      if (up) {
        rtnl_link_set_flags(c, IFF_UP);
      } else {
        rtnl_link_unset_flags(c, IFF_UP);
      }
      return Status::Ok();
    });
  }

  Status RenameLink(const std::string& name, const std::string& new_name) override {
    return Change(name, "rename to " + new_name, [&](rtnl_link* c) {
      rtnl_link_set_name(c, new_name.c_str());
      return Status::Ok();
    });
  }

  Status ChangeLink(const std::string& name, const LinkChange& c) override {
    STRATA_ASSIGN_OR_RETURN(LinkInfo l, GetLink(name));
    std::optional<Fd> ns;
    if (c.netns) {
      STRATA_ASSIGN_OR_RETURN(int raw_fd, OpenNetnsFd(*c.netns));
      ns.emplace(raw_fd);
    }
    AddrPtr mac;
    if (c.mac) {
      nl_addr* raw = nullptr;
      int err = nl_addr_parse(c.mac->c_str(), AF_LLC, &raw);
      if (err < 0) return NlError("MAC " + *c.mac, err);
      mac.reset(raw);
    }
    MsgPtr msg(nlmsg_alloc_simple(RTM_NEWLINK, 0));
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    ifi.ifi_index = l.index;
    if (c.up) {
      ifi.ifi_change = IFF_UP;
      ifi.ifi_flags = *c.up ? IFF_UP : 0;
    }
    bool ok = nlmsg_append(msg.get(), &ifi, sizeof(ifi), NLMSG_ALIGNTO) >= 0;
    if (ok && ns)
      ok = nla_put_u32(msg.get(), IFLA_NET_NS_FD, static_cast<uint32_t>(ns->get())) >= 0;
    if (ok && mac) ok = nla_put_addr(msg.get(), IFLA_ADDRESS, mac.get()) >= 0;
    if (ok && c.mtu) ok = nla_put_u32(msg.get(), IFLA_MTU, static_cast<uint32_t>(*c.mtu)) >= 0;
    if (ok && c.name) ok = nla_put_string(msg.get(), IFLA_IFNAME, c.name->c_str()) >= 0;
    if (!ok) return InternalError("build RTM_NEWLINK for " + name);
    std::string what = name + ":";
    if (c.netns) what += " move to netns " + (c.netns->empty() ? "(host)" : *c.netns);
    if (c.mac) what += " MAC " + *c.mac;
    if (c.mtu) what += " MTU " + std::to_string(*c.mtu);
    if (c.name) what += " rename to " + *c.name;
    if (c.up) what += *c.up ? " up" : " down";
    return Transact(std::move(msg), what, nullptr);
  }

  Status AddAddress(const std::string& link, const std::string& cidr) override {
    STRATA_ASSIGN_OR_RETURN(LinkInfo l, GetLink(link));
    nl_addr* raw = nullptr;
    int err = nl_addr_parse(cidr.c_str(), AF_UNSPEC, &raw);
    if (err < 0) return NlError("address " + cidr, err);
    AddrPtr local(raw);
    std::unique_ptr<rtnl_addr, void (*)(rtnl_addr*)> addr(rtnl_addr_alloc(), rtnl_addr_put);
    rtnl_addr_set_ifindex(addr.get(), l.index);
    rtnl_addr_set_family(addr.get(), nl_addr_get_family(local.get()));
    err = rtnl_addr_set_local(addr.get(), local.get());
    if (err < 0) return NlError("address " + cidr, err);
    err = rtnl_addr_add(sock_, addr.get(), 0);
    if (err < 0) return NlError("add address " + cidr + " to " + link, err);
    return Status::Ok();
  }

  Status AddRoute(const std::string& link, const std::string& dst,
                  const std::string& gateway) override {
    STRATA_ASSIGN_OR_RETURN(LinkInfo l, GetLink(link));
    nl_addr* raw = nullptr;
    int err = nl_addr_parse(dst.c_str(), AF_UNSPEC, &raw);
    if (err < 0) return NlError("route destination " + dst, err);
    AddrPtr dst_addr(raw);
    std::unique_ptr<rtnl_route, void (*)(rtnl_route*)> route(rtnl_route_alloc(), rtnl_route_put);
    const int family = nl_addr_get_family(dst_addr.get());
    rtnl_route_set_family(route.get(), static_cast<uint8_t>(family));
    rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
    rtnl_route_set_protocol(route.get(), RTPROT_BOOT);
    rtnl_route_set_scope(route.get(), gateway.empty() ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE);
    err = rtnl_route_set_dst(route.get(), dst_addr.get());
    if (err < 0) return NlError("route destination " + dst, err);
    rtnl_nexthop* nh = rtnl_route_nh_alloc();  // owned by the route once added
    rtnl_route_nh_set_ifindex(nh, l.index);
    if (!gateway.empty()) {
      nl_addr* gw_raw = nullptr;
      err = nl_addr_parse(gateway.c_str(), family, &gw_raw);
      if (err < 0) {
        rtnl_route_nh_free(nh);
        return NlError("route gateway " + gateway, err);
      }
      AddrPtr gw(gw_raw);
      rtnl_route_nh_set_gateway(nh, gw.get());
    }
    rtnl_route_add_nexthop(route.get(), nh);
    err = rtnl_route_add(sock_, route.get(), NLM_F_EXCL);
    if (err < 0) {
      return NlError(
          "add route " + dst + (gateway.empty() ? "" : " via " + gateway) + " dev " + link, err);
    }
    return Status::Ok();
  }

  Status DeleteLink(const std::string& name) override {
    LinkPtr l(rtnl_link_alloc());
    rtnl_link_set_name(l.get(), name.c_str());
    int err = rtnl_link_delete(sock_, l.get());
    if (err < 0) return NlError("delete link " + name, err);
    return Status::Ok();
  }

  Status ReplaceRootTbf(int ifindex, uint32_t handle_major, const TbfSpec& spec) override {
    // libnl's tbf setters take int: past INT_MAX bytes/s (~17 Gbit/s) we refuse instead of
    // wrapping. Callers validate the configured rates against kMaxTbfRate first.
    if (spec.rate_bytes_per_sec > INT_MAX || spec.burst_bytes > INT_MAX ||
        spec.limit_bytes > INT_MAX) {
      return OutOfRangeError("tbf: rate, burst and limit must each be below 2 GiB");
    }
    QdiscPtr q(rtnl_qdisc_alloc());
    rtnl_tc* tc = TC_CAST(q.get());
    rtnl_tc_set_ifindex(tc, ifindex);
    rtnl_tc_set_parent(tc, TC_H_ROOT);
    rtnl_tc_set_handle(tc, TC_H_MAKE(handle_major << 16, 0));
    int err = rtnl_tc_set_kind(tc, "tbf");
    if (err < 0) return NlError("tbf", err);
    rtnl_qdisc_tbf_set_limit(q.get(), static_cast<int>(spec.limit_bytes));
    rtnl_qdisc_tbf_set_rate(q.get(), static_cast<int>(spec.rate_bytes_per_sec),
                            static_cast<int>(spec.burst_bytes), 0);
    err = rtnl_qdisc_add(sock_, q.get(), NLM_F_CREATE | NLM_F_REPLACE);
    if (err == -NLE_OBJ_NOTFOUND) {
      // qdisc_create() answers ENOENT when the kernel has no "tbf" (sch_tbf not built in and not
      // loadable), not only for a missing device: say which.
      return InternalError("replace root tbf on link #" + std::to_string(ifindex) +
                           ": the kernel has no tbf qdisc or the link is gone "
                           "(is module sch_tbf available?)");
    }
    if (err < 0) return NlError("replace root tbf on link #" + std::to_string(ifindex), err);
    return Status::Ok();
  }

  Result<RootQdisc> GetRootQdisc(int ifindex) override {
    // The kernel answers a non-dump RTM_GETQDISC through qdisc_notify(), which unicasts the
    // qdisc back to the caller only when NLM_F_ECHO is set (as `tc qdisc get` does).
    MsgPtr msg(nlmsg_alloc_simple(RTM_GETQDISC, NLM_F_ECHO));
    tcmsg tcm{};
    tcm.tcm_family = AF_UNSPEC;
    tcm.tcm_ifindex = ifindex;
    tcm.tcm_parent = TC_H_ROOT;
    if (nlmsg_append(msg.get(), &tcm, sizeof(tcm), NLMSG_ALIGNTO) < 0) {
      return InternalError("build RTM_GETQDISC");
    }
    nl_object* obj = nullptr;
    STRATA_RETURN_IF_ERROR(Transact(
        std::move(msg), "root qdisc of link #" + std::to_string(ifindex), [&](nl_msg* reply) {
          if (obj != nullptr) return;
          nl_msg_parse(
              reply,
              [](nl_object* o, void* arg) {
                nl_object_get(o);
                *static_cast<nl_object**>(arg) = o;
              },
              &obj);
        }));
    if (obj == nullptr) return NotFoundError("link #" + std::to_string(ifindex) + ": no qdisc");
    QdiscPtr q(reinterpret_cast<rtnl_qdisc*>(obj));
    rtnl_tc* tc = TC_CAST(q.get());
    RootQdisc r;
    if (const char* k = rtnl_tc_get_kind(tc)) r.kind = k;
    r.handle_major = TC_H_MAJ(rtnl_tc_get_handle(tc)) >> 16;
    r.stats.bytes = rtnl_tc_get_stat(tc, RTNL_TC_BYTES);
    r.stats.packets = rtnl_tc_get_stat(tc, RTNL_TC_PACKETS);
    r.stats.drops = rtnl_tc_get_stat(tc, RTNL_TC_DROPS);
    r.stats.overlimits = rtnl_tc_get_stat(tc, RTNL_TC_OVERLIMITS);
    r.stats.backlog_bytes = rtnl_tc_get_stat(tc, RTNL_TC_BACKLOG);
    if (r.kind == "tbf") {
      TbfSpec t;
      t.rate_bytes_per_sec = static_cast<uint64_t>(std::max(0, rtnl_qdisc_tbf_get_rate(q.get())));
      t.burst_bytes = static_cast<uint64_t>(std::max(0, rtnl_qdisc_tbf_get_rate_bucket(q.get())));
      t.limit_bytes = static_cast<uint64_t>(std::max(0, rtnl_qdisc_tbf_get_limit(q.get())));
      r.tbf = t;
    }
    return r;
  }

  Status DeleteRootQdisc(int ifindex, uint32_t handle_major) override {
    QdiscPtr q(rtnl_qdisc_alloc());
    rtnl_tc* tc = TC_CAST(q.get());
    rtnl_tc_set_ifindex(tc, ifindex);
    rtnl_tc_set_parent(tc, TC_H_ROOT);
    rtnl_tc_set_handle(tc, TC_H_MAKE(handle_major << 16, 0));
    int err = rtnl_qdisc_delete(sock_, q.get());
    // The kernel answers EINVAL ("Invalid handle") when the root qdisc has another handle and
    // ENOENT when it is the default (handle 0) or the device is gone: none of them is ours.
    if (err == -NLE_INVAL || err == -NLE_OBJ_NOTFOUND || err == -NLE_NODEV) {
      return NotFoundError("link #" + std::to_string(ifindex) + ": no Strata root qdisc");
    }
    if (err < 0) return NlError("delete root qdisc of link #" + std::to_string(ifindex), err);
    return Status::Ok();
  }

  Result<VfState> GetVf(const std::string& pf, int vf_index) override {
    // A plain RTM_GETLINK leaves VF info out; ask for it with IFLA_EXT_MASK = RTEXT_FILTER_VF.
    STRATA_ASSIGN_OR_RETURN(LinkPtr pf_link, Fetch(pf));
    MsgPtr msg(nlmsg_alloc_simple(RTM_GETLINK, 0));
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    ifi.ifi_index = rtnl_link_get_ifindex(pf_link.get());
    if (nlmsg_append(msg.get(), &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0 ||
        nla_put_u32(msg.get(), IFLA_EXT_MASK, RTEXT_FILTER_VF) < 0) {
      return InternalError("build RTM_GETLINK");
    }
    nl_object* obj = nullptr;
    STRATA_RETURN_IF_ERROR(Transact(std::move(msg), "PF " + pf, [&](nl_msg* reply) {
      if (obj != nullptr) return;
      nl_msg_parse(
          reply,
          [](nl_object* o, void* arg) {
            nl_object_get(o);
            *static_cast<nl_object**>(arg) = o;
          },
          &obj);
    }));
    if (obj == nullptr) return NotFoundError("PF " + pf + ": no reply");
    LinkPtr full(reinterpret_cast<rtnl_link*>(obj));
    rtnl_link_vf* vf = rtnl_link_vf_get(full.get(), static_cast<uint32_t>(vf_index));
    if (vf == nullptr) {
      return NotFoundError("PF " + pf + ": no VF " + std::to_string(vf_index));
    }
    VfState s;
    nl_addr* addr = nullptr;
    if (rtnl_link_vf_get_addr(vf, &addr) == 0) s.mac = AddrToMac(addr);
    nl_vf_vlans_t* vlans = nullptr;
    if (rtnl_link_vf_get_vlans(vf, &vlans) == 0 && vlans != nullptr && vlans->size > 0) {
      s.vlan = static_cast<int>(vlans->vlans[0].vf_vlan);
      s.vlan_qos = static_cast<int>(vlans->vlans[0].vf_vlan_qos);
    }
    uint32_t v = 0;
    if (rtnl_link_vf_get_spoofchk(vf, &v) == 0) s.spoof_check = v != 0;
    if (rtnl_link_vf_get_trust(vf, &v) == 0) s.trust = v != 0;
    if (rtnl_link_vf_get_linkstate(vf, &v) == 0) {
      s.link_state = v == IFLA_VF_LINK_STATE_ENABLE    ? "enable"
                     : v == IFLA_VF_LINK_STATE_DISABLE ? "disable"
                                                       : "auto";
    }
    nl_vf_rate rate{};
    if (rtnl_link_vf_get_rate(vf, &rate) == 0) {
      s.min_tx_rate_mbps = static_cast<int>(rate.min_tx_rate);
      s.max_tx_rate_mbps = static_cast<int>(rate.max_tx_rate);
    }
    rtnl_link_vf_put(vf);
    return s;
  }

  Status SetVf(const std::string& pf, int vf_index, const VfConfig& config) override {
    return Change(pf, "configure VF " + std::to_string(vf_index), [&](rtnl_link* c) {
      rtnl_link_vf* vf = rtnl_link_vf_alloc();
      rtnl_link_vf_set_index(vf, static_cast<uint32_t>(vf_index));
      if (config.mac) {
        nl_addr* raw = nullptr;
        int err = nl_addr_parse(config.mac->c_str(), AF_LLC, &raw);
        if (err < 0) {
          rtnl_link_vf_put(vf);
          return NlError("VF MAC " + *config.mac, err);
        }
        rtnl_link_vf_set_addr(vf, raw);
        nl_addr_put(raw);
      }
      if (config.vlan || config.vlan_qos) {
        nl_vf_vlans_t* vlans = nullptr;
        rtnl_link_vf_vlan_alloc(&vlans, 1);
        vlans->vlans[0].vf_vlan = static_cast<uint32_t>(config.vlan.value_or(0));
        vlans->vlans[0].vf_vlan_qos = static_cast<uint32_t>(config.vlan_qos.value_or(0));
        vlans->vlans[0].vf_vlan_proto = 0x8100;
        rtnl_link_vf_set_vlans(vf, vlans);
        rtnl_link_vf_vlan_put(vlans);
      }
      if (config.spoof_check) rtnl_link_vf_set_spoofchk(vf, *config.spoof_check ? 1 : 0);
      if (config.trust) rtnl_link_vf_set_trust(vf, *config.trust ? 1 : 0);
      if (config.link_state) {
        rtnl_link_vf_set_linkstate(vf, *config.link_state == "enable" ? IFLA_VF_LINK_STATE_ENABLE
                                       : *config.link_state == "disable"
                                           ? IFLA_VF_LINK_STATE_DISABLE
                                           : IFLA_VF_LINK_STATE_AUTO);
      }
      if (config.min_tx_rate_mbps || config.max_tx_rate_mbps) {
        nl_vf_rate rate{};
        rate.api = RTNL_LINK_VF_RATE_API_NEW;
        rate.min_tx_rate = static_cast<uint32_t>(config.min_tx_rate_mbps.value_or(0));
        rate.max_tx_rate = static_cast<uint32_t>(config.max_tx_rate_mbps.value_or(0));
        rtnl_link_vf_set_rate(vf, &rate);
      }
      int err = rtnl_link_vf_add(c, vf);
      rtnl_link_vf_put(vf);
      if (err < 0) return NlError("VF " + std::to_string(vf_index), err);
      return Status::Ok();
    });
  }

  Status CreateBond(const BondSpec& spec) override {
    MsgPtr msg(nlmsg_alloc_simple(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL));
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    bool ok = nlmsg_append(msg.get(), &ifi, sizeof(ifi), NLMSG_ALIGNTO) >= 0 &&
              nla_put_string(msg.get(), IFLA_IFNAME, spec.name.c_str()) >= 0;
    if (ok && spec.mtu > 0) ok = nla_put_u32(msg.get(), IFLA_MTU, spec.mtu) >= 0;
    nlattr* linkinfo = ok ? nla_nest_start(msg.get(), IFLA_LINKINFO) : nullptr;
    ok = linkinfo != nullptr && nla_put_string(msg.get(), IFLA_INFO_KIND, "bond") >= 0;
    nlattr* data = ok ? nla_nest_start(msg.get(), IFLA_INFO_DATA) : nullptr;
    ok = data != nullptr &&
         nla_put_u8(msg.get(), IFLA_BOND_MODE, static_cast<uint8_t>(spec.mode)) >= 0 &&
         nla_put_u32(msg.get(), IFLA_BOND_MIIMON, static_cast<uint32_t>(spec.miimon_ms)) >= 0 &&
         nla_put_u32(msg.get(), IFLA_BOND_UPDELAY, static_cast<uint32_t>(spec.updelay_ms)) >= 0 &&
         nla_put_u32(msg.get(), IFLA_BOND_DOWNDELAY, static_cast<uint32_t>(spec.downdelay_ms)) >= 0;
    if (ok && spec.xmit_hash_policy) {
      ok = nla_put_u8(msg.get(), IFLA_BOND_XMIT_HASH_POLICY,
                      static_cast<uint8_t>(*spec.xmit_hash_policy)) >= 0;
    }
    if (ok && spec.fail_over_mac) {
      ok = nla_put_u8(msg.get(), IFLA_BOND_FAIL_OVER_MAC,
                      static_cast<uint8_t>(*spec.fail_over_mac)) >= 0;
    }
    if (ok && spec.lacp_rate) {
      ok =
          nla_put_u8(msg.get(), IFLA_BOND_AD_LACP_RATE, static_cast<uint8_t>(*spec.lacp_rate)) >= 0;
    }
    if (ok && spec.primary_reselect) {
      ok = nla_put_u8(msg.get(), IFLA_BOND_PRIMARY_RESELECT,
                      static_cast<uint8_t>(*spec.primary_reselect)) >= 0;
    }
    if (!ok) return InternalError("build RTM_NEWLINK for bond " + spec.name);
    nla_nest_end(msg.get(), data);
    nla_nest_end(msg.get(), linkinfo);
    return Transact(std::move(msg), "create bond " + spec.name, nullptr);
  }

  Status EnslaveLink(const std::string& member, const std::string& bond) override {
    STRATA_ASSIGN_OR_RETURN(LinkInfo m, GetLink(member));
    STRATA_ASSIGN_OR_RETURN(LinkInfo b, GetLink(bond));
    int err = rtnl_link_bond_enslave_ifindex(sock_, b.index, m.index);
    if (err < 0) return NlError("enslave " + member + " to " + bond, err);
    return Status::Ok();
  }

  Status ReleaseLink(const std::string& member) override {
    STRATA_ASSIGN_OR_RETURN(LinkInfo m, GetLink(member));
    int err = rtnl_link_bond_release_ifindex(sock_, m.index);
    if (err < 0) return NlError("release " + member, err);
    return Status::Ok();
  }

  Status SetBondPrimary(const std::string& bond, const std::string& primary) override {
    STRATA_ASSIGN_OR_RETURN(LinkInfo b, GetLink(bond));
    STRATA_ASSIGN_OR_RETURN(LinkInfo p, GetLink(primary));
    MsgPtr msg(nlmsg_alloc_simple(RTM_NEWLINK, 0));
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    ifi.ifi_index = b.index;
    bool ok = nlmsg_append(msg.get(), &ifi, sizeof(ifi), NLMSG_ALIGNTO) >= 0;
    nlattr* linkinfo = ok ? nla_nest_start(msg.get(), IFLA_LINKINFO) : nullptr;
    ok = linkinfo != nullptr && nla_put_string(msg.get(), IFLA_INFO_KIND, "bond") >= 0;
    nlattr* data = ok ? nla_nest_start(msg.get(), IFLA_INFO_DATA) : nullptr;
    ok = data != nullptr &&
         nla_put_u32(msg.get(), IFLA_BOND_PRIMARY, static_cast<uint32_t>(p.index)) >= 0;
    if (!ok) return InternalError("build RTM_NEWLINK for bond " + bond);
    nla_nest_end(msg.get(), data);
    nla_nest_end(msg.get(), linkinfo);
    return Transact(std::move(msg), "set primary of " + bond + " to " + primary, nullptr);
  }

  Result<BondState> GetBond(const std::string& bond) override {
    STRATA_ASSIGN_OR_RETURN(LinkInfo b, GetLink(bond));
    if (b.kind != "bond") return FailedPreconditionError(bond + " is not a bond");
    MsgPtr msg(nlmsg_alloc_simple(RTM_GETLINK, 0));
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    ifi.ifi_index = b.index;
    if (nlmsg_append(msg.get(), &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0) {
      return InternalError("build RTM_GETLINK");
    }
    BondState st;
    bool parsed = false;
    STRATA_RETURN_IF_ERROR(Transact(std::move(msg), "bond " + bond, [&](nl_msg* reply) {
      nlattr* tb[IFLA_MAX + 1] = {};
      if (nlmsg_parse(nlmsg_hdr(reply), sizeof(ifinfomsg), tb, IFLA_MAX, nullptr) < 0 ||
          tb[IFLA_LINKINFO] == nullptr) {
        return;
      }
      nlattr* li[IFLA_INFO_MAX + 1] = {};
      if (nla_parse_nested(li, IFLA_INFO_MAX, tb[IFLA_LINKINFO], nullptr) < 0 ||
          li[IFLA_INFO_DATA] == nullptr) {
        return;
      }
      nlattr* bd[IFLA_BOND_MAX + 1] = {};
      if (nla_parse_nested(bd, IFLA_BOND_MAX, li[IFLA_INFO_DATA], nullptr) < 0) return;
      if (bd[IFLA_BOND_MODE]) st.mode = static_cast<BondMode>(nla_get_u8(bd[IFLA_BOND_MODE]));
      if (bd[IFLA_BOND_MIIMON]) st.miimon_ms = static_cast<int>(nla_get_u32(bd[IFLA_BOND_MIIMON]));
      if (bd[IFLA_BOND_ACTIVE_SLAVE]) {
        st.active_slave_index = static_cast<int>(nla_get_u32(bd[IFLA_BOND_ACTIVE_SLAVE]));
      }
      if (bd[IFLA_BOND_PRIMARY]) {
        st.primary_index = static_cast<int>(nla_get_u32(bd[IFLA_BOND_PRIMARY]));
      }
      if (bd[IFLA_BOND_UPDELAY])
        st.updelay_ms = static_cast<int>(nla_get_u32(bd[IFLA_BOND_UPDELAY]));
      if (bd[IFLA_BOND_DOWNDELAY]) {
        st.downdelay_ms = static_cast<int>(nla_get_u32(bd[IFLA_BOND_DOWNDELAY]));
      }
      if (bd[IFLA_BOND_XMIT_HASH_POLICY]) {
        st.xmit_hash_policy = nla_get_u8(bd[IFLA_BOND_XMIT_HASH_POLICY]);
      }
      if (bd[IFLA_BOND_AD_LACP_RATE]) st.lacp_rate = nla_get_u8(bd[IFLA_BOND_AD_LACP_RATE]);
      if (bd[IFLA_BOND_PRIMARY_RESELECT]) {
        st.primary_reselect = nla_get_u8(bd[IFLA_BOND_PRIMARY_RESELECT]);
      }
      parsed = true;
    }));
    if (!parsed) return InternalError("bond " + bond + ": no bonding attributes in the reply");
    return st;
  }

  Status SetBondOptions(const std::string& bond, const BondSpec& spec) override {
    STRATA_ASSIGN_OR_RETURN(LinkInfo b, GetLink(bond));
    return SetInfoData(b.index, "bond", "set options of bond " + bond, [&](nl_msg* m) {
      bool ok = nla_put_u32(m, IFLA_BOND_MIIMON, static_cast<uint32_t>(spec.miimon_ms)) >= 0 &&
                nla_put_u32(m, IFLA_BOND_UPDELAY, static_cast<uint32_t>(spec.updelay_ms)) >= 0 &&
                nla_put_u32(m, IFLA_BOND_DOWNDELAY, static_cast<uint32_t>(spec.downdelay_ms)) >= 0;
      if (ok && spec.xmit_hash_policy) {
        ok = nla_put_u8(m, IFLA_BOND_XMIT_HASH_POLICY,
                        static_cast<uint8_t>(*spec.xmit_hash_policy)) >= 0;
      }
      if (ok && spec.lacp_rate) {
        ok = nla_put_u8(m, IFLA_BOND_AD_LACP_RATE, static_cast<uint8_t>(*spec.lacp_rate)) >= 0;
      }
      if (ok && spec.primary_reselect) {
        ok = nla_put_u8(m, IFLA_BOND_PRIMARY_RESELECT,
                        static_cast<uint8_t>(*spec.primary_reselect)) >= 0;
      }
      return ok;
    });
  }

  Status CreateBridge(const BridgeSpec& spec) override {
    MsgPtr msg(nlmsg_alloc_simple(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL));
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    bool ok = nlmsg_append(msg.get(), &ifi, sizeof(ifi), NLMSG_ALIGNTO) >= 0 &&
              nla_put_string(msg.get(), IFLA_IFNAME, spec.name.c_str()) >= 0;
    if (ok && spec.mtu > 0)
      ok = nla_put_u32(msg.get(), IFLA_MTU, static_cast<uint32_t>(spec.mtu)) >= 0;
    nlattr* linkinfo = ok ? nla_nest_start(msg.get(), IFLA_LINKINFO) : nullptr;
    ok = linkinfo != nullptr && nla_put_string(msg.get(), IFLA_INFO_KIND, "bridge") >= 0;
    nlattr* data = ok ? nla_nest_start(msg.get(), IFLA_INFO_DATA) : nullptr;
    ok = data != nullptr && PutBridgeOptions(msg.get(), spec);
    if (!ok) return InternalError("build RTM_NEWLINK for bridge " + spec.name);
    nla_nest_end(msg.get(), data);
    nla_nest_end(msg.get(), linkinfo);
    return Transact(std::move(msg), "create bridge " + spec.name, nullptr);
  }

  Result<BridgeState> GetBridge(const std::string& bridge) override {
    STRATA_ASSIGN_OR_RETURN(LinkInfo b, GetLink(bridge));
    if (b.kind != "bridge") return FailedPreconditionError(bridge + " is not a bridge");
    BridgeState st;
    bool parsed = false;
    STRATA_RETURN_IF_ERROR(GetInfoData(b.index, "bridge " + bridge, [&](nlattr* data) {
      nlattr* br[IFLA_BR_MAX + 1] = {};
      if (nla_parse_nested(br, IFLA_BR_MAX, data, nullptr) < 0) return;
      if (br[IFLA_BR_VLAN_FILTERING])
        st.vlan_filtering = nla_get_u8(br[IFLA_BR_VLAN_FILTERING]) != 0;
      if (br[IFLA_BR_STP_STATE]) st.stp = nla_get_u32(br[IFLA_BR_STP_STATE]) != 0;
      parsed = true;
    }));
    if (!parsed) return InternalError("bridge " + bridge + ": no bridge attributes in the reply");
    return st;
  }

  Status SetBridgeOptions(const BridgeSpec& spec) override {
    STRATA_ASSIGN_OR_RETURN(LinkInfo b, GetLink(spec.name));
    return SetInfoData(b.index, "bridge", "set options of bridge " + spec.name,
                       [&](nl_msg* m) { return PutBridgeOptions(m, spec); });
  }

  Status SetMaster(const std::string& link, const std::string& master) override {
    STRATA_ASSIGN_OR_RETURN(LinkInfo l, GetLink(link));
    int master_index = 0;
    if (!master.empty()) {
      STRATA_ASSIGN_OR_RETURN(LinkInfo m, GetLink(master));
      master_index = m.index;
    }
    MsgPtr msg(nlmsg_alloc_simple(RTM_NEWLINK, 0));
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    ifi.ifi_index = l.index;
    bool ok = nlmsg_append(msg.get(), &ifi, sizeof(ifi), NLMSG_ALIGNTO) >= 0 &&
              nla_put_u32(msg.get(), IFLA_MASTER, static_cast<uint32_t>(master_index)) >= 0;
    if (!ok) return InternalError("build RTM_NEWLINK for " + link);
    return Transact(std::move(msg),
                    master.empty() ? "release " + link : "set master of " + link + " to " + master,
                    nullptr);
  }

  Result<std::vector<std::string>> ListAddresses(const std::string& link) override {
    STRATA_ASSIGN_OR_RETURN(LinkInfo l, GetLink(link));
    nl_cache* raw = nullptr;
    int err = 0;
    for (int attempt = 0; attempt < kDumpRetries; ++attempt) {
      err = rtnl_addr_alloc_cache(sock_, &raw);
      if (err != -NLE_DUMP_INTR) break;
    }
    if (err < 0) return NlError("dump addresses", err);
    CachePtr cache(raw);
    std::vector<std::string> out;
    for (nl_object* o = nl_cache_get_first(cache.get()); o != nullptr; o = nl_cache_get_next(o)) {
      auto* a = reinterpret_cast<rtnl_addr*>(o);
      if (rtnl_addr_get_ifindex(a) != l.index || rtnl_addr_get_scope(a) != RT_SCOPE_UNIVERSE) {
        continue;
      }
      char buf[128];
      out.push_back(nl_addr2str(rtnl_addr_get_local(a), buf, sizeof(buf)));
    }
    return out;
  }

  Status CreateVlan(const std::string& name, const std::string& lower, int vlan_id,
                    int mtu) override {
    STRATA_ASSIGN_OR_RETURN(LinkInfo l, GetLink(lower));
    MsgPtr msg(nlmsg_alloc_simple(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL));
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    bool ok = nlmsg_append(msg.get(), &ifi, sizeof(ifi), NLMSG_ALIGNTO) >= 0 &&
              nla_put_string(msg.get(), IFLA_IFNAME, name.c_str()) >= 0 &&
              nla_put_u32(msg.get(), IFLA_LINK, static_cast<uint32_t>(l.index)) >= 0;
    if (ok && mtu > 0) ok = nla_put_u32(msg.get(), IFLA_MTU, static_cast<uint32_t>(mtu)) >= 0;
    nlattr* linkinfo = ok ? nla_nest_start(msg.get(), IFLA_LINKINFO) : nullptr;
    ok = linkinfo != nullptr && nla_put_string(msg.get(), IFLA_INFO_KIND, "vlan") >= 0;
    nlattr* data = ok ? nla_nest_start(msg.get(), IFLA_INFO_DATA) : nullptr;
    ok = data != nullptr &&
         nla_put_u16(msg.get(), IFLA_VLAN_ID, static_cast<uint16_t>(vlan_id)) >= 0;
    if (!ok) return InternalError("build RTM_NEWLINK for VLAN " + name);
    nla_nest_end(msg.get(), data);
    nla_nest_end(msg.get(), linkinfo);
    // A kernel without 8021q answers EOPNOTSUPP ("Operation not supported").
    return Transact(std::move(msg),
                    "create VLAN " + name + " (id " + std::to_string(vlan_id) + ") on " + lower,
                    nullptr);
  }

 private:
  static bool PutBridgeOptions(nl_msg* m, const BridgeSpec& spec) {
    return nla_put_u8(m, IFLA_BR_VLAN_FILTERING, spec.vlan_filtering ? 1 : 0) >= 0 &&
           nla_put_u32(m, IFLA_BR_STP_STATE, spec.stp ? 1 : 0) >= 0;
  }

  // An RTM_NEWLINK on link `index` carrying IFLA_LINKINFO {kind, IFLA_INFO_DATA {what `put`
  // adds}}.
  Status SetInfoData(int index, const char* kind, const std::string& what,
                     const std::function<bool(nl_msg*)>& put) {
    MsgPtr msg(nlmsg_alloc_simple(RTM_NEWLINK, 0));
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    ifi.ifi_index = index;
    bool ok = nlmsg_append(msg.get(), &ifi, sizeof(ifi), NLMSG_ALIGNTO) >= 0;
    nlattr* linkinfo = ok ? nla_nest_start(msg.get(), IFLA_LINKINFO) : nullptr;
    ok = linkinfo != nullptr && nla_put_string(msg.get(), IFLA_INFO_KIND, kind) >= 0;
    nlattr* data = ok ? nla_nest_start(msg.get(), IFLA_INFO_DATA) : nullptr;
    ok = data != nullptr && put(msg.get());
    if (!ok) return InternalError("build RTM_NEWLINK: " + what);
    nla_nest_end(msg.get(), data);
    nla_nest_end(msg.get(), linkinfo);
    return Transact(std::move(msg), what, nullptr);
  }

  // One RTM_GETLINK of link `index`; hands its IFLA_INFO_DATA (when there is one) to `on_data`.
  Status GetInfoData(int index, const std::string& what,
                     const std::function<void(nlattr*)>& on_data) {
    MsgPtr msg(nlmsg_alloc_simple(RTM_GETLINK, 0));
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    ifi.ifi_index = index;
    if (nlmsg_append(msg.get(), &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0) {
      return InternalError("build RTM_GETLINK");
    }
    return Transact(std::move(msg), what, [&](nl_msg* reply) {
      nlattr* tb[IFLA_MAX + 1] = {};
      if (nlmsg_parse(nlmsg_hdr(reply), sizeof(ifinfomsg), tb, IFLA_MAX, nullptr) < 0 ||
          tb[IFLA_LINKINFO] == nullptr) {
        return;
      }
      nlattr* li[IFLA_INFO_MAX + 1] = {};
      if (nla_parse_nested(li, IFLA_INFO_MAX, tb[IFLA_LINKINFO], nullptr) < 0 ||
          li[IFLA_INFO_DATA] == nullptr) {
        return;
      }
      on_data(li[IFLA_INFO_DATA]);
    });
  }

  Result<LinkPtr> Fetch(const std::string& name) {
    rtnl_link* raw = nullptr;
    int err = rtnl_link_get_kernel(sock_, 0, name.c_str(), &raw);
    if (err < 0) return NlError("link " + name, err);
    return LinkPtr(raw);
  }

  // Fetches `name`, lets `fill` describe the change on an empty link, applies it.
  template <typename Fill>
  Status Change(const std::string& name, const std::string& what, Fill fill) {
    STRATA_ASSIGN_OR_RETURN(LinkPtr orig, Fetch(name));
    LinkPtr change(rtnl_link_alloc());
    STRATA_RETURN_IF_ERROR(fill(change.get()));
    int err = rtnl_link_change(sock_, orig.get(), change.get(), 0);
    if (err < 0) return NlError(name + ": " + what, err);
    return Status::Ok();
  }

  // Sends a hand-built request, hands every reply message to `on_reply` (may be null) and
  // consumes the kernel's ACK, as libnl's own getters do.
  Status Transact(MsgPtr msg, const std::string& what, std::function<void(nl_msg*)> on_reply) {
    int err = nl_send_auto(sock_, msg.get());
    if (err < 0) return NlError(what, err);
    if (!on_reply) {
      err = nl_wait_for_ack(sock_);
      if (err < 0) return NlError(what, err);
      return Status::Ok();
    }
    bool got = false;
    std::function<void(nl_msg*)> wrapped = [&](nl_msg* m) {
      got = true;
      on_reply(m);
    };
    nl_cb* base = nl_socket_get_cb(sock_);  // takes a reference
    nl_cb* cb = nl_cb_clone(base);
    nl_cb_put(base);
    nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, &NlReplyTrampoline, &wrapped);
    err = nl_recvmsgs(sock_, cb);
    nl_cb_put(cb);
    if (err < 0) return NlError(what, err);
    if (got) {
      err = nl_wait_for_ack(sock_);
      if (err < 0) return NlError(what, err);
    }
    return Status::Ok();
  }

  nl_sock* sock_;
  const std::string netns_path_;
};

class LinuxNetlinkFactory final : public NetlinkFactory {
 public:
  Result<NetlinkManagerPtr> Open(const std::string& netns_path) override {
    nl_sock* sock = nl_socket_alloc();
    if (sock == nullptr) return ResourceExhaustedError("nl_socket_alloc");
    auto fail = [&](Status s) -> Result<NetlinkManagerPtr> {
      nl_socket_free(sock);
      return s;
    };
    if (netns_path.empty()) {
      int err = nl_connect(sock, NETLINK_ROUTE);
      if (err < 0) return fail(NlError("netlink connect", err));
      return NetlinkManagerPtr(std::make_unique<LinuxNetlinkManager>(sock, netns_path));
    }
    auto target_fd = OpenNetnsFd(netns_path);
    if (!target_fd.ok()) return fail(target_fd.status());
    Fd target(*target_fd);
    auto self_fd = OpenNetnsFd("");
    if (!self_fd.ok()) return fail(self_fd.status());
    Fd self(*self_fd);
    if (::setns(target.get(), CLONE_NEWNET) != 0) {
      int err = errno;
      if (err == EINVAL) {
        return fail(FailedPreconditionError(netns_path + ": not a network namespace"));
      }
      return fail(ErrnoError("setns " + netns_path, err));
    }
    // The socket belongs to the namespace the thread is in when socket(2) runs.
    int err = nl_connect(sock, NETLINK_ROUTE);
    if (::setns(self.get(), CLONE_NEWNET) != 0) {
      // Continuing in the pod's namespace would act on the wrong links: stop here.
      // stderr directly, not a logger: CNI plugins (a process per call) do not load spdlog.
      std::string line =
          std::string(program_invocation_short_name) +
          ": cannot return to the original network namespace: " + std::strerror(errno) + "\n";
      ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
      (void)ignored;
      std::abort();
    }
    if (err < 0) return fail(NlError("netlink connect in " + netns_path, err));
    return NetlinkManagerPtr(std::make_unique<LinuxNetlinkManager>(sock, netns_path));
  }
};

}  // namespace

std::unique_ptr<NetlinkFactory> NewLinuxNetlinkFactory() {
  return std::make_unique<LinuxNetlinkFactory>();
}

}  // namespace strata::net
