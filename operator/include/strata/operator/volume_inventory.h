#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "strata/device/client.h"
#include "strata/kube/clock.h"
#include "strata/kube/store.h"
#include "strata/storage/v1/storage.pb.h"

namespace strata::op {

// Metadata keys a LUN carries for its Kubernetes owner (set by strata-csi's CreateVolume from
// the external-provisioner's --extra-create-metadata).
inline constexpr char kPvcNameKey[] = "csi.storage.k8s.io/pvc/name";
inline constexpr char kPvcNamespaceKey[] = "csi.storage.k8s.io/pvc/namespace";
inline constexpr char kPvNameKey[] = "csi.storage.k8s.io/pv/name";

// One StorageDevice as one sweep saw it: its object's spec and the device's own answers.
struct DeviceView {
  struct Tier {
    std::string class_;  // ssd, sas, sata
    uint64_t capacity_bytes = 0;
    uint64_t used_bytes = 0;
    double price_per_gib_hour = 0;  // from the StorageDevice's spec.tiers
    bool healthy = true;
  };

  std::string name;  // the StorageDevice's name
  std::string endpoint;
  std::string region, jurisdiction;
  std::string desired_state;  // spec.desiredState
  std::map<std::string, std::string> labels;
  bool reachable = false;
  std::string error;  // why not, when not reachable
  storage::v1::DeviceStatus status;
  std::vector<Tier> tiers;
  // LUNs this device holds now: not stubs left by a move away (moved_to), not copies still
  // being filled by a move into it.
  std::vector<storage::v1::Lun> luns;
  // By LUN name, for volumes with an owner. A volume that moved here counts the I/O its old
  // device still proxies for clients not yet switched (AddProxiedStats): counters, rates and idle
  // time are the volume's, wherever the client connects.
  std::map<std::string, storage::v1::LunStats> stats;
  int running_migrations = 0;  // moves out of (or between tiers of) this device in flight

  const Tier* FindTier(const std::string& class_) const;
  // Capacity left on `class_` (0 when the device lacks it).
  uint64_t FreeBytes(const std::string& class_) const;
  // Online (spec and device) and reachable: may take new volumes and moves in.
  bool AcceptsVolumes() const;
};

// Where a Kubernetes volume's LUN lives now.
struct VolumeRef {
  std::string device;  // DeviceView::name
  std::string lun;
};

// Adds the I/O a move's stub proxied (counters, rates) to the holder's statistics; the idle time
// is the shorter of the two.
void AddProxiedStats(const storage::v1::LunStats& stub, storage::v1::LunStats* holder);

// What one sweep over every StorageDevice found. Immutable once published.
struct InventorySnapshot {
  uint64_t sweep = 0;
  kube::WallTime taken{};
  std::map<std::string, DeviceView> devices;  // by name
  // (PVC namespace, PVC name) -> its LUN, from the LUNs' owner metadata.
  std::map<std::pair<std::string, std::string>, VolumeRef> by_pvc;

  const DeviceView* Device(const std::string& name) const;
  const storage::v1::Lun* Lun(const VolumeRef& ref) const;
  const storage::v1::LunStats* Stats(const VolumeRef& ref) const;
  std::optional<VolumeRef> FindPvc(const std::string& ns, const std::string& name) const;
};

// The operator's view of every volume: each `period` it asks every StorageDevice (from the
// shared informer's store) for its status, its LUNs and, for LUNs owned by a PVC, their I/O
// statistics; it publishes the result as one immutable snapshot and tells listeners (the
// policy controllers requeue on it; the usage ledger integrates over it). A device that does not
// answer is in the snapshot as unreachable, with no LUNs. Thread-safe.
class VolumeInventory {
 public:
  struct Options {
    kube::Duration period = std::chrono::seconds(5);
  };
  using Listener =
      std::function<void(const InventorySnapshot& previous, const InventorySnapshot& current)>;

  VolumeInventory(const kube::Store* devices, device::ClientCache* clients, Options options,
                  kube::Clock* clock = kube::Clock::Real());

  // REQUIRES: before Run().
  void AddListener(Listener listener);
  // One sweep now (what Run does every period); returns the new snapshot.
  std::shared_ptr<const InventorySnapshot> Sweep();
  // Sweeps every period until `stop`.
  void Run(std::stop_token stop);
  // The last snapshot (an empty one before the first sweep).
  std::shared_ptr<const InventorySnapshot> Current() const;

 private:
  const kube::Store* const devices_;
  device::ClientCache* const clients_;
  const Options options_;
  kube::Clock* const clock_;
  std::vector<Listener> listeners_;
  std::mutex sweep_mu_;  // one sweep at a time
  mutable std::mutex mu_;
  std::shared_ptr<const InventorySnapshot> current_;  // guarded by mu_
};

}  // namespace strata::op
