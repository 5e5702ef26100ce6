#include "strata/operator/volume_inventory.h"

#include <gtest/gtest.h>

#include "strata/device/testing/fake_client.h"
#include "strata/kube/store.h"

namespace strata::op {
namespace {

using kube::Json;
namespace pb = storage::v1;

Json Device(const std::string& name, const std::string& endpoint, const std::string& desired) {
  return {{"apiVersion", "strata.io/v1alpha1"},
          {"kind", "StorageDevice"},
          {"metadata", {{"name", name}, {"resourceVersion", "1"}, {"labels", {{"rack", "r1"}}}}},
          {"spec",
           {{"endpoint", endpoint},
            {"region", "eu-west-1"},
            {"jurisdiction", "EU"},
            {"desiredState", desired},
            {"tiers",
             {{{"class", "ssd"}, {"capacityBytes", 1 << 30}, {"pricePerGiBHour", 0.5}},
              {{"class", "sata"}, {"capacityBytes", 1 << 30}}}}}}};
}

pb::Lun Lun(const std::string& name, const std::string& ns, const std::string& pvc,
            pb::TierClass tier = pb::TIER_CLASS_SATA) {
  pb::Lun l;
  l.set_name(name);
  l.set_size_bytes(1 << 20);
  l.set_tier(tier);
  if (!pvc.empty()) {
    (*l.mutable_metadata())[kPvcNameKey] = pvc;
    (*l.mutable_metadata())[kPvcNamespaceKey] = ns;
  }
  return l;
}

void AddTiers(device::testing::FakeClient& d) {
  d.MutateStatus([](pb::DeviceStatus& s) {
    auto* ssd = s.add_tiers();
    ssd->set_class_(pb::TIER_CLASS_SSD);
    ssd->set_capacity_bytes(1000);
    ssd->set_used_bytes(400);
    ssd->set_healthy(true);
    auto* sata = s.add_tiers();
    sata->set_class_(pb::TIER_CLASS_SATA);
    sata->set_capacity_bytes(1000);
    sata->set_used_bytes(1000);
    sata->set_healthy(true);
  });
}

TEST(VolumeInventoryTest, SweepsDevicesLunsOwnersAndStats) {
  kube::Store store;
  store.Upsert(Device("a", "a:1", "Online"));
  store.Upsert(Device("b", "b:1", "Maintenance"));
  device::testing::FakeFleet fleet;
  AddTiers(*fleet.Get("a:1"));
  fleet.Get("a:1")->PutLun(Lun("pvc-1", "db", "data"));
  fleet.Get("a:1")->PutLun(Lun("scratch", "", ""));
  pb::LunStats st;
  st.mutable_read()->set_iops(1234);
  st.set_idle_seconds(7);
  fleet.Get("a:1")->SetStats("pvc-1", st);
  VolumeInventory inv(&store, fleet.cache(), {});
  int listened = 0;
  inv.AddListener([&](const InventorySnapshot& prev, const InventorySnapshot& cur) {
    EXPECT_EQ(prev.sweep + 1, cur.sweep);
    ++listened;
  });
  auto snap = inv.Sweep();
  EXPECT_EQ(listened, 1);
  EXPECT_EQ(inv.Current(), snap);
  ASSERT_EQ(snap->devices.size(), 2u);
  const DeviceView* a = snap->Device("a");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->reachable);
  EXPECT_TRUE(a->AcceptsVolumes());
  EXPECT_EQ(a->region, "eu-west-1");
  EXPECT_EQ(a->jurisdiction, "EU");
  EXPECT_EQ(a->labels.at("rack"), "r1");
  EXPECT_EQ(a->FreeBytes("ssd"), 600u);
  EXPECT_EQ(a->FreeBytes("sata"), 0u) << "full";
  EXPECT_EQ(a->FreeBytes("sas"), 0u) << "absent";
  EXPECT_DOUBLE_EQ(a->FindTier("ssd")->price_per_gib_hour, 0.5) << "price from the spec";
  EXPECT_EQ(a->luns.size(), 2u);
  EXPECT_EQ(a->stats.size(), 1u) << "stats only for LUNs with a PVC owner";
  auto ref = snap->FindPvc("db", "data");
  ASSERT_TRUE(ref);
  EXPECT_EQ(ref->device, "a");
  EXPECT_EQ(ref->lun, "pvc-1");
  ASSERT_TRUE(snap->Stats(*ref));
  EXPECT_DOUBLE_EQ(snap->Stats(*ref)->read().iops(), 1234);
  const DeviceView* b = snap->Device("b");
  ASSERT_TRUE(b);
  EXPECT_FALSE(b->AcceptsVolumes()) << "desiredState Maintenance";
}

TEST(VolumeInventoryTest, AMovedVolumeBelongsToItsNewDeviceOnlyOnceTheCopyIsDone) {
  kube::Store store;
  store.Upsert(Device("a", "a:1", "Online"));
  store.Upsert(Device("b", "b:1", "Online"));
  device::testing::FakeFleet fleet;
  // Moving: the source runs the migration, the target holds a copy being filled.
  pb::Lun moving = Lun("pvc-1", "db", "data");
  moving.mutable_migration()->set_state(pb::MIGRATION_STATE_RUNNING);
  moving.mutable_migration()->set_to_device("b:1");
  fleet.Get("a:1")->PutLun(moving);
  fleet.Get("b:1")->PutLun(Lun("pvc-1", "db", "data"));
  VolumeInventory inv(&store, fleet.cache(), {});
  auto snap = inv.Sweep();
  EXPECT_EQ(snap->FindPvc("db", "data")->device, "a");
  EXPECT_EQ(snap->Device("a")->running_migrations, 1);
  EXPECT_TRUE(snap->Device("b")->luns.empty()) << "a copy being filled is not the volume yet";
  // Done: the source keeps a stub that proxies (moved_to); the target holds the volume.
  pb::Lun stub = Lun("pvc-1", "db", "data");
  stub.set_moved_to("b:1");
  fleet.Get("a:1")->PutLun(stub);
  // A client not yet switched still reads through a's stub: its I/O is the volume's too.
  pb::LunStats via_stub, on_target;
  via_stub.mutable_read()->set_ops(1000);
  via_stub.mutable_read()->set_iops(300);
  via_stub.set_idle_seconds(0);
  on_target.mutable_read()->set_ops(10);
  on_target.mutable_read()->set_iops(5);
  on_target.set_idle_seconds(40);
  fleet.Get("a:1")->SetStats("pvc-1", via_stub);
  fleet.Get("b:1")->SetStats("pvc-1", on_target);
  snap = inv.Sweep();
  auto ref = snap->FindPvc("db", "data");
  ASSERT_TRUE(ref);
  EXPECT_EQ(ref->device, "b");
  EXPECT_TRUE(snap->Device("a")->luns.empty());
  ASSERT_TRUE(snap->Stats(*ref));
  EXPECT_EQ(snap->Stats(*ref)->read().ops(), 1010u);
  EXPECT_DOUBLE_EQ(snap->Stats(*ref)->read().iops(), 305);
  EXPECT_EQ(snap->Stats(*ref)->idle_seconds(), 0u);
}

TEST(VolumeInventoryTest, AnUnreachableDeviceIsThereWithoutLuns) {
  kube::Store store;
  store.Upsert(Device("a", "a:1", "Online"));
  store.Upsert({{"kind", "StorageDevice"}, {"metadata", {{"name", "broken"}}}, {"spec", 3}});
  device::testing::FakeFleet fleet;
  fleet.Get("a:1")->PutLun(Lun("pvc-1", "db", "data"));
  fleet.Get("a:1")->unreachable = true;
  VolumeInventory inv(&store, fleet.cache(), {});
  auto snap = inv.Sweep();
  ASSERT_EQ(snap->devices.size(), 1u) << "a StorageDevice that does not parse is skipped";
  EXPECT_FALSE(snap->Device("a")->reachable);
  EXPECT_NE(snap->Device("a")->error.find("unreachable"), std::string::npos);
  EXPECT_FALSE(snap->Device("a")->AcceptsVolumes());
  EXPECT_FALSE(snap->FindPvc("db", "data"));
}

}  // namespace
}  // namespace strata::op
