// Node uplinks on the in-memory kernel: a NodeNetworkPolicy resolved into a plan (every bad input
// named by its field, nothing changed), applied by changing only what differs (an identical live
// state makes no call at all: no flap on an agent restart), torn down to exactly what it created,
// and sampled into status and metrics (failover counted).

#include "strata/netd/uplinks.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <filesystem>
#include <fstream>

#include "strata/common/mem_env.h"
#include "strata/net/testing/fake_netlink.h"
#include "strata/netd/uplink_agent.h"

namespace strata::netd {
namespace {

using net::testing::FakeKernel;
namespace fs = std::filesystem;

api::Uplink Named(const std::string& name) {
  api::Uplink u;
  u.name = name;
  return u;
}
api::Uplink Matching(std::optional<std::string> mac, std::optional<std::string> driver,
                     std::optional<std::string> pci) {
  api::Uplink u;
  u.match = api::UplinkMatch{std::move(mac), std::move(driver), std::move(pci)};
  return u;
}

api::NodeNetworkPolicySpec Spec() {
  api::NodeNetworkPolicySpec s;
  s.bond.name = "bond0";
  s.bond.mode = "active-backup";
  s.bond.uplinks = {Named("eth1"), Named("eth2")};
  s.bond.primary = "eth1";
  s.bridge = api::UplinkBridge{"br-strata", false, false};
  return s;
}

class UplinksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kernel_.AddLink("", "eth0", "", 1500);
    kernel_.Find("", "eth0")->addresses.insert("10.0.2.15/24");  // the node's address
    kernel_.AddLink("", "eth1", "", 1500);
    kernel_.AddLink("", "eth2", "", 1500);
    auto nl = kernel_.Open("");
    ASSERT_TRUE(nl.ok());
    nl_ = std::move(*nl);
  }
  std::string ErrorOf(const api::NodeNetworkPolicySpec& spec) {
    auto plan = ResolveUplinkPlan(spec, *nl_);
    return plan.ok() ? "resolved" : plan.status().message();
  }
  Status Apply(const api::NodeNetworkPolicySpec& spec, UplinkOwnership* owned,
               std::vector<std::string>* changes = nullptr) {
    STRATA_ASSIGN_OR_RETURN(UplinkPlan plan, ResolveUplinkPlan(spec, *nl_));
    return ApplyUplinkPlan(plan, *nl_, owned, changes);
  }

  FakeKernel kernel_;
  net::NetlinkManagerPtr nl_;
};

TEST_F(UplinksTest, BuildsTheBondUnderTheBridge) {
  UplinkOwnership owned;
  ASSERT_TRUE(Apply(Spec(), &owned).ok());
  auto* bond = kernel_.Find("", "bond0");
  auto* br = kernel_.Find("", "br-strata");
  ASSERT_NE(bond, nullptr);
  ASSERT_NE(br, nullptr);
  EXPECT_EQ(bond->info.kind, "bond");
  EXPECT_EQ(bond->bond.mode, net::BondMode::kActiveBackup);
  EXPECT_EQ(bond->bond.miimon_ms, 100);
  EXPECT_EQ(bond->bond.primary_index, kernel_.Find("", "eth1")->info.index);
  EXPECT_EQ(bond->bond.primary_reselect, 0);  // always: fail-back to the primary
  EXPECT_EQ(kernel_.Find("", "eth1")->info.master_index, bond->info.index);
  EXPECT_EQ(kernel_.Find("", "eth2")->info.master_index, bond->info.index);
  EXPECT_TRUE(kernel_.Find("", "eth1")->info.admin_up);
  EXPECT_EQ(bond->info.master_index, br->info.index);
  EXPECT_TRUE(bond->info.admin_up);
  EXPECT_TRUE(br->info.admin_up);
  EXPECT_EQ(kernel_.Find("", "eth0")->info.master_index, 0) << "the node's own link untouched";
  EXPECT_EQ(owned.bond, "bond0");
  EXPECT_TRUE(owned.created_bond);
  EXPECT_EQ(owned.enslaved, (std::vector<std::string>{"eth1", "eth2"}));
  EXPECT_EQ(owned.bridge, "br-strata");
  EXPECT_TRUE(owned.created_bridge);
}

