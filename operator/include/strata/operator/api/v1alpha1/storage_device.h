#pragma once

#include "strata/operator/api/v1alpha1/common.h"

namespace strata::op::api::v1alpha1 {

// StorageDevice (cluster-scoped): a storage daemon endpoint and the capacity it offers per media
// tier. Schema: charts/strata/crds/strata.io_storagedevices.yaml.

struct StorageDeviceTier {
  std::string class_;  // kTierClasses
  int64_t capacity_bytes = 0;
  std::optional<double> price_per_gib_hour;
};

struct StorageDeviceSpec {
  std::string endpoint;                  // host:port
  std::vector<StorageDeviceTier> tiers;  // 1-3, unique by class
  std::optional<std::string> region;
  std::optional<std::string> jurisdiction;
  std::string desired_state = "Online";  // Online, Maintenance
};

struct StorageDeviceTierStatus {
  std::string class_;
  std::optional<int64_t> capacity_bytes;
  std::optional<int64_t> used_bytes;
  std::optional<bool> healthy;
  std::string message;
};

struct StorageDeviceStatus : ObjectStatus {
  std::string phase;  // Pending, Online, Maintenance, Degraded, Offline; empty before the first
  std::optional<int64_t> capacity_bytes;
  std::optional<int64_t> used_bytes;
  std::optional<double> dedup_ratio;
  std::string device_name;
  std::string device_id;
  std::string version;
  std::string state_reason;
  std::optional<int64_t> lun_count;
  std::vector<std::string> portals;
  std::optional<int64_t> read_iops;
  std::optional<int64_t> write_iops;
  std::vector<StorageDeviceTierStatus> tiers;
};

struct StorageDevice : Object<StorageDeviceSpec, StorageDeviceStatus> {
  static constexpr std::string_view kKind = "StorageDevice";
};

Result<StorageDevice> StorageDeviceFromJson(const kube::Json& json);
kube::Json ToJson(const StorageDevice& device);

}  // namespace strata::op::api::v1alpha1
