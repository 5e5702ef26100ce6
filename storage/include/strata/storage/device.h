#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "strata/common/env.h"
#include "strata/common/net_address.h"
#include "strata/common/result.h"
#include "strata/storage/engine.h"
#include "strata/storage/tier_config.h"

namespace strata::storage {

struct DeviceConfig {
  std::string name;
  std::vector<TierConfig> tiers;
  std::vector<HostPort> portals;
  uint32_t block_size = 4096;  // dedup and allocation unit: 4 KiB to 64 KiB
  // EngineOptions::max_pending_free_bytes: replaced blocks waiting for a flush to be
  // freed, per tier, before the engine flushes on its own.
  uint64_t max_pending_free_bytes = 64ull << 20;
  // EngineOptions::copy_pacing (default: no cap).
  CopyPacing copy_pacing;
  // Device-wide dedup switch: when off, LUNs asking for dedup are refused.
  bool dedup_enabled = true;
  // How LUNs that moved to another device reach it (see EngineOptions).
  std::function<std::shared_ptr<Volume>(const std::string& device, const std::string& lun)>
      remote_volume_factory;
};

enum class DeviceState { kOnline, kMaintenance, kDegraded };

struct TierStatus {
  TierConfig config;
  uint64_t capacity_bytes = 0;
  uint64_t used_bytes = 0;
  uint64_t indexed_blocks = 0;
  uint64_t index_memory_bytes = 0;
  bool healthy = true;
  std::string message;  // why not healthy
};

struct DeviceStatus {
  std::string name;
  std::string device_id;
  DeviceState state = DeviceState::kOnline;
  std::string state_reason;
  std::vector<TierStatus> tiers;
  std::vector<HostPort> portals;
  uint64_t uptime_seconds = 0;
  uint32_t lun_count = 0;
  uint64_t capacity_bytes = 0;
  uint64_t used_bytes = 0;
  uint32_t block_size = 0;
  bool dedup_enabled = true;
  SpaceStats space;
  std::map<std::string, SpaceStats> owners;
};

// Validates a configuration before anything is touched: a device name, at least
// one tier, at most one tier per class, no path used twice, no portal given twice. Errors name the
// flag and the reason.
Status ValidateDeviceConfig(const DeviceConfig& config);

// One storage device: its disk groups (tiers), identity and LUN engine.
//
// Thread-safe: Status() and the engine may be used from any thread.
class Device {
 public:
  // Validates `config`, prepares every tier (a directory is created when missing;
  // a block device is used as is), and loads or creates the device identity kept
  // in the first tier as "device.json", then opens (recovers) the LUN engine, whose
  // journal also lives in the first tier. Nothing is created if validation fails.
  static Result<std::unique_ptr<Device>> Open(Env* env, DeviceConfig config);

  DeviceStatus Status();
  // kOnline or kMaintenance (kDegraded is derived from tier health), written to
  // "state.json" on the first tier before it takes effect.
  strata::Status SetState(DeviceState state, std::string reason);
  // OK, or FAILED_PRECONDITION naming the maintenance: new LUNs are refused then.
  strata::Status CheckAcceptsNewLuns();
  // The NBD portals as bound (port 0 resolved), for status and LUN replies.
  void SetPortals(std::vector<HostPort> portals);
  std::vector<HostPort> portals();
  const std::string& device_id() const { return device_id_; }
  const DeviceConfig& config() const { return config_; }
  Engine* engine() { return engine_.get(); }

 private:
  Device(Env* env, DeviceConfig config, std::string device_id, std::unique_ptr<Engine> engine);
  std::string StatePath() const { return config_.tiers.front().path + "/state.json"; }

  Env* const env_;
  const DeviceConfig config_;
  const std::string device_id_;
  const std::unique_ptr<Engine> engine_;
  const std::chrono::steady_clock::time_point started_;
  std::mutex mu_;
  DeviceState state_ = DeviceState::kOnline;  // guarded by mu_
  std::string state_reason_;                  // guarded by mu_
  std::vector<HostPort> portals_;             // guarded by mu_
};

}  // namespace strata::storage
