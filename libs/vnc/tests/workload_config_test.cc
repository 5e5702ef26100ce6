#include "strata/vnc/workload_config.h"

#include <gtest/gtest.h>

namespace strata::vnc {
namespace {

using nlohmann::json;

json Spec() {
  return json::parse(R"({
    "workload": {"kind": "VirtualMachine", "name": "db-vm"},
    "interfaces": [{"name": "sriov", "type": "sriov", "mac": "02:5E:10:00:00:15", "mtu": 9000,
                    "vlan": 120, "addresses": ["10.120.0.15/24", "fd00:120::15/64"],
                    "sriov": {"resourceName": "intel.com/sriov_vfio", "trust": false,
                              "spoofCheck": true}}],
    "routes": [{"destination": "10.0.0.0/8", "gateway": "10.120.0.1"},
               {"destination": "fd00::/16"}],
    "dns": {"nameservers": ["10.120.0.53"], "searches": ["db.svc.cluster.local"]}
  })");
}

WorkloadConfig Parsed(const json& spec) {
  WorkloadConfig c;
  c.workload.namespace_ = "db";
  Status s = ParseSpecInto(spec, &c);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return c;
}

TEST(WorkloadConfig, ParsesEveryFieldAndNormalizesTheMac) {
  WorkloadConfig c = Parsed(Spec());
  EXPECT_EQ(c.workload, (WorkloadKey{"db", "VirtualMachine", "db-vm"}));
  ASSERT_EQ(c.interfaces.size(), 1u);
  const InterfaceConfig& i = c.interfaces[0];
  EXPECT_EQ(i.mac, "02:5e:10:00:00:15");
  EXPECT_EQ(i.mtu, 9000);
  EXPECT_EQ(i.vlan, 120);
  EXPECT_EQ(i.addresses, (std::vector<std::string>{"10.120.0.15/24", "fd00:120::15/64"}));
  ASSERT_TRUE(i.sriov);
  EXPECT_EQ(i.sriov->resource_name, "intel.com/sriov_vfio");
  ASSERT_EQ(c.routes.size(), 2u);
  EXPECT_EQ(c.routes[1].gateway, "");
  ASSERT_TRUE(c.dns);
  EXPECT_EQ(c.dns->searches[0], "db.svc.cluster.local");
  EXPECT_EQ(c.FindInterface("sriov"), &c.interfaces[0]);
  EXPECT_EQ(c.FindInterface("net1"), nullptr);
}

TEST(WorkloadConfig, RoundTripsThroughJson) {
  WorkloadConfig c = Parsed(Spec());
  c.source = {"db", "db-vm-net", "uid-1", "1234", 3};
  auto back = WorkloadConfigFromJson(ToJson(c));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, c);
}

TEST(WorkloadConfig, BadValuesNameTheField) {
  struct Case {
    const char* pointer;
    json value;
    const char* field;
  };
  const Case cases[] = {
      {"/interfaces/0/addresses/0", "10.120.0.300/24", "spec.interfaces[0].addresses[0]"},
      {"/interfaces/0/addresses/1", "10.120.0.15/24", "spec.interfaces[0].addresses[1]"},
      {"/interfaces/0/addresses/0", "10.1.2.3/33", "spec.interfaces[0].addresses[0]"},
      {"/interfaces/0/mac", "03:00:00:00:00:01", "spec.interfaces[0].mac"},
      {"/interfaces/0/mtu", 100, "spec.interfaces[0].mtu"},
      {"/interfaces/0/vlan", 4095, "spec.interfaces[0].vlan"},
      {"/interfaces/0/bond", json{{"mode", "active-backup"}}, "spec.interfaces[0].bond"},
      {"/routes/0/gateway", "fd00::1", "spec.routes[0].gateway"},
      {"/routes/1/destination", "fd00::", "spec.routes[1].destination"},
      {"/dns/nameservers/0", "dns.example", "spec.dns.nameservers[0]"},
  };
  for (const auto& c : cases) {
    json spec = Spec();
    spec[json::json_pointer(c.pointer)] = c.value;
    WorkloadConfig config;
    Status s = ParseSpecInto(spec, &config);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.pointer;
    EXPECT_EQ(s.message().rfind(c.field, 0), 0u) << s.message();
  }
}

TEST(WorkloadConfig, NewerByRevisionThenGeneration) {
  SourceObject a{"db", "n", "u1", "100", 1};
  SourceObject b = a;
  b.resource_version = "99";
  EXPECT_TRUE(IsNewer(a, b));
  EXPECT_FALSE(IsNewer(b, a));
  EXPECT_FALSE(IsNewer(a, a));
  // Not decimal (another storage backend): the generation of the same object decides.
  SourceObject x{"db", "n", "u1", "rv-a", 2};
  SourceObject y{"db", "n", "u1", "rv-b", 1};
  EXPECT_TRUE(IsNewer(x, y));
  EXPECT_FALSE(IsNewer(y, x));
}

TEST(WorkloadConfig, CorruptRecordIsAnError) {
  json j = ToJson(Parsed(Spec()));
  j["spec"]["interfaces"][0]["mtu"] = "big";
  auto c = WorkloadConfigFromJson(j);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("spec.interfaces[0].mtu"), std::string::npos);
}

}  // namespace
}  // namespace strata::vnc
