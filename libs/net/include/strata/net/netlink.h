#pragma once

// The kernel seam shared by strata-cni and strata-netd: every link, qdisc, VF and bond operation
// goes through a NetlinkManager bound to ONE network namespace (its netlink socket is opened
// inside that namespace, so no operation depends on which namespace the calling thread is in).
// LinuxNetlinkManager (linux_netlink.h) talks rtnetlink through libnl-route-3; FakeKernel
// (testing/fake_netlink.h, lib strata_net_testing) keeps links in memory for unit tests;
// SimulatedVfNetlinkManager (cni-plugin's sriov_sim.h) forwards everything but the PF's
// IFLA_VF_* calls, which it records in a file.
//
// Thread-safety: one instance is used by one thread at a time.
// Errors: NOT_FOUND when the named link/qdisc does not exist, so callers can make DEL idempotent.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "strata/common/result.h"

namespace strata::net {

struct LinkInfo {
  int index = 0;
  std::string name;
  std::string kind;  // "veth", "bond", "ifb", ... ; empty for physical devices
  std::string mac;   // lower-case aa:bb:..; empty when the link has no L2 address
  int mtu = 0;
  bool admin_up = false;
  bool carrier = false;
  int master_index = 0;  // 0 when not enslaved
  int peer_index = 0;    // IFLA_LINK: a veth's peer / a VLAN's lower device ifindex
  int vlan_id = 0;       // kind == "vlan": its 802.1Q id
};

// See NetlinkManager::ChangeLink. Unset fields are left as they are.
struct LinkChange {
  std::optional<std::string> netns;  // move into the namespace at this path ("": the caller's)
  std::optional<std::string> mac;
  std::optional<int> mtu;
  std::optional<std::string> name;  // rename (in the target namespace when moving)
  std::optional<bool> up;
};

struct LinkStats {
  uint64_t rx_bytes = 0, tx_bytes = 0, rx_packets = 0, tx_packets = 0;
  uint64_t rx_dropped = 0, tx_dropped = 0, rx_errors = 0, tx_errors = 0;
};

// A token bucket (tbf) root qdisc. Rates and sizes in BYTES, as the kernel keeps them.
struct TbfSpec {
  uint64_t rate_bytes_per_sec = 0;
  uint64_t burst_bytes = 0;
  uint64_t limit_bytes = 0;  // queue length before drops
  friend bool operator==(const TbfSpec&, const TbfSpec&) = default;
};

struct QdiscStats {
  uint64_t bytes = 0, packets = 0, drops = 0, overlimits = 0, backlog_bytes = 0;
};

struct RootQdisc {
  std::string kind;  // "tbf", "noqueue", ...
  uint32_t handle_major = 0;
  std::optional<TbfSpec> tbf;  // set when kind == "tbf"
  QdiscStats stats;
};

// Per-VF settings a PF applies (IFLA_VF_*). Unset optionals are left as they are.
struct VfConfig {
  std::optional<std::string> mac;
  std::optional<int> vlan;  // 0 = untagged
  std::optional<int> vlan_qos;
  std::optional<bool> spoof_check;
  std::optional<bool> trust;
  std::optional<std::string> link_state;  // "auto" | "enable" | "disable"
  std::optional<int> min_tx_rate_mbps;
  std::optional<int> max_tx_rate_mbps;
};

// A VF's current settings as the PF reports them (all fields set).
struct VfState {
  std::string mac;
  int vlan = 0, vlan_qos = 0;
  bool spoof_check = true, trust = false;
  std::string link_state = "auto";
  int min_tx_rate_mbps = 0, max_tx_rate_mbps = 0;
  friend bool operator==(const VfState&, const VfState&) = default;
};

// Bonding modes as the kernel numbers them (IFLA_BOND_MODE).
enum class BondMode {
  kBalanceRr = 0,
  kActiveBackup = 1,
  kBalanceXor = 2,
  kBroadcast = 3,
  k8023ad = 4,
  kBalanceTlb = 5,
  kBalanceAlb = 6
};

struct BondSpec {
  std::string name;
  BondMode mode = BondMode::kActiveBackup;
  int miimon_ms = 100;
  int updelay_ms = 0;
  int downdelay_ms = 0;
  std::optional<int> xmit_hash_policy;  // IFLA_BOND_XMIT_HASH_POLICY value
  std::optional<int> fail_over_mac;     // 0 none, 1 active, 2 follow
  int mtu = 0;                          // 0 = kernel default
  std::optional<int> lacp_rate;         // IFLA_BOND_AD_LACP_RATE: 0 slow, 1 fast (802.3ad)
  std::optional<int> primary_reselect;  // IFLA_BOND_PRIMARY_RESELECT: 0 always, 1 better, 2 failure
};

struct BondState {
  BondMode mode = BondMode::kActiveBackup;
  int miimon_ms = 0;
  int active_slave_index = 0;  // 0 = none (or not active-backup)
  int primary_index = 0;
  int updelay_ms = 0;
  int downdelay_ms = 0;
  int xmit_hash_policy = 0;
  int lacp_rate = 0;
  int primary_reselect = 0;
};

// A Linux bridge (IFLA_INFO_KIND "bridge").
struct BridgeSpec {
  std::string name;
  bool vlan_filtering = false;  // IFLA_BR_VLAN_FILTERING
  bool stp = false;             // IFLA_BR_STP_STATE (kernel STP)
  int mtu = 0;                  // 0 = kernel default
};

struct BridgeState {
  bool vlan_filtering = false;
  bool stp = false;
};

class NetlinkManager {
 public:
  virtual ~NetlinkManager() = default;

