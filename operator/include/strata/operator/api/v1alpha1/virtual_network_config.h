#pragma once

#include "strata/operator/api/v1alpha1/common.h"

namespace strata::op::api::v1alpha1 {

// VirtualNetworkConfig (namespaced): one workload's network configuration, reapplied unchanged
// on any node it moves to. Schema: charts/strata/crds/strata.io_virtualnetworkconfigs.yaml.

struct NetworkWorkload {
  std::string kind;  // Pod, VirtualMachine
  std::string name;
};

struct SriovSettings {
  std::optional<std::string> resource_name;
  bool trust = false;
  bool spoof_check = true;
};

struct BondSettings {
  std::string mode = "active-backup";  // active-backup, balance-xor, 802.3ad, balance-alb
  int64_t members = 2;                 // 2-8
  int64_t miimon_milliseconds = 100;   // 10-10000
};

struct NetworkInterface {
  std::string name;  // in the workload; IFNAMSIZ
  std::string type;  // sriov, bond
  std::optional<std::string> mac;
  int64_t mtu = 1500;  // 576-9216
  std::optional<int64_t> vlan;
  std::vector<std::string> addresses;  // CIDR
  std::optional<SriovSettings> sriov;
  std::optional<BondSettings> bond;
};

struct NetworkRoute {
  std::string destination;  // CIDR
  std::optional<std::string> gateway;
};

struct NetworkDns {
  std::vector<std::string> nameservers;
  std::vector<std::string> searches;
};

struct VirtualNetworkConfigSpec {
  NetworkWorkload workload;
  std::vector<NetworkInterface> interfaces;  // 1-16, unique by name
  std::vector<NetworkRoute> routes;
  std::optional<NetworkDns> dns;
};

struct NetworkInterfaceStatus {
  std::string name;
  std::string mac;
  std::string pci_address;
};

struct VirtualNetworkConfigStatus : ObjectStatus {
  std::string phase;  // Pending, Applied, Error
  std::string node;
  std::optional<std::string> last_applied_time;
  std::vector<NetworkInterfaceStatus> interfaces;
};

struct VirtualNetworkConfig : Object<VirtualNetworkConfigSpec, VirtualNetworkConfigStatus> {
  static constexpr std::string_view kKind = "VirtualNetworkConfig";
};

Result<VirtualNetworkConfig> VirtualNetworkConfigFromJson(const kube::Json& json);
kube::Json ToJson(const VirtualNetworkConfig& config);

}  // namespace strata::op::api::v1alpha1
