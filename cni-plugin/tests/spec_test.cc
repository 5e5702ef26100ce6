#include "strata/cni/spec.h"

#include <gtest/gtest.h>

#include "strata/cni/netconf.h"
#include "test_util.h"

namespace strata::cni {
namespace {

using nlohmann::json;
using testing::Invoke;
using testing::TempDir;

TEST(SpecVersion, ParsesSupportedAndRejectsOthers) {
  EXPECT_EQ(*ParseVersion("0.3.1"), SpecVersion::k0_3_1);
  EXPECT_EQ(*ParseVersion("1.1.0"), SpecVersion::k1_1_0);
  auto bad = ParseVersion("0.2.0");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(ToCniError(bad.status()).code, ErrorCode::kIncompatibleVersion);
  EXPECT_NE(bad.status().message().find("1.1.0"), std::string::npos);
}

TEST(ConvertResult, AddsAndDropsIpVersionAndNewFields) {
  json r = {{"cniVersion", "1.1.0"},
            {"interfaces", {{{"name", "eth0"}, {"mtu", 1500}, {"pciID", "0000:03:02.0"}}}},
            {"ips", {{{"address", "10.0.0.2/24"}, {"interface", 0}}, {{"address", "fd00::2/64"}}}},
            {"routes", {{{"dst", "0.0.0.0/0"}, {"mtu", 1400}}}},
            {"dns", {{"nameservers", {"10.0.0.1"}}}}};
  auto old = ConvertResult(r, SpecVersion::k0_3_1, "prevResult");
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_EQ((*old)["cniVersion"], "0.3.1");
  EXPECT_EQ((*old)["ips"][0]["version"], "4");
  EXPECT_EQ((*old)["ips"][1]["version"], "6");
  EXPECT_FALSE((*old)["interfaces"][0].contains("mtu"));
  EXPECT_FALSE((*old)["interfaces"][0].contains("pciID"));
  EXPECT_FALSE((*old)["routes"][0].contains("mtu"));
  EXPECT_EQ((*old)["dns"], r["dns"]);
  auto back = ConvertResult(*old, SpecVersion::k1_0_0, "prevResult");
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE((*back)["ips"][0].contains("version"));
  auto v11 = ConvertResult(r, SpecVersion::k1_1_0, "prevResult");
  EXPECT_EQ((*v11)["interfaces"][0]["pciID"], "0000:03:02.0");
}

TEST(ConvertResult, RejectsMalformedResults) {
  EXPECT_FALSE(ConvertResult(json::array(), SpecVersion::k1_0_0, "prevResult").ok());
  auto s = ConvertResult(json{{"interfaces", "eth0"}}, SpecVersion::k1_0_0, "prevResult");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(), "prevResult: interfaces: must be an array");
  EXPECT_FALSE(ConvertResult(json{{"ips", {{{"interface", 0}}}}}, SpecVersion::k1_0_0, "p").ok());
}

TEST(ParseNetConf, RequiresTypedCommonFields) {
  struct Case {
    json conf;
    ErrorCode code;
    std::string msg;
  };
  std::vector<Case> cases = {
      {json{{"name", "n"}, {"type", "t"}}, ErrorCode::kInvalidNetworkConfig,
       "cniVersion: required"},
      {json{{"cniVersion", 1}, {"name", "n"}, {"type", "t"}}, ErrorCode::kInvalidNetworkConfig,
       "cniVersion: must be a string"},
      {json{{"cniVersion", "9.9.9"}, {"name", "n"}, {"type", "t"}}, ErrorCode::kIncompatibleVersion,
       "cniVersion: '9.9.9' is not supported"},
      {json{{"cniVersion", "1.0.0"}, {"type", "t"}}, ErrorCode::kInvalidNetworkConfig,
       "name: required"},
      {json{{"cniVersion", "1.0.0"}, {"name", "n"}, {"type", "t"}, {"runtimeConfig", 3}},
       ErrorCode::kInvalidNetworkConfig, "runtimeConfig: must be an object"},
  };
  for (const auto& c : cases) {
    auto r = ParseNetConf(c.conf);
    ASSERT_FALSE(r.ok()) << c.conf.dump();
    CniError e = ToCniError(r.status());
    EXPECT_EQ(e.code, c.code) << c.conf.dump();
    EXPECT_EQ(e.msg.rfind(c.msg, 0), 0u) << e.msg;
  }
}

TEST(ParseCniArgs, ChecksEnvironmentPerCommand) {
  auto no_netns =
      ParseCniArgs({{"CNI_COMMAND", "ADD"}, {"CNI_CONTAINERID", "c"}, {"CNI_IFNAME", "eth0"}});
  ASSERT_FALSE(no_netns.ok());
  EXPECT_EQ(no_netns.status().message(), "CNI_NETNS: not set");
  auto del =
      ParseCniArgs({{"CNI_COMMAND", "DEL"}, {"CNI_CONTAINERID", "c"}, {"CNI_IFNAME", "eth0"}});
  EXPECT_TRUE(del.ok());  // the sandbox may be gone
  EXPECT_FALSE(ParseCniArgs({{"CNI_COMMAND", "FROB"}}).ok());
  auto bad_if =
      ParseCniArgs({{"CNI_COMMAND", "DEL"}, {"CNI_CONTAINERID", "c"}, {"CNI_IFNAME", "a/b"}});
  ASSERT_FALSE(bad_if.ok());
  EXPECT_EQ(ToCniError(bad_if.status()).code, ErrorCode::kInvalidEnvironment);
  EXPECT_TRUE(ParseCniArgs({{"CNI_COMMAND", "GC"}}).ok());
}

class RecordingPlugin final : public Plugin {
 public:
  Result<json> Add(const CmdContext& ctx) override {
    ++adds;
    return ctx.conf.prev_result.value_or(json::object());
  }
  Status Del(const CmdContext&) override {
    ++dels;
    return Status::Ok();
  }
  Status Check(const CmdContext&) override { return Status::Ok(); }
  Status Gc(const CmdContext&) override { return Status::Ok(); }
  Status Ready(const CmdContext&) override { return UnavailableError("not today"); }
  int adds = 0, dels = 0;
};

TEST(Skeleton, VersionReportsEverySupportedVersion) {
  RecordingPlugin p;
  auto inv = Invoke(p, "VERSION", json{{"cniVersion", "0.4.0"}}, "");
  EXPECT_EQ(inv.rc, 0);
  EXPECT_EQ(inv.out["cniVersion"], "0.4.0");
  EXPECT_EQ(inv.out["supportedVersions"], json({"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}));
}

TEST(Skeleton, MapsBadInputToSpecCodes) {
  RecordingPlugin p;
  TempDir ns;
  std::string out;
  int rc = RunPlugin(p,
                     {{"CNI_COMMAND", "ADD"},
                      {"CNI_CONTAINERID", "c"},
                      {"CNI_NETNS", ns.path()},
                      {"CNI_IFNAME", "eth0"}},
                     "{not json", &out);
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(json::parse(out)["code"], 6);

  json conf = {{"cniVersion", "0.3.1"}, {"name", "n"}, {"type", "t"}};
  auto check = Invoke(p, "CHECK", conf, ns.path());
  EXPECT_EQ(check.out["code"], 1);
  EXPECT_EQ(check.out["msg"], "config version 0.3.1 does not allow CHECK");
  conf["cniVersion"] = "1.0.0";
  EXPECT_EQ(Invoke(p, "GC", conf, "").out["code"], 1);
  EXPECT_EQ(Invoke(p, "ADD", conf, "/nonexistent/netns").out["code"], 4);
  conf["cniVersion"] = "1.1.0";
  auto status = Invoke(p, "STATUS", conf, "");
  EXPECT_EQ(status.out["code"], 50);
  EXPECT_EQ(p.adds, 0);
}

TEST(Skeleton, AddOutputsResultInTheConfigVersion) {
  RecordingPlugin p;
  TempDir ns;
  json conf = {{"cniVersion", "0.4.0"},
               {"name", "n"},
               {"type", "t"},
               {"prevResult",
                {{"cniVersion", "0.4.0"},
                 {"interfaces", {{{"name", "eth0"}, {"sandbox", ns.path()}}}},
                 {"ips", {{{"version", "4"}, {"address", "10.1.0.5/24"}, {"interface", 0}}}}}}};
  auto inv = Invoke(p, "ADD", conf, ns.path());
  ASSERT_EQ(inv.rc, 0) << inv.out.dump();
  EXPECT_EQ(inv.out["cniVersion"], "0.4.0");
  EXPECT_EQ(inv.out["ips"][0]["version"], "4");
  conf["cniVersion"] = "1.0.0";
  inv = Invoke(p, "ADD", conf, ns.path());
  EXPECT_EQ(inv.out["cniVersion"], "1.0.0");
  EXPECT_FALSE(inv.out["ips"][0].contains("version"));
}

}  // namespace
}  // namespace strata::cni
