#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "strata/common/env.h"
#include "strata/common/net_address.h"
#include "strata/common/result.h"
#include "strata/storage/tier_config.h"

namespace strata::storage {

struct DeviceConfig {
  std::string name;
  std::vector<TierConfig> tiers;
  std::vector<HostPort> portals;
};

enum class DeviceState { kOnline, kMaintenance, kDegraded };

struct TierStatus {
  TierConfig config;
  uint64_t capacity_bytes = 0;
  uint64_t used_bytes = 0;
  bool healthy = true;
  std::string message;  // why not healthy
};

struct DeviceStatus {
  std::string name;
  std::string device_id;
  DeviceState state = DeviceState::kOnline;
  std::vector<TierStatus> tiers;
  std::vector<HostPort> portals;
  uint64_t uptime_seconds = 0;
  uint32_t lun_count = 0;
  uint64_t capacity_bytes = 0;
  uint64_t used_bytes = 0;
};

// Validates a configuration before anything is touched: a device name, at least
// one tier, at most one tier per class, no path used twice, no portal given twice. Errors name the
// flag and the reason.
Status ValidateDeviceConfig(const DeviceConfig& config);

// One storage device: its disk groups (tiers) and identity. The LUN engine
// (block store, dedup index, migration) hangs off this in later work.
//
// Thread-safe: Status() may be called from any thread.
class Device {
 public:
  // Validates `config`, prepares every tier (a directory is created when missing;
  // a block device is used as is), and loads or creates the device identity kept
  // in the first tier as "device.json". Nothing is created if validation fails.
  static Result<std::unique_ptr<Device>> Open(Env* env, DeviceConfig config);

  DeviceStatus Status();
  const std::string& device_id() const { return device_id_; }

 private:
  Device(Env* env, DeviceConfig config, std::string device_id);

  Env* const env_;
  const DeviceConfig config_;
  const std::string device_id_;
  const std::chrono::steady_clock::time_point started_;
  std::mutex mu_;
  DeviceState state_ = DeviceState::kOnline;  // guarded by mu_
};

}  // namespace strata::storage