TEST_F(UplinksTest, AConvergedStateIsLeftAlone) {
  UplinkOwnership owned;
  ASSERT_TRUE(Apply(Spec(), &owned).ok());
  const int calls = kernel_.TotalCalls();
  std::vector<std::string> changes;
  ASSERT_TRUE(Apply(Spec(), &owned, &changes).ok());
  EXPECT_EQ(kernel_.TotalCalls(), calls) << "no netlink change for an identical state";
  EXPECT_TRUE(changes.empty()) << changes[0];
  // An agent with no record (its state dir lost) adopts the identical live state, also without
  // a change.
  UplinkOwnership fresh;
  ASSERT_TRUE(Apply(Spec(), &fresh, &changes).ok());
  EXPECT_EQ(kernel_.TotalCalls(), calls);
}

TEST_F(UplinksTest, ChangesOnlyWhatDiffers) {
  UplinkOwnership owned;
  ASSERT_TRUE(Apply(Spec(), &owned).ok());
  kernel_.calls.clear();
  auto spec = Spec();
  spec.bond.miimon_milliseconds = 50;
  spec.bond.updelay_milliseconds = 100;
  spec.bridge->stp = true;
  std::vector<std::string> changes;
  ASSERT_TRUE(Apply(spec, &owned, &changes).ok());
  EXPECT_EQ(kernel_.calls,
            (std::map<std::string, int>{{"SetBondOptions", 1}, {"SetBridgeOptions", 1}}));
  EXPECT_EQ(kernel_.Find("", "bond0")->bond.miimon_ms, 50);
  EXPECT_EQ(kernel_.Find("", "bond0")->bond.updelay_ms, 100);
  EXPECT_TRUE(kernel_.Find("", "br-strata")->bridge.stp);

  // Drift: someone released eth2 by hand; the next apply puts exactly it back.
  kernel_.Find("", "eth2")->info.master_index = 0;
  kernel_.Find("", "eth2")->info.admin_up = false;
  kernel_.calls.clear();
  ASSERT_TRUE(Apply(spec, &owned).ok());
  EXPECT_EQ(kernel_.calls, (std::map<std::string, int>{{"EnslaveLink", 1}, {"SetLinkUp", 2}}));
}

TEST_F(UplinksTest, AModeChangeRebuildsTheBond) {
  UplinkOwnership owned;
  ASSERT_TRUE(Apply(Spec(), &owned).ok());
  auto spec = Spec();
  spec.bond.mode = "802.3ad";
  spec.bond.primary.reset();
  spec.bond.lacp_rate = "fast";
  spec.bond.xmit_hash_policy = "layer3+4";
  std::vector<std::string> changes;
  ASSERT_TRUE(Apply(spec, &owned, &changes).ok());
  auto* bond = kernel_.Find("", "bond0");
  EXPECT_EQ(bond->bond.mode, net::BondMode::k8023ad);
  EXPECT_EQ(bond->bond.lacp_rate, 1);
  EXPECT_EQ(bond->bond.xmit_hash_policy, 1);
  EXPECT_EQ(kernel_.Find("", "eth1")->info.master_index, bond->info.index);
  EXPECT_EQ(bond->info.master_index, kernel_.Find("", "br-strata")->info.index);
  ASSERT_FALSE(changes.empty());
  EXPECT_NE(changes[0].find("to change its mode from active-backup to 802.3ad"), std::string::npos);

  // lacp_rate only changes on a bond that is down: the apply takes it down and up again.
  spec.bond.lacp_rate = "slow";
  ASSERT_TRUE(Apply(spec, &owned).ok());
  EXPECT_EQ(kernel_.Find("", "bond0")->bond.lacp_rate, 0);
  EXPECT_TRUE(kernel_.Find("", "bond0")->info.admin_up);
}

