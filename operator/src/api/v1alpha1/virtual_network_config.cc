#include "strata/operator/api/v1alpha1/virtual_network_config.h"

#include "field_io.h"

namespace strata::op::api::v1alpha1 {

constexpr std::string_view kWorkloadKinds[] = {"Pod", "VirtualMachine"};
constexpr std::string_view kInterfaceTypes[] = {"sriov", "bond"};
constexpr std::string_view kBondModes[] = {"active-backup", "balance-xor", "802.3ad",
                                           "balance-alb"};
constexpr std::string_view kNetworkPhases[] = {"Pending", "Applied", "Error"};
constexpr const char* kCidrPattern =
    "^([0-9]{1,3}(\\.[0-9]{1,3}){3}/[0-9]{1,2}|[0-9A-Fa-f:]+/[0-9]{1,3})$";
constexpr const char* kIpPattern = "^([0-9]{1,3}(\\.[0-9]{1,3}){3}|[0-9A-Fa-f:]+)$";
constexpr Rule kCidrRule{.pattern = kCidrPattern};
constexpr Rule kIpRule{.pattern = kIpPattern};
constexpr Rule kSearchRule{.max_length = 253};

void Fields(auto& io, Is<NetworkWorkload> auto& w) {
  io.Field("kind", w.kind, {.required = true, .one_of = kWorkloadKinds});
  io.Field("name", w.name,
           {.required = true, .pattern = "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", .max_length = 253});
}

void Fields(auto& io, Is<SriovSettings> auto& s) {
  io.Field("resourceName", s.resource_name, {.max_length = 253});
  io.Field("trust", s.trust);
  io.Field("spoofCheck", s.spoof_check);
}

void Fields(auto& io, Is<BondSettings> auto& b) {
  io.Field("mode", b.mode, {.one_of = kBondModes});
  io.Field("members", b.members, {.minimum = 2, .maximum = 8});
  io.Field("miimonMilliseconds", b.miimon_milliseconds, {.minimum = 10, .maximum = 10000});
}

void Fields(auto& io, Is<NetworkInterface> auto& i) {
  io.Field("name", i.name, {.required = true, .pattern = "^[a-z][a-z0-9]{0,14}$"});
  io.Field("type", i.type, {.required = true, .one_of = kInterfaceTypes});
  io.Field("mac", i.mac, {.pattern = "^[0-9a-f][02468ace](:[0-9a-f]{2}){5}$"});
  io.Field("mtu", i.mtu, {.minimum = 576, .maximum = 9216});
  io.Field("vlan", i.vlan, {.minimum = 0, .maximum = 4094});
  io.Field("addresses", i.addresses, {.max_items = 8, .set = true, .items = &kCidrRule});
  io.Field("sriov", i.sriov);
  io.Field("bond", i.bond);
}

void Fields(auto& io, Is<NetworkRoute> auto& r) {
  io.Field("destination", r.destination, {.required = true, .pattern = kCidrPattern});
  io.Field("gateway", r.gateway, kIpRule);
}

void Fields(auto& io, Is<NetworkDns> auto& d) {
  io.Field("nameservers", d.nameservers, {.max_items = 3, .items = &kIpRule});
  io.Field("searches", d.searches, {.max_items = 6, .items = &kSearchRule});
}

void Fields(auto& io, Is<VirtualNetworkConfigSpec> auto& s) {
  io.Field("workload", s.workload, {.required = true});
  io.Field("interfaces", s.interfaces,
           {.required = true, .min_items = 1, .max_items = 16, .map_key = "name"});
  io.Field("routes", s.routes, {.max_items = 64});
  io.Field("dns", s.dns);
}

void Fields(auto& io, Is<NetworkInterfaceStatus> auto& i) {
  io.Field("name", i.name, {.required = true});
  io.Field("mac", i.mac);
  io.Field("pciAddress", i.pci_address);
}

void Fields(auto& io, Is<VirtualNetworkConfigStatus> auto& s) {
  io.Field("phase", s.phase, {.one_of = kNetworkPhases});
  io.Field("node", s.node);
  io.Field("lastAppliedTime", s.last_applied_time, {.format = Format::kDateTime});
  io.Field("interfaces", s.interfaces, {.map_key = "name"});
  ObjectStatusFields(io, s);
}

Result<VirtualNetworkConfig> VirtualNetworkConfigFromJson(const kube::Json& json) {
  return ObjectFromJson<VirtualNetworkConfig>(json);
}
kube::Json ToJson(const VirtualNetworkConfig& config) { return ObjectToJson(config); }

}  // namespace strata::op::api::v1alpha1
