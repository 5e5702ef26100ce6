#include "strata/storage/device.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <set>
#include <string>
#include <utility>

namespace strata::storage {
namespace {

constexpr char kIdentityFile[] = "device.json";

std::string IdentityPath(const DeviceConfig& config) {
  return config.tiers.front().path + "/" + kIdentityFile;
}

// The identity file is tiny JSON: {"device_id":"<16 hex digits>"}. Parsed by hand
// to keep the engine free of a JSON dependency.
Result<std::string> ParseIdentity(const std::string& text, const std::string& path) {
  const std::string key = "\"device_id\":\"";
  size_t at = text.find(key);
  if (at == std::string::npos) {
    return FailedPreconditionError(path + ": no device_id (file damaged? move it away to reset)");
  }
  size_t start = at + key.size();
  size_t end = text.find('"', start);
  std::string id = text.substr(start, end == std::string::npos ? 0 : end - start);
  if (id.size() != 16 || id.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return FailedPreconditionError(path + ": device_id '" + id + "' is not 16 hex digits");
  }
  return id;
}

Status PrepareTier(Env* env, const TierConfig& tier) {
  const std::string what =
      "tier " + std::string(TierClassName(tier.tier_class)) + " (" + tier.path + ")";
  auto info = env->Stat(tier.path);
  if (!info.ok() && info.status().code() == StatusCode::kNotFound) {
    return env->CreateDirectories(tier.path).WithContext(what);
  }
  if (!info.ok()) return info.status().WithContext(what);
  if (info->kind == PathKind::kBlockDevice) {
    // A raw block device holds data only; identity and metadata need a directory.
    return Status::Ok();
  }
  if (info->kind != PathKind::kDirectory) {
    return FailedPreconditionError(what + ": not a directory or block device");
  }
  return Status::Ok();
}

}  // namespace

Status ValidateDeviceConfig(const DeviceConfig& config) {
  if (config.name.empty()) return InvalidArgumentError("--device: name is required");
  if (config.name.find_first_of(" /\t\n\"") != std::string::npos) {
    return InvalidArgumentError("--device: '" + config.name +
                                "' may not contain spaces, quotes or '/'");
  }
  if (config.tiers.empty()) {
    return InvalidArgumentError("--tier: at least one tier is required (CLASS=PATH[:CAPACITY])");
  }
  std::set<TierClass> classes;
  std::set<std::string> paths;
  for (const TierConfig& t : config.tiers) {
    if (!classes.insert(t.tier_class).second) {
      return InvalidArgumentError("--tier: class '" + std::string(TierClassName(t.tier_class)) +
                                  "' is given twice; a device has one disk group per class");
    }
    if (!paths.insert(t.path).second) {
      return InvalidArgumentError("--tier: path '" + t.path + "' is used by two tiers");
    }
  }
  std::set<std::string> portals;
  for (const HostPort& p : config.portals) {
    if (!portals.insert(p.ToString()).second) {
      return InvalidArgumentError("--portal: '" + p.ToString() + "' is given twice");
    }
  }
  return Status::Ok();
}

namespace {

// Capacity of a tier: configured, or the block device's size, or the file system's.
Result<uint64_t> ResolveCapacity(Env* env, const TierConfig& tier) {
  STRATA_ASSIGN_OR_RETURN(PathInfo info, env->Stat(tier.path));
  if (tier.capacity_bytes) {
    // Allowed (a test or a demo may overcommit a small disk), but said loudly: once the
    // file system is full, writes fail with ENOSPC and clients see I/O errors.
    if (info.kind != PathKind::kBlockDevice) {
      auto fs_bytes = env->FileSystemCapacity(tier.path);
      if (fs_bytes.ok() && *fs_bytes < *tier.capacity_bytes) {
        spdlog::warn(
            "--tier {}: capacity {} bytes is more than the file system under {} holds ({} "
            "bytes); writes will fail with ENOSPC when it fills",
            TierClassName(tier.tier_class), *tier.capacity_bytes, tier.path, *fs_bytes);
      }
    }
    return *tier.capacity_bytes;
  }
  if (info.kind == PathKind::kBlockDevice) return info.size_bytes;
  return env->FileSystemCapacity(tier.path);
}

}  // namespace

Result<std::unique_ptr<Device>> Device::Open(Env* env, DeviceConfig config) {
  STRATA_RETURN_IF_ERROR(ValidateDeviceConfig(config));
  for (const TierConfig& tier : config.tiers) STRATA_RETURN_IF_ERROR(PrepareTier(env, tier));

  auto first = env->Stat(config.tiers.front().path);
  if (!first.ok()) return first.status();
  if (first->kind != PathKind::kDirectory) {
    return InvalidArgumentError("--tier: the first tier ('" + config.tiers.front().path +
                                "') must be a directory: it holds the device's metadata");
  }

  const std::string id_path = IdentityPath(config);
  std::string device_id;
  auto existing = env->ReadFile(id_path);
  if (existing.ok()) {
    STRATA_ASSIGN_OR_RETURN(device_id, ParseIdentity(*existing, id_path));
  } else if (existing.status().code() == StatusCode::kNotFound) {
    char hex[17];
    std::snprintf(hex, sizeof(hex), "%016" PRIx64, env->RandomU64());
    device_id = hex;
    std::string json = "{\"device_id\":\"" + device_id + "\",\"name\":\"" + config.name + "\"}\n";
    STRATA_RETURN_IF_ERROR(env->WriteFileAtomically(id_path, json));
  } else {
    return existing.status();
  }

  EngineOptions eo;
  eo.state_dir = config.tiers.front().path;
  eo.tiers = config.tiers;
  eo.block_size = config.block_size;
  eo.max_pending_free_bytes = config.max_pending_free_bytes;
  eo.copy_pacing = config.copy_pacing;
  eo.remote_volume_factory = config.remote_volume_factory;
  eo.device_id = std::stoull(device_id, nullptr, 16);
  for (const TierConfig& tier : config.tiers) {
    auto cap = ResolveCapacity(env, tier);
    if (!cap.ok()) {
      return cap.status().WithContext("tier " + std::string(TierClassName(tier.tier_class)));
    }
    eo.tier_capacity_bytes.push_back(*cap);
  }
  // The journal and its snapshots share the first tier's file system with its data: a
  // journal allowed to reach 64 MiB before a checkpoint truncates it would not fit
  // beside a small tier's data, so it checkpoints at 1/32 of that tier (at least 1 MiB).
  eo.checkpoint_bytes =
      std::clamp<uint64_t>(eo.tier_capacity_bytes.front() / 32, 1ull << 20, eo.checkpoint_bytes);
  STRATA_ASSIGN_OR_RETURN(auto engine, Engine::Open(env, std::move(eo)));
  for (const auto& name : engine->IncomingDroppedAtOpen()) {
    spdlog::warn(
        "deleted incoming LUN '{}': the move copying it here was cut by a restart "
        "before its source accepted it (the source keeps the LUN)",
        name);
  }
  std::unique_ptr<Device> device(
      new Device(env, std::move(config), std::move(device_id), std::move(engine)));
  // A maintenance window survives restarts: state.json is {"state":"maintenance",...}.
  auto saved = env->ReadFile(device->StatePath());
  if (saved.ok() && saved->find("\"state\":\"maintenance\"") != std::string::npos) {
    device->state_ = DeviceState::kMaintenance;
    size_t r = saved->find("\"reason\":\"");
    if (r != std::string::npos) {
      size_t start = r + 10;
      device->state_reason_ = saved->substr(start, saved->find('"', start) - start);
    }
  } else if (!saved.ok() && saved.status().code() != StatusCode::kNotFound) {
    return saved.status();
  }
  return device;
}

Status Device::SetState(DeviceState state, std::string reason) {
  if (state != DeviceState::kOnline && state != DeviceState::kMaintenance) {
    return InvalidArgumentError("state: only ONLINE and MAINTENANCE can be set");
  }
  if (reason.find_first_of("\"\\\n") != std::string::npos) {
    return InvalidArgumentError("reason: may not contain quotes, backslashes or newlines");
  }
  std::lock_guard lock(mu_);
  std::string json = std::string("{\"state\":\"") +
                     (state == DeviceState::kMaintenance ? "maintenance" : "online") +
                     "\",\"reason\":\"" + reason + "\"}\n";
  STRATA_RETURN_IF_ERROR(env_->WriteFileAtomically(StatePath(), json));
  state_ = state;
  state_reason_ = std::move(reason);
  return Status::Ok();
}

Status Device::CheckAcceptsNewLuns() {
  std::lock_guard lock(mu_);
  if (state_ != DeviceState::kMaintenance) return Status::Ok();
  return FailedPreconditionError("device " + config_.name + " is in maintenance" +
                                 (state_reason_.empty() ? "" : " (" + state_reason_ + ")") +
                                 ": new LUNs are refused until it is back online");
}

Device::Device(Env* env, DeviceConfig config, std::string device_id, std::unique_ptr<Engine> engine)
    : env_(env),
      config_(std::move(config)),
      device_id_(std::move(device_id)),
      engine_(std::move(engine)),
      started_(std::chrono::steady_clock::now()),
      portals_(config_.portals) {}

void Device::SetPortals(std::vector<HostPort> portals) {
  std::lock_guard lock(mu_);
  portals_ = std::move(portals);
}

std::vector<HostPort> Device::portals() {
  std::lock_guard lock(mu_);
  return portals_;
}

DeviceStatus Device::Status() {
  DeviceStatus out;
  out.name = config_.name;
  out.device_id = device_id_;
  out.portals = portals();
  out.block_size = config_.block_size;
  out.dedup_enabled = config_.dedup_enabled;
  out.uptime_seconds = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_)
          .count());
  std::vector<TierUsage> usage = engine_->Tiers();
  bool degraded = false;
  for (size_t i = 0; i < config_.tiers.size(); ++i) {
    const TierConfig& tier = config_.tiers[i];
    TierStatus ts;
    ts.config = tier;
    ts.capacity_bytes = usage[i].capacity_bytes;
    ts.used_bytes = usage[i].used_bytes;
    ts.indexed_blocks = usage[i].indexed_blocks;
    ts.index_memory_bytes = usage[i].index_memory_bytes;
    auto info = env_->Stat(tier.path);
    if (!info.ok()) {
      ts.healthy = false;
      ts.message = info.status().message();
    }
    degraded |= !ts.healthy;
    out.capacity_bytes += ts.capacity_bytes;
    out.used_bytes += ts.used_bytes;
    out.tiers.push_back(std::move(ts));
  }
  // One scan of the LUN maps (per owner); the device figures derive from it: logical
  // bytes add up, unique bytes are the slots in use.
  out.lun_count = static_cast<uint32_t>(engine_->LunCount());
  out.owners = engine_->OwnerSpace();
  for (const auto& [owner, space] : out.owners) out.space.logical_bytes += space.logical_bytes;
  out.space.unique_bytes = out.used_bytes;
  std::lock_guard lock(mu_);
  out.state = state_;
  out.state_reason = state_reason_;
  if (degraded && state_ == DeviceState::kOnline) {
    out.state = DeviceState::kDegraded;
    for (const auto& t : out.tiers) {
      if (!t.healthy) out.state_reason = t.message;
    }
  }
  return out;
}

}  // namespace strata::storage