TEST_F(UplinksTest, BadInputNamesTheFieldAndChangesNothing) {
  auto spec = Spec();
  spec.bond.uplinks[1].name = "eth9";
  EXPECT_EQ(ErrorOf(spec), "spec.bond.uplinks[1].name: eth9 does not exist on this node");
  spec = Spec();
  spec.bond.uplinks[0].name = "eth0";
  spec.bond.primary = "eth0";
  EXPECT_EQ(ErrorOf(spec),
            "spec.bond.uplinks[0]: eth0 carries address 10.0.2.15/24; uplinks must not carry "
            "addresses (enslaving drops them, and the node may lose its connectivity)");
  spec = Spec();
  spec.bond.xmit_hash_policy = "layer3+4";
  EXPECT_EQ(ErrorOf(spec),
            "spec.bond.xmitHashPolicy: applies to balance-xor, 802.3ad and balance-tlb, not "
            "active-backup");
  spec = Spec();
  spec.bond.primary = "eth3";
  EXPECT_EQ(ErrorOf(spec), "spec.bond.primary: 'eth3' is not one of the links");
  spec = Spec();
  spec.bond.mode = "balance-xor";
  EXPECT_EQ(ErrorOf(spec), "spec.bond.primary: applies to active-backup only");
  spec = Spec();
  spec.bond.updelay_milliseconds = 150;
  EXPECT_EQ(ErrorOf(spec),
            "spec.bond.updelayMilliseconds: 150 ms is not a multiple of miimon 100 ms");
  spec = Spec();
  spec.bond.mode = "balance-tlb";
  spec.bond.primary.reset();
  spec.bond.lacp_rate = "fast";
  EXPECT_EQ(ErrorOf(spec), "spec.bond.lacpRate: applies to 802.3ad only, not balance-tlb");
  spec = Spec();
  spec.bond.uplinks.pop_back();
  EXPECT_EQ(ErrorOf(spec), "spec.bond.uplinks: a bond needs at least 2 links, got 1");
  spec = Spec();
  spec.bond.uplinks.push_back(Named("eth1"));
  EXPECT_EQ(ErrorOf(spec), "spec.bond.uplinks: 'eth1' is listed twice");
  spec = Spec();
  spec.bridge->name = "bond0";
  EXPECT_EQ(ErrorOf(spec), "spec.bridge.name: bond0 is also the bond's name");
  spec = Spec();
  spec.bridge->name = "eth0";
  EXPECT_EQ(ErrorOf(spec), "spec.bridge.name: eth0 exists on this node and is not a bridge");
  kernel_.AddLink("", "team0", "bond");
  kernel_.Find("", "eth2")->info.master_index = kernel_.Find("", "team0")->info.index;
  EXPECT_EQ(ErrorOf(Spec()), "spec.bond.uplinks[1]: eth2 is already a port of team0");
  EXPECT_EQ(kernel_.TotalCalls(), 0) << "nothing is changed for a policy that does not resolve";
}

TEST_F(UplinksTest, MatchesByMacDriverAndPciAddress) {
  // A laid-out sysfs: eth1 and eth2 are ports of one ixgbe card, eth0 is virtio.
  const fs::path root = fs::path(::testing::TempDir()) / "uplinks-sysfs";
  fs::remove_all(root);
  const auto dev = [&](const std::string& ifname, const std::string& pci, const std::string& drv) {
    const fs::path pci_dir = root / "devices" / "pci0000:00" / pci;
    fs::create_directories(pci_dir);
    fs::create_directories(root / "bus" / "pci" / "drivers" / drv);
    fs::create_symlink(root / "bus" / "pci" / "drivers" / drv, pci_dir / "driver");
    fs::create_directories(root / "class" / "net" / ifname);
    fs::create_symlink(pci_dir, root / "class" / "net" / ifname / "device");
  };
  dev("eth0", "0000:00:03.0", "virtio-pci");
  dev("eth1", "0000:3b:00.0", "ixgbe");
  dev("eth2", "0000:3b:00.1", "ixgbe");
  auto spec = Spec();
  spec.bond.uplinks = {Matching(std::nullopt, "ixgbe", std::nullopt)};
  auto plan = ResolveUplinkPlan(spec, *nl_, {.sysfs_root = root.string()});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->uplinks, (std::vector<std::string>{"eth1", "eth2"}));

  spec.bond.uplinks = {Matching(std::nullopt, std::nullopt, "0000:3b:00.[01]")};
  plan = ResolveUplinkPlan(spec, *nl_, {.sysfs_root = root.string()});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->uplinks, (std::vector<std::string>{"eth1", "eth2"}));

  const std::string mac1 = kernel_.Find("", "eth1")->info.mac;
  spec.bond.uplinks = {Matching(mac1, std::nullopt, std::nullopt), Named("eth2")};
  plan = ResolveUplinkPlan(spec, *nl_, {.sysfs_root = root.string()});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->uplinks, (std::vector<std::string>{"eth1", "eth2"}));

  spec.bond.uplinks = {Matching(std::nullopt, "mlx5_core", std::nullopt), Named("eth2")};
  plan = ResolveUplinkPlan(spec, *nl_, {.sysfs_root = root.string()});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().message(),
            "spec.bond.uplinks[0].match: matches no interface on this node");
  fs::remove_all(root);
}