  // The namespace this manager works in (a path; empty = the caller's own namespace).
  virtual const std::string& netns_path() const = 0;

  virtual Result<LinkInfo> GetLink(const std::string& name) = 0;
  virtual Result<LinkInfo> GetLinkByIndex(int index) = 0;
  // A full dump, retried when the kernel flags it interrupted (NLM_F_DUMP_INTR).
  virtual Result<std::vector<LinkInfo>> ListLinks() = 0;
  virtual Result<LinkStats> GetLinkStats(const std::string& name) = 0;

  virtual Status SetLinkUp(const std::string& name, bool up) = 0;
  // REQUIRES: the link is down.
  virtual Status RenameLink(const std::string& name, const std::string& new_name) = 0;
  // Several changes to one link in ONE RTM_NEWLINK (one round trip, one rtnl_lock). The kernel
  // (do_setlink) applies them in this order and stops at the first failure, so a failed call may
  // have applied a prefix: namespace move (the link is closed first), MAC, MTU, name, up/down.
  // With a move and a name, the name is also used when the current one is taken in the target.
  virtual Status ChangeLink(const std::string& name, const LinkChange& change) = 0;
  virtual Status DeleteLink(const std::string& name) = 0;
  // An address "10.1.0.2/24" or "fd00::2/64" on the link.
  virtual Status AddAddress(const std::string& link, const std::string& cidr) = 0;
  // A route in the main table to `dst` (CIDR; "0.0.0.0/0" / "::/0" default) via `gateway`, or
  // directly on the link (scope link) when `gateway` is empty.
  virtual Status AddRoute(const std::string& link, const std::string& dst,
                          const std::string& gateway) = 0;

  // Root qdisc: `handle_major` marks ownership (Strata uses kStrataQdiscMajor). Replace changes
  // an existing qdisc with that handle in place (no traffic interruption, NLM_F_REPLACE).
  virtual Status ReplaceRootTbf(int ifindex, uint32_t handle_major, const TbfSpec& spec) = 0;
  // The device's root qdisc, one non-dump RTM_GETQDISC. A device without a qdisc of its own
  // reports the kernel's default (noqueue, pfifo_fast, mq) with handle_major 0.
  virtual Result<RootQdisc> GetRootQdisc(int ifindex) = 0;
  // Deletes the root qdisc only when it carries `handle_major`; NOT_FOUND otherwise (absent,
  // the kernel default, or someone else's), so a DEL never removes a qdisc it did not make.
  virtual Status DeleteRootQdisc(int ifindex, uint32_t handle_major) = 0;

  // SR-IOV, on the PF (which lives in this namespace).
  virtual Result<VfState> GetVf(const std::string& pf, int vf_index) = 0;
  virtual Status SetVf(const std::string& pf, int vf_index, const VfConfig& config) = 0;

  // Bonds.
  virtual Status CreateBond(const BondSpec& spec) = 0;
  // REQUIRES: `member` is down (the bonding driver refuses an up port on older kernels).
  virtual Status EnslaveLink(const std::string& member, const std::string& bond) = 0;
  virtual Status ReleaseLink(const std::string& member) = 0;
  virtual Status SetBondPrimary(const std::string& bond, const std::string& primary) = 0;
  virtual Result<BondState> GetBond(const std::string& bond) = 0;

  // Node uplinks (strata-netd). Not pure: a manager that has no use for them (the CNI's
  // simulated-VF wrapper, test doubles) need not implement them; they answer UNIMPLEMENTED.
  //
  // Changes a live bond's miimon, updelay, downdelay and, when set, xmit_hash_policy, lacp_rate
  // and primary_reselect, in one RTM_NEWLINK; not its mode or MTU. REQUIRES for lacp_rate: the
  // bond is down (the driver takes it only then).
  virtual Status SetBondOptions(const std::string& bond, const BondSpec& spec);
  // Creates a bridge, down.
  virtual Status CreateBridge(const BridgeSpec& spec);
  virtual Result<BridgeState> GetBridge(const std::string& bridge);
  // vlan_filtering and stp of an existing bridge (not its MTU).
  virtual Status SetBridgeOptions(const BridgeSpec& spec);
  // IFLA_MASTER: makes `link` a port of the bridge or bond `master`; "" releases it.
  virtual Status SetMaster(const std::string& link, const std::string& master);
  // The link's addresses ("10.0.0.5/24", "fd00::5/64") of global scope (not link-local).
  virtual Result<std::vector<std::string>> ListAddresses(const std::string& link);

  // An 802.1Q VLAN device `name` on `lower` with `vlan_id` (1..4094), one RTM_NEWLINK; `mtu` 0
  // inherits the lower device's. Created down.
  virtual Status CreateVlan(const std::string& name, const std::string& lower, int vlan_id,
                            int mtu) = 0;
};

using NetlinkManagerPtr = std::unique_ptr<NetlinkManager>;

// Opens managers per namespace. The production factory opens a netlink socket inside the namespace.
class NetlinkFactory {
 public:
  virtual ~NetlinkFactory() = default;
  // `netns_path` empty: the caller's namespace. NOT_FOUND when the path does not exist;
  // FAILED_PRECONDITION when it is not a network namespace.
  virtual Result<NetlinkManagerPtr> Open(const std::string& netns_path) = 0;
};

// "ST": the major handle of every qdisc Strata creates, so DEL removes only its own.
inline constexpr uint32_t kStrataQdiscMajor = 0x5354;

}  // namespace strata::net
