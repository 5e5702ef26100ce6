#pragma once

// One workload's network configuration as the node-local store keeps it: what a
// VirtualNetworkConfig (strata.io/v1alpha1) says, plus where it came from (the object's uid,
// resourceVersion and generation), so a stale write never replaces a newer one.
//
// The record is JSON (one file per workload, node_store.h). Its `spec` uses the CRD's field names
// and already carries the CRD's defaults (mtu 1500, bond mode active-backup, ...): the agent
// writes it from the decoded object, the CNI reads it without knowing the schema's defaults.
// Value types; thread-compatible.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "strata/common/result.h"

namespace strata::vnc {

inline constexpr std::string_view kKindPod = "Pod";
inline constexpr std::string_view kKindVirtualMachine = "VirtualMachine";

// What a configuration belongs to: a KubeVirt VirtualMachine by name, or a pod workload by name
// (a pod of that name, or pods labelled strata.io/workload=<name>), in one namespace.
struct WorkloadKey {
  std::string namespace_;
  std::string kind;  // kKindPod, kKindVirtualMachine
  std::string name;

  // "NAMESPACE/KIND/NAME", for logs and status messages.
  std::string ToString() const;
  friend bool operator==(const WorkloadKey&, const WorkloadKey&) = default;
  friend auto operator<=>(const WorkloadKey&, const WorkloadKey&) = default;
};

// INVALID_ARGUMENT naming `field` unless namespace is a DNS-1123 label, kind one of the two and
// name a DNS-1123 subdomain (what the CRD and the API admit).
Status ValidateWorkloadKey(const WorkloadKey& key, std::string_view field);

struct SriovConfig {
  std::string resource_name;  // may be empty
  bool trust = false;
  bool spoof_check = true;
  friend bool operator==(const SriovConfig&, const SriovConfig&) = default;
};

struct BondConfig {
  std::string mode = "active-backup";
  int members = 2;
  int miimon_ms = 100;
  friend bool operator==(const BondConfig&, const BondConfig&) = default;
};

struct InterfaceConfig {
  std::string name;  // the interface's name in the workload (the VM's interface name)
  std::string type;  // sriov, bond
  std::string mac;   // lower case; empty: keep whatever the attachment has
  int mtu = 1500;
  std::optional<int> vlan;             // 0..4094; 0 = untagged
  std::vector<std::string> addresses;  // CIDR, "10.1.2.3/24"
  std::optional<SriovConfig> sriov;
  std::optional<BondConfig> bond;
  friend bool operator==(const InterfaceConfig&, const InterfaceConfig&) = default;
};

struct RouteConfig {
  std::string destination;  // CIDR
  std::string gateway;      // empty: on-link
  friend bool operator==(const RouteConfig&, const RouteConfig&) = default;
};

struct DnsConfig {
  std::vector<std::string> nameservers;
  std::vector<std::string> searches;
  friend bool operator==(const DnsConfig&, const DnsConfig&) = default;
};

// The VirtualNetworkConfig object the record was made from.
struct SourceObject {
  std::string namespace_;
  std::string name;
  std::string uid;
  std::string resource_version;
  int64_t generation = 0;
  friend bool operator==(const SourceObject&, const SourceObject&) = default;
};

struct WorkloadConfig {
  WorkloadKey workload;
  SourceObject source;
  std::vector<InterfaceConfig> interfaces;
  std::vector<RouteConfig> routes;
  std::optional<DnsConfig> dns;
  friend bool operator==(const WorkloadConfig&, const WorkloadConfig&) = default;

  // The interface named `name`, or null.
  const InterfaceConfig* FindInterface(std::string_view name) const;
};

// The spec part: a VirtualNetworkConfig's `spec` (CRD field names, defaults applied) -> config.
// Checks what the schema cannot: addresses and gateways parse as IPv4/IPv6 (octets <= 255, prefix
// within the family), a route's gateway has its destination's family, `bond` only on type bond,
// `sriov` only on type sriov, unique addresses. INVALID_ARGUMENT naming the JSON path
// ("spec.interfaces[0].addresses[1]: ...").
Status ParseSpecInto(const nlohmann::json& spec, WorkloadConfig* config);

// The store record <-> JSON. FromJson is strict about types (a corrupt record is an error naming
// the field, never a half-read config).
nlohmann::json ToJson(const WorkloadConfig& config);
Result<WorkloadConfig> WorkloadConfigFromJson(const nlohmann::json& json);

// Whether a record made from `candidate` should replace one made from `stored`: resourceVersions
// compare as the etcd revisions they are (decimal integers, monotonic across the cluster; the API
// calls them opaque, so anything else falls back to the generation when the uid is the same, and
// to "replace" otherwise). Equal versions: false (nothing to write).
bool IsNewer(const SourceObject& candidate, const SourceObject& stored);

// An IP address (no prefix) or CIDR checked and normalized ("10.1.2.3", "fd00::1/64").
// `family` gets 4 or 6. INVALID_ARGUMENT naming `field`.
Status CheckIp(std::string_view text, std::string_view field, int* family);
Status CheckCidr(std::string_view text, std::string_view field, int* family);

}  // namespace strata::vnc
