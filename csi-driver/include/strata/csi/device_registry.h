#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "strata/common/result.h"
#include "strata/csi/device_client.h"

namespace strata::csi {

// A device the controller may place volumes on and reach volumes through.
struct DeviceInfo {
  DeviceClientPtr client;  // client->name() is the device name (first part of volume ids)
  std::string zone;        // kZoneKey segment; "" = reachable from every node
  std::string region;
  // Why the device takes no new volumes ("" when it does): a StorageDevice in Maintenance or
  // Offline. Existing volumes stay usable.
  std::string refusal;
};

// The devices the CSI controller knows: from --device flags, from StorageDevice objects, or both.
// Implementations are thread-safe; the set may change between two calls.
class DeviceRegistry {
 public:
  virtual ~DeviceRegistry() = default;

  // Every device, ordered by name.
  virtual std::vector<DeviceInfo> Devices() const = 0;
  virtual std::optional<DeviceInfo> Find(const std::string& name) const = 0;
  // The client of the device at management address `address` (where a LUN moved to): the
  // known device with that address, else a client kept for that address and named by it.
  virtual DeviceClientPtr ForAddress(const std::string& address) = 0;
};

// How a device seen in the cluster looks (a StorageDevice object, see cluster_devices.h).
struct ClusterDevice {
  std::string name;
  std::string address;
  std::string zone;
  std::string region;
  std::string refusal;
};

// A DeviceRegistry of fixed devices (--device) and devices learned from the cluster, which come
// and go. A name is one device: a cluster device may not take a fixed device's name.
// Thread-safe (one mutex; every call is short and makes no remote call).
class DeviceSet final : public DeviceRegistry {
 public:
  // How clients are made for cluster devices and ForAddress (default: gRPC, 10 s deadline).
  using Factory =
      std::function<DeviceClientPtr(const std::string& name, const std::string& address)>;
  explicit DeviceSet(Factory factory = nullptr);

  // A fixed device. INVALID_ARGUMENT when its name is taken.
  Status AddFixed(DeviceInfo device);
  // Adds or updates a device from the cluster (a changed address gets a new client).
  // ALREADY_EXISTS when a fixed device has the name (the fixed one stays).
  Status Upsert(const ClusterDevice& device);
  // Drops a device learned from the cluster; fixed devices stay.
  void Remove(const std::string& name);

  std::vector<DeviceInfo> Devices() const override;
  std::optional<DeviceInfo> Find(const std::string& name) const override;
  DeviceClientPtr ForAddress(const std::string& address) override;

 private:
  struct Entry {
    DeviceInfo info;
    bool fixed = false;
  };
  const Factory factory_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> devices_;               // by name; guarded by mu_
  std::map<std::string, DeviceClientPtr> by_address_;  // unknown addresses; guarded by mu_
};

}  // namespace strata::csi