TEST_F(UplinksTest, TeardownRemovesOnlyWhatItCreated) {
  // The bridge exists before the policy (someone else's): it is used, and kept at teardown.
  net::BridgeSpec existing;
  existing.name = "br-strata";
  ASSERT_TRUE(nl_->CreateBridge(existing).ok());
  UplinkOwnership owned;
  ASSERT_TRUE(Apply(Spec(), &owned).ok());
  EXPECT_FALSE(owned.created_bridge);
  ASSERT_TRUE(TeardownUplinks(owned, *nl_).ok());
  EXPECT_EQ(kernel_.Find("", "bond0"), nullptr);
  ASSERT_NE(kernel_.Find("", "br-strata"), nullptr);
  EXPECT_EQ(kernel_.Find("", "eth1")->info.master_index, 0);
  EXPECT_TRUE(kernel_.Find("", "eth1")->info.admin_up);
  EXPECT_EQ(kernel_.Find("", "eth2")->info.master_index, 0);
  // Again: all gone already is fine.
  EXPECT_TRUE(TeardownUplinks(owned, *nl_).ok());
}

std::string Scrape(prometheus::Registry& registry) {
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

TEST_F(UplinksTest, AgentKeepsStateAcrossRestartsAndCountsFailovers) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirectories("/state").ok());
  kube::FakeClock clock;
  auto registry = std::make_shared<prometheus::Registry>();
  {
    UplinkAgent agent(&kernel_, &env, "/state/uplinks.json", registry, &clock);
    ASSERT_TRUE(agent.Start().ok());
    ASSERT_TRUE(agent.Apply("nnp-a", "uid-1", Spec()).ok());
  }
  // A restarted agent: the same policy changes nothing; the record says what to remove.
  const int calls = kernel_.TotalCalls();
  auto registry2 = std::make_shared<prometheus::Registry>();
  UplinkAgent agent(&kernel_, &env, "/state/uplinks.json", registry2, &clock);
  ASSERT_TRUE(agent.Start().ok());
  EXPECT_EQ(agent.Owned(), std::vector<std::string>{"nnp-a"});
  ASSERT_TRUE(agent.Apply("nnp-a", "uid-1", Spec()).ok());
  EXPECT_EQ(kernel_.TotalCalls(), calls);

  auto* eth1 = kernel_.Find("", "eth1");
  auto* eth2 = kernel_.Find("", "eth2");
  eth1->info.carrier = eth2->info.carrier = true;
  EXPECT_EQ(agent.Sample(), std::vector<std::string>{"nnp-a"});
  EXPECT_TRUE(agent.Sample().empty()) << "nothing changed";
  auto st = agent.Observed("nnp-a");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->active_slave, "eth1");
  EXPECT_EQ(st->failovers, 0);
  EXPECT_EQ(st->uplinks[0].link_state, "up");

  // eth1 loses carrier; the driver makes eth2 active.
  eth1->info.carrier = false;
  kernel_.Find("", "bond0")->bond.active_slave_index = eth2->info.index;
  EXPECT_EQ(agent.Sample(), std::vector<std::string>{"nnp-a"});
  st = agent.Observed("nnp-a");
  EXPECT_EQ(st->active_slave, "eth2");
  EXPECT_EQ(st->failovers, 1);
  EXPECT_TRUE(st->last_failover_time.has_value());
  EXPECT_EQ(st->uplinks[0].link_state, "down");
  const std::string metrics = Scrape(*registry2);
  EXPECT_NE(metrics.find("strata_netd_uplink_up{bond=\"bond0\",slave=\"eth1\"} 0"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("strata_netd_bond_active_slave{bond=\"bond0\",slave=\"eth2\"} 1"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("strata_netd_bond_failovers_total{bond=\"bond0\"} 1"), std::string::npos)
      << metrics;

  ASSERT_TRUE(agent.Remove("nnp-a").ok());
  EXPECT_EQ(kernel_.Find("", "bond0"), nullptr);
  EXPECT_EQ(kernel_.Find("", "br-strata"), nullptr);
  EXPECT_TRUE(agent.Owned().empty());
  EXPECT_EQ(Scrape(*registry2).find("slave=\"eth1\""), std::string::npos) << "series removed";
  auto saved = env.ReadFile("/state/uplinks.json");
  ASSERT_TRUE(saved.ok());
  EXPECT_NE(saved->find("\"policies\": {}"), std::string::npos) << *saved;
}

TEST_F(UplinksTest, ACorruptStateFileIsRefused) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirectories("/state").ok());
  ASSERT_TRUE(env.WriteFileAtomically("/state/uplinks.json", "{not json").ok());
  kube::FakeClock clock;
  UplinkAgent agent(&kernel_, &env, "/state/uplinks.json", std::make_shared<prometheus::Registry>(),
                    &clock);
  Status s = agent.Start();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("/state/uplinks.json"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace strata::netd
