// StorageDevice objects -> the CSI controller's devices: parsing, refusals, and the watcher
// keeping a DeviceSet in step (FakeApiClient).
#include "cluster_devices.h"

#include <gtest/gtest.h>

#include "strata/kube/testing/fake_api_client.h"

namespace strata::csi {
namespace {

using kube::Json;

Json Device(const std::string& name, const std::string& endpoint) {
  return Json{{"apiVersion", "strata.io/v1alpha1"},
              {"kind", "StorageDevice"},
              {"metadata", {{"name", name}}},
              {"spec",
               {{"endpoint", endpoint},
                {"tiers", Json::array({{{"class", "ssd"}, {"capacityBytes", 1 << 30}}})}}}};
}

TEST(ClusterDeviceTest, NameAddressAndZoneFromLabelOrRegion) {
  Json o = Device("dev-a", "10.0.0.1:7000");
  o["spec"]["region"] = "eu-1";
  auto d = ClusterDeviceFromObject(o);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->name, "dev-a");
  EXPECT_EQ(d->address, "10.0.0.1:7000");
  EXPECT_EQ(d->region, "eu-1");
  EXPECT_EQ(d->zone, "eu-1");
  EXPECT_EQ(d->refusal, "");
  o["metadata"]["labels"] = {{"topology.kubernetes.io/zone", "eu-1b"}};
  EXPECT_EQ(ClusterDeviceFromObject(o)->zone, "eu-1b");
}

TEST(ClusterDeviceTest, MaintenanceAndOfflineRefuseNewVolumes) {
  Json o = Device("dev-a", "10.0.0.1:7000");
  o["spec"]["desiredState"] = "Maintenance";
  auto d = ClusterDeviceFromObject(o);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_NE(d->refusal.find("desiredState"), std::string::npos) << d->refusal;

  o = Device("dev-a", "10.0.0.1:7000");
  o["status"] = {{"phase", "Offline"}};
  d = ClusterDeviceFromObject(o);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_NE(d->refusal.find("Offline"), std::string::npos) << d->refusal;

  o["status"] = {{"phase", "Online"}};
  EXPECT_EQ(ClusterDeviceFromObject(o)->refusal, "");
}

TEST(ClusterDeviceTest, BadObjectsNameTheField) {
  Json o = Device("dev-a", "10.0.0.1:7000");
  o["spec"].erase("endpoint");
  auto d = ClusterDeviceFromObject(o);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(d.status().message().find("endpoint"), std::string::npos) << d.status().message();
}

class NamedOnly final : public DeviceClient {
 public:
  NamedOnly(std::string name, std::string address)
      : name_(std::move(name)), address_(std::move(address)) {}
  const std::string& name() const override { return name_; }
  std::string address() const override { return address_; }
  Result<storage_v1::DeviceStatus> GetDeviceStatus() override { return UnavailableError("x"); }
  Result<storage_v1::Lun> CreateLun(const storage_v1::CreateLunRequest&) override {
    return UnavailableError("x");
  }
  Status DeleteLun(const std::string&) override { return UnavailableError("x"); }
  Result<storage_v1::Lun> GetLun(const std::string&) override { return UnavailableError("x"); }
  Result<std::vector<storage_v1::Lun>> ListLuns() override { return UnavailableError("x"); }
  Result<storage_v1::Lun> ResizeLun(const std::string&, uint64_t) override {
    return UnavailableError("x");
  }
  Result<storage_v1::Lun> SetLunAccess(const std::string&,
                                       const std::vector<std::string>&) override {
    return UnavailableError("x");
  }

 private:
  const std::string name_, address_;
};

DeviceSet::Factory Named() {
  return [](const std::string& name, const std::string& address) {
    return std::make_shared<NamedOnly>(name, address);
  };
}

TEST(ClusterDeviceWatcherTest, ListedObjectsBecomeDevicesAndFixedNamesWin) {
  kube::testing::FakeApiClient api;
  api.Put(kube::resources::StorageDevices(), Device("dev-a", "10.0.0.1:7000"));
  api.Put(kube::resources::StorageDevices(), Device("fixed", "10.0.0.9:7000"));
  Json bad = Device("bad", "10.0.0.3:7000");
  bad["spec"].erase("tiers");
  api.Put(kube::resources::StorageDevices(), bad);

  DeviceSet set(Named());
  ASSERT_TRUE(
      set.AddFixed(DeviceInfo{std::make_shared<NamedOnly>("fixed", "10.0.0.2:7000"), "z1", "", ""})
          .ok());
  ClusterDeviceWatcher watcher(&api, &set);
  watcher.Start();
  ASSERT_TRUE(watcher.WaitForSync(std::chrono::seconds(10)));
  auto devices = set.Devices();
  ASSERT_EQ(devices.size(), 2u);
  EXPECT_EQ(devices[0].client->name(), "dev-a");
  EXPECT_EQ(devices[0].client->address(), "10.0.0.1:7000");
  EXPECT_EQ(devices[1].client->name(), "fixed");
  EXPECT_EQ(devices[1].client->address(), "10.0.0.2:7000");  // the --device, not the object
  watcher.Stop();
}

TEST(DeviceSetTest, UpsertKeepsTheClientUnlessTheAddressChanges) {
  DeviceSet set(Named());
  ASSERT_TRUE(set.Upsert(ClusterDevice{"a", "h:1", "z", "", ""}).ok());
  auto c1 = set.Find("a")->client;
  ASSERT_TRUE(set.Upsert(ClusterDevice{"a", "h:1", "z", "", "maintenance"}).ok());
  EXPECT_EQ(set.Find("a")->client, c1);
  EXPECT_EQ(set.Find("a")->refusal, "maintenance");
  ASSERT_TRUE(set.Upsert(ClusterDevice{"a", "h:2", "z", "", ""}).ok());
  EXPECT_NE(set.Find("a")->client, c1);
  // A known address resolves to its device; an unknown one to a client named by it.
  EXPECT_EQ(set.ForAddress("h:2")->name(), "a");
  EXPECT_EQ(set.ForAddress("h:3")->name(), "h:3");
  EXPECT_EQ(set.ForAddress("h:3"), set.ForAddress("h:3"));
  set.Remove("a");
  EXPECT_FALSE(set.Find("a").has_value());
  ASSERT_TRUE(set.AddFixed(DeviceInfo{std::make_shared<NamedOnly>("f", "h:9"), "", "", ""}).ok());
  EXPECT_EQ(set.AddFixed(DeviceInfo{std::make_shared<NamedOnly>("f", "h:9"), "", "", ""}).code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace strata::csi
