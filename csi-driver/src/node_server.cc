#include "node_server.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>
#include <vector>

#include "call_logging.h"
#include "stage_state.h"
#include "strata/common/file_util.h"
#include "strata/common/undo_stack.h"
#include "strata/csi/volume_util.h"

namespace strata::csi {
namespace {

namespace v1 = ::csi::v1;
namespace fs = std::filesystem;

// The kernel modules staging needs, as named under /sys/module.
constexpr const char* kModules[] = {"nbd", "dm_multipath", "dm_round_robin"};

std::string FsMountPoint(const std::string& staging) {
  return (fs::path(staging) / NodeServer::kFsDir).string();
}

std::string ContextValue(const google::protobuf::Map<std::string, std::string>& ctx,
                         const std::string& key) {
  auto it = ctx.find(key);
  return it == ctx.end() ? std::string() : it->second;
}

// "ext4" when the capability names none; "" for block.
std::string FsTypeFor(const v1::VolumeCapability& cap) {
  if (!cap.has_mount()) return "";
  return cap.mount().fs_type().empty() ? "ext4" : cap.mount().fs_type();
}

std::string MountOptions(const v1::VolumeCapability& cap) {
  std::string out;
  if (!cap.has_mount()) return out;
  for (const auto& f : cap.mount().mount_flags()) {
    if (f.empty()) continue;
    out += (out.empty() ? "" : ",") + f;
  }
  return out;
}

Status CheckMountFlags(const v1::VolumeCapability& cap) {
  if (!cap.has_mount()) return Status::Ok();
  for (int i = 0; i < cap.mount().mount_flags_size(); ++i) {
    const std::string& f = cap.mount().mount_flags(i);
    if (f.find_first_of(", \t\n") != std::string::npos) {
      return InvalidArgumentError("volume_capability.mount.mount_flags[" + std::to_string(i) +
                                  "]: '" + f + "' must be one option without commas or spaces");
    }
  }
  return Status::Ok();
}

}  // namespace

NodeServer::NodeServer(NodeOptions options, std::unique_ptr<NodeHost> host)
    : options_(std::move(options)),
      host_(host ? std::move(host) : MakeLinuxNodeHost(options_.nbd_tls)) {
  if (options_.state_dir.empty()) return;
  std::error_code ec;
  fs::create_directories(options_.state_dir, ec);
  for (fs::directory_iterator it(options_.state_dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file() || it->path().extension() == ".tmp") continue;
    std::ifstream in(it->path());
    std::string staging;
    std::getline(in, staging);
    const std::string dm = it->path().filename().string();
    if (!staging.empty() && ReadStageState(staging).ok()) {
      staged_[dm] = staging;
    } else {
      fs::remove(it->path(), ec);
    }
  }
  if (!staged_.empty()) spdlog::info("node: {} staged volume(s) found again", staged_.size());
}

namespace {
NodeOptions OptionsFor(std::string node_id, std::string zone) {
  NodeOptions o;
  o.node_id = std::move(node_id);
  o.zone = std::move(zone);
  return o;
}
}  // namespace

NodeServer::NodeServer(std::string node_id, std::string zone, std::unique_ptr<NodeHost> host)
    : NodeServer(OptionsFor(std::move(node_id), std::move(zone)), std::move(host)) {}

NodeServer::~NodeServer() {
  {
    std::lock_guard<std::mutex> lock(checker_mu_);
    stopping_ = true;
  }
  checker_cv_.notify_all();
  if (checker_.joinable()) checker_.join();
}

void NodeServer::Remember(const std::string& dm_name, const std::string& staging) {
  std::lock_guard<std::mutex> lock(registry_mu_);
  staged_[dm_name] = staging;
  if (options_.state_dir.empty()) return;
  if (Status s =
          WriteFileAtomically((fs::path(options_.state_dir) / dm_name).string(), staging + "\n");
      !s.ok()) {
    spdlog::warn("node: cannot record {} in {}: {}", dm_name, options_.state_dir, s.ToString());
  }
}

void NodeServer::Forget(const std::string& dm_name) {
  std::lock_guard<std::mutex> lock(registry_mu_);
  staged_.erase(dm_name);
  if (options_.state_dir.empty()) return;
  std::error_code ec;
  fs::remove(fs::path(options_.state_dir) / dm_name, ec);
}

DeviceClientPtr NodeServer::Device(const std::string& address) {
  std::lock_guard<std::mutex> lock(registry_mu_);
  auto it = devices_.find(address);
  if (it != devices_.end()) return it->second;
  DeviceClientPtr c = options_.device_factory
                          ? options_.device_factory(address)
                          : MakeGrpcDeviceClient(address, address, std::chrono::seconds(5));
  devices_[address] = c;
  return c;
}

grpc::Status NodeServer::NodeGetInfo(grpc::ServerContext*,
                                     const ::csi::v1::NodeGetInfoRequest* request,
                                     ::csi::v1::NodeGetInfoResponse* response) {
  return LoggedCall("NodeGetInfo", *request, [&] {
    response->set_node_id(options_.node_id);
    if (options_.max_volumes > 0) response->set_max_volumes_per_node(options_.max_volumes);
    if (!options_.zone.empty()) {
      (*response->mutable_accessible_topology()->mutable_segments())[kZoneKey] = options_.zone;
    }
    return Status::Ok();
  });
}

grpc::Status NodeServer::NodeGetCapabilities(grpc::ServerContext*,
                                             const ::csi::v1::NodeGetCapabilitiesRequest* request,
                                             ::csi::v1::NodeGetCapabilitiesResponse* response) {
  return LoggedCall("NodeGetCapabilities", *request, [&] {
    for (auto t : {v1::NodeServiceCapability_RPC_Type_STAGE_UNSTAGE_VOLUME,
                   v1::NodeServiceCapability_RPC_Type_GET_VOLUME_STATS,
                   v1::NodeServiceCapability_RPC_Type_EXPAND_VOLUME,
                   v1::NodeServiceCapability_RPC_Type_VOLUME_CONDITION}) {
      response->add_capabilities()->mutable_rpc()->set_type(t);
    }
    return Status::Ok();
  });
}

grpc::Status NodeServer::NodeStageVolume(grpc::ServerContext*,
                                         const ::csi::v1::NodeStageVolumeRequest* request,
                                         ::csi::v1::NodeStageVolumeResponse*) {
  return LoggedCall("NodeStageVolume", *request, [&] { return Stage(*request); });
}

grpc::Status NodeServer::NodeUnstageVolume(grpc::ServerContext*,
                                           const ::csi::v1::NodeUnstageVolumeRequest* request,
                                           ::csi::v1::NodeUnstageVolumeResponse*) {
  return LoggedCall("NodeUnstageVolume", *request, [&] { return Unstage(*request); });
}

grpc::Status NodeServer::NodePublishVolume(grpc::ServerContext*,
                                           const ::csi::v1::NodePublishVolumeRequest* request,
                                           ::csi::v1::NodePublishVolumeResponse*) {
  return LoggedCall("NodePublishVolume", *request, [&] { return Publish(*request); });
}

grpc::Status NodeServer::NodeUnpublishVolume(grpc::ServerContext*,
                                             const ::csi::v1::NodeUnpublishVolumeRequest* request,
                                             ::csi::v1::NodeUnpublishVolumeResponse*) {
  return LoggedCall("NodeUnpublishVolume", *request, [&] { return Unpublish(*request); });
}

grpc::Status NodeServer::NodeGetVolumeStats(grpc::ServerContext*,
                                            const ::csi::v1::NodeGetVolumeStatsRequest* request,
                                            ::csi::v1::NodeGetVolumeStatsResponse* response) {
  return LoggedCall("NodeGetVolumeStats", *request,
                    [&] { return GetVolumeStats(*request, response); });
}

grpc::Status NodeServer::NodeExpandVolume(grpc::ServerContext*,
                                          const ::csi::v1::NodeExpandVolumeRequest* request,
                                          ::csi::v1::NodeExpandVolumeResponse* response) {
  return LoggedCall("NodeExpandVolume", *request, [&] { return Expand(*request, response); });
}

Status NodeServer::Stage(const v1::NodeStageVolumeRequest& req) {
  if (req.volume_id().empty()) return InvalidArgumentError("volume_id: required");
  if (req.staging_target_path().empty()) {
    return InvalidArgumentError("staging_target_path: required");
  }
  if (!req.has_volume_capability()) return InvalidArgumentError("volume_capability: required");
  STRATA_RETURN_IF_ERROR(ValidateCapability(req.volume_capability(), "volume_capability"));
  STRATA_RETURN_IF_ERROR(CheckMountFlags(req.volume_capability()));
  const std::string fs_type = FsTypeFor(req.volume_capability());
  const auto& ctx = req.publish_context();
  const std::string wwn = ContextValue(ctx, "wwn");
  const std::string export_name = ContextValue(ctx, "exportName");
  const std::vector<std::string> portals = SplitPortals(ContextValue(ctx, "portals"));
  if (wwn.empty() || export_name.empty() || portals.empty()) {
    return InvalidArgumentError(
        "publish_context: wwn, exportName and portals are required (from "
        "ControllerPublishVolume)");
  }
  auto dm_name = DmNameForWwn(wwn, options_.dm_prefix);
  if (!dm_name.ok()) return dm_name.status();
  const std::string& staging = req.staging_target_path();
  // ControllerPublishVolume(readonly) or a reader-only access mode: the dm device refuses
  // writes (NBD access lists have no read-only clients).
  const auto mode = req.volume_capability().access_mode().mode();
  const bool readonly = ContextValue(ctx, "readonly") == "true" ||
                        mode == v1::VolumeCapability::AccessMode::SINGLE_NODE_READER_ONLY ||
                        mode == v1::VolumeCapability::AccessMode::MULTI_NODE_READER_ONLY;

  InFlightGuard guard(&in_flight_, req.volume_id());
  STRATA_RETURN_IF_ERROR(guard.status());
  std::lock_guard<std::mutex> lock(mu_);
  for (const char* m : kModules) {
    if (!host_->HasModule(m)) {
      return FailedPreconditionError(std::string("kernel module ") + m +
                                     " is not loaded (no /sys/module/" + m +
                                     "): staging needs nbd, dm_multipath and dm_round_robin");
    }
  }
  std::error_code ec;
  if (!fs::is_directory(staging, ec)) {
    return FailedPreconditionError("staging_target_path " + staging + " is not a directory");
  }
  const std::string mapper = "/dev/mapper/" + *dm_name;
  const std::string mount_point = FsMountPoint(staging);
  auto mount = [&]() -> Status {
    fs::create_directories(mount_point, ec);
    if (ec) return InternalError("cannot create " + mount_point + ": " + ec.message());
    auto found = host_->FsTypeOf(mapper);
    if (!found.ok()) return found.status();
    if (found->empty()) {
      if (readonly) {
        return FailedPreconditionError("volume " + req.volume_id() +
                                       " is blank and read-only: there is no file system to mount");
      }
      STRATA_RETURN_IF_ERROR(host_->MakeFs(mapper, fs_type));
    } else if (*found != fs_type) {
      return FailedPreconditionError("volume " + req.volume_id() + " holds " + *found +
                                     ", volume_capability.mount.fs_type asks for " + fs_type +
                                     " (not reformatted)");
    }
    std::string options = MountOptions(req.volume_capability());
    if (readonly) options += options.empty() ? "ro" : ",ro";
    return host_->MountFs(mapper, mount_point, fs_type, options);
  };

  // Idempotent: staged already (possibly only up to the mount, when a call died).
  if (auto st = ReadStageState(staging); st.ok()) {
    if (st->dm_name != *dm_name) {
      return AlreadyExistsError("staging_target_path " + staging + " holds another volume (" +
                                st->dm_name + ")");
    }
    if (st->fs_type != fs_type) {
      return AlreadyExistsError("volume " + req.volume_id() + " is staged at " + staging + " as " +
                                (st->fs_type.empty() ? "block" : st->fs_type) + ", not as " +
                                (fs_type.empty() ? "block" : fs_type));
    }
    if (host_->DmExists(st->dm_name)) {
      Remember(st->dm_name, staging);
      if (fs_type.empty() || host_->IsMountPoint(mount_point)) return Status::Ok();
      return mount();
    }
    // A stage that died before its dm device: drop the nbd devices it connected.
    for (const auto& p : st->paths) {
      if (host_->NbdConnected(p.nbd)) STRATA_RETURN_IF_ERROR(host_->DisconnectNbd(p.nbd));
    }
  }
  if (host_->DmExists(*dm_name)) {
    return AlreadyExistsError("dm device " + *dm_name + " exists but is not staged at " + staging);
  }

  StageState state;
  state.volume_id = req.volume_id();
  state.dm_name = *dm_name;
  state.export_name = export_name;
  state.device_address = ContextValue(ctx, "deviceAddress");
  state.fs_type = fs_type;
  state.readonly = readonly;
  // Nothing half-applied: each step below registers its undo; they run newest first on
  // any error return, and are dropped by Commit() at the end.
  UndoStack undo;
  undo.Push("remove the state file and the mount point", [&] {
    fs::remove(StageStatePath(staging), ec);
    fs::remove(mount_point, ec);
  });
  std::vector<std::string> devs;
  std::string unreachable;
  for (const auto& portal : portals) {
    auto a = host_->ConnectNbd(portal, export_name);
    if (!a.ok()) {
      // A refused export (no access, unknown LUN) is no path problem: fail at once; nor is
      // a TLS mismatch (the device requires TLS the node lacks, a certificate refused).
      if (a.status().code() == StatusCode::kFailedPrecondition) {
        return FailedPreconditionError("portal " + portal + ": " + a.status().message());
      }
      if (a.status().code() == StatusCode::kNotFound) {
        return FailedPreconditionError("portal " + portal + ": " + a.status().message() +
                                       " (is the volume published to this node?)");
      }
      state.missing.push_back(portal);
      unreachable += (unreachable.empty() ? "" : "; ") + portal + ": " + a.status().message();
      continue;
    }
    state.paths.push_back(StagePath{a->index, a->dev, portal});
    undo.Push("disconnect nbd" + std::to_string(a->index), [this, index = a->index] {
      if (Status s = host_->DisconnectNbd(index); !s.ok()) {
        spdlog::warn("NodeStageVolume: undo: nbd{}: {}", index, s.ToString());
      }
    });
    devs.push_back(a->dev);
    if (state.size == 0) {
      state.size = a->size;
    } else if (a->size != state.size) {
      return InternalError("portal " + portal + " announces " + std::to_string(a->size) +
                           " bytes, another " + std::to_string(state.size));
    }
  }
  if (state.paths.empty()) {
    return UnavailableError("no portal of volume " + req.volume_id() + " answers: " + unreachable);
  }
  if (!unreachable.empty()) {
    spdlog::warn("NodeStageVolume: {} staged on {} of {} paths ({})", req.volume_id(),
                 state.paths.size(), portals.size(), unreachable);
  }
  // Written before the dm device, so an unstage after a crash still finds the nbds.
  STRATA_RETURN_IF_ERROR(WriteStageState(staging, state));
  STRATA_RETURN_IF_ERROR(host_->DmCreate(*dm_name, MultipathTable(state.size, devs), readonly));
  undo.Push("remove dm device " + *dm_name, [&] {
    if (Status s = host_->DmRemove(*dm_name); !s.ok()) {
      spdlog::warn("NodeStageVolume: undo: {}: {}", *dm_name, s.ToString());
    }
  });
  if (!fs_type.empty()) {
    undo.Push("unmount " + mount_point, [&] {
      if (host_->IsMountPoint(mount_point)) (void)host_->Unmount(mount_point);
    });
    STRATA_RETURN_IF_ERROR(mount());
  }
  undo.Commit();
  Remember(*dm_name, staging);
  return Status::Ok();
}

Status NodeServer::Unstage(const v1::NodeUnstageVolumeRequest& req) {
  if (req.volume_id().empty()) return InvalidArgumentError("volume_id: required");
  if (req.staging_target_path().empty()) {
    return InvalidArgumentError("staging_target_path: required");
  }
  const std::string& staging = req.staging_target_path();
  InFlightGuard guard(&in_flight_, req.volume_id());
  STRATA_RETURN_IF_ERROR(guard.status());
  std::lock_guard<std::mutex> lock(mu_);
  auto st = ReadStageState(staging);
  if (!st.ok()) {
    if (st.status().code() == StatusCode::kNotFound) return Status::Ok();  // unstaged already
    return st.status();
  }
  const std::string mount_point = FsMountPoint(staging);
  std::error_code ec;
  if (host_->IsMountPoint(mount_point)) STRATA_RETURN_IF_ERROR(host_->Unmount(mount_point));
  fs::remove(mount_point, ec);
  if (host_->DmExists(st->dm_name)) STRATA_RETURN_IF_ERROR(host_->DmRemove(st->dm_name));
  for (const auto& p : st->paths) {
    if (host_->NbdConnected(p.nbd)) STRATA_RETURN_IF_ERROR(host_->DisconnectNbd(p.nbd));
  }
  fs::remove(StageStatePath(staging), ec);
  if (ec) return InternalError("cannot remove state file: " + ec.message());
  Forget(st->dm_name);
  {
    std::lock_guard<std::mutex> no_path_lock(no_path_mu_);
    no_path_.erase(st->dm_name);
  }
  return Status::Ok();
}

Status NodeServer::Publish(const v1::NodePublishVolumeRequest& req) {
  if (req.volume_id().empty()) return InvalidArgumentError("volume_id: required");
  if (req.staging_target_path().empty()) {
    return InvalidArgumentError("staging_target_path: required");
  }
  if (req.target_path().empty()) return InvalidArgumentError("target_path: required");
  if (!req.has_volume_capability()) return InvalidArgumentError("volume_capability: required");
  STRATA_RETURN_IF_ERROR(ValidateCapability(req.volume_capability(), "volume_capability"));
  InFlightGuard guard(&in_flight_, req.volume_id());
  STRATA_RETURN_IF_ERROR(guard.status());
  std::lock_guard<std::mutex> lock(mu_);
  auto st = ReadStageState(req.staging_target_path());
  if (!st.ok()) {
    if (st.status().code() == StatusCode::kNotFound) {
      return FailedPreconditionError("volume " + req.volume_id() + " is not staged at " +
                                     req.staging_target_path());
    }
    return st.status();
  }
  const bool block = req.volume_capability().has_block();
  if (block != st->fs_type.empty()) {
    return InvalidArgumentError(std::string("volume_capability: ") + (block ? "block" : "mount") +
                                ", but the volume is staged as " +
                                (st->fs_type.empty() ? "block" : st->fs_type));
  }
  if (host_->IsMountPoint(req.target_path())) return Status::Ok();  // published already
  std::error_code ec;
  const fs::path target(req.target_path());
  if (target.has_parent_path()) fs::create_directories(target.parent_path(), ec);
  if (block) {
    if (!fs::exists(target, ec)) {
      std::ofstream touch(req.target_path());
      if (!touch) return InternalError("cannot create target file " + req.target_path());
    }
    return host_->BindMount("/dev/mapper/" + st->dm_name, req.target_path(), req.readonly());
  }
  // Never bind an empty directory: the file system must be mounted at STAGING/fs.
  const std::string mount_point = FsMountPoint(req.staging_target_path());
  if (!host_->IsMountPoint(mount_point)) {
    return FailedPreconditionError("volume " + req.volume_id() + " is staged at " +
                                   req.staging_target_path() + " but its file system is not " +
                                   "mounted there (NodeStageVolume again)");
  }
  fs::create_directories(target, ec);
  if (ec) return InternalError("cannot create target directory " + req.target_path());
  return host_->BindMount(mount_point, req.target_path(), req.readonly());
}

Status NodeServer::Unpublish(const v1::NodeUnpublishVolumeRequest& req) {
  if (req.volume_id().empty()) return InvalidArgumentError("volume_id: required");
  if (req.target_path().empty()) return InvalidArgumentError("target_path: required");
  InFlightGuard guard(&in_flight_, req.volume_id());
  STRATA_RETURN_IF_ERROR(guard.status());
  std::lock_guard<std::mutex> lock(mu_);
  if (host_->IsMountPoint(req.target_path())) {
    STRATA_RETURN_IF_ERROR(host_->Unmount(req.target_path()));
  }
  std::error_code ec;
  fs::remove(req.target_path(), ec);  // the file (block) or the empty directory (mount)
  if (ec) return InternalError("cannot remove " + req.target_path() + ": " + ec.message());
  return Status::Ok();
}

Result<std::string> NodeServer::StagingFor(const std::string& volume_path) {
  auto dm = host_->DmNameOf(volume_path);
  if (!dm.ok()) {
    if (dm.status().code() == StatusCode::kFailedPrecondition) {
      return NotFoundError("volume_path " + volume_path + " is not a volume of this plugin (" +
                           dm.status().message() + ")");
    }
    return dm.status();
  }
  std::lock_guard<std::mutex> lock(registry_mu_);
  auto it = staged_.find(*dm);
  if (it == staged_.end()) {
    return NotFoundError("volume_path " + volume_path + " is on " + *dm +
                         ", which this plugin did not stage");
  }
  return it->second;
}

Status NodeServer::GetVolumeStats(const v1::NodeGetVolumeStatsRequest& req,
                                  v1::NodeGetVolumeStatsResponse* resp) {
  if (req.volume_id().empty()) return InvalidArgumentError("volume_id: required");
  if (req.volume_path().empty()) return InvalidArgumentError("volume_path: required");
  std::lock_guard<std::mutex> lock(mu_);
  auto staging = StagingFor(req.volume_path());
  if (!staging.ok()) return staging.status();
  auto st = ReadStageState(*staging);
  if (!st.ok()) return st.status();
  if (!st->volume_id.empty() && st->volume_id != req.volume_id()) {
    return NotFoundError("volume_path " + req.volume_path() + " holds volume " + st->volume_id +
                         ", not " + req.volume_id());
  }
  if (st->fs_type.empty()) {
    auto size = host_->BlockDeviceSize(req.volume_path());
    if (!size.ok()) return size.status();
    auto* u = resp->add_usage();
    u->set_unit(v1::VolumeUsage::BYTES);
    u->set_total(static_cast<int64_t>(*size));
  } else {
    auto fsu = host_->StatFs(req.volume_path());
    if (!fsu.ok()) return fsu.status();
    auto* b = resp->add_usage();
    b->set_unit(v1::VolumeUsage::BYTES);
    b->set_total(static_cast<int64_t>(fsu->total_bytes));
    b->set_available(static_cast<int64_t>(fsu->available_bytes));
    b->set_used(static_cast<int64_t>(fsu->used_bytes));
    auto* i = resp->add_usage();
    i->set_unit(v1::VolumeUsage::INODES);
    i->set_total(static_cast<int64_t>(fsu->total_inodes));
    i->set_available(static_cast<int64_t>(fsu->free_inodes));
    i->set_used(static_cast<int64_t>(fsu->used_inodes));
  }
  // The condition: every path of the multipath device active.
  auto* cond = resp->mutable_volume_condition();
  auto paths = host_->DmPaths(st->dm_name);
  if (!paths.ok()) {
    cond->set_abnormal(true);
    cond->set_message("cannot read the multipath state of " + st->dm_name + ": " +
                      paths.status().message());
    return Status::Ok();
  }
  std::string down;
  size_t active = 0;
  for (const auto& p : *paths) {
    if (p.active) {
      ++active;
      continue;
    }
    std::string portal;
    for (const auto& sp : st->paths) {
      if (sp.dev == p.dev) portal = sp.portal;
    }
    down += (down.empty() ? "" : ", ") + p.dev + (portal.empty() ? "" : " (portal " + portal + ")");
  }
  for (const auto& m : st->missing) {
    down += (down.empty() ? "" : ", ") + std::string("portal ") + m + " (not connected)";
  }
  if (down.empty()) {
    cond->set_abnormal(false);
    cond->set_message("all " + std::to_string(paths->size()) + " paths active");
  } else {
    cond->set_abnormal(true);
    std::string msg = "path(s) down: " + down + "; " + std::to_string(active) + " of " +
                      std::to_string(paths->size() + st->missing.size()) + " active";
    if (active == 0) {
      std::lock_guard<std::mutex> no_path_lock(no_path_mu_);
      auto it = no_path_.find(st->dm_name);
      msg += it != no_path_.end() && it->second.failing ? "; I/O fails (no path for too long)"
                                                        : "; I/O is queued until a path returns";
    }
    cond->set_message(msg);
  }
  return Status::Ok();
}

Status NodeServer::SwapPaths(const std::string& staging, StageState* st,
                             const std::vector<std::string>& portals) {
  StageState next = *st;
  next.paths.clear();
  next.missing.clear();
  next.size = 0;
  auto drop_new = [&] {
    for (const auto& p : next.paths) {
      if (Status s = host_->DisconnectNbd(p.nbd); !s.ok()) {
        spdlog::warn("swap paths: undo: nbd{}: {}", p.nbd, s.ToString());
      }
    }
  };
  std::vector<std::string> devs;
  for (const auto& portal : portals) {
    auto a = host_->ConnectNbd(portal, st->export_name);
    if (!a.ok()) {
      drop_new();
      return UnavailableError("portal " + portal + ": " + a.status().message());
    }
    next.paths.push_back(StagePath{a->index, a->dev, portal});
    devs.push_back(a->dev);
    if (next.size == 0) {
      next.size = a->size;
    } else if (a->size != next.size) {
      drop_new();
      return InternalError("portal " + portal + " announces " + std::to_string(a->size) +
                           " bytes, another " + std::to_string(next.size));
    }
  }
  // Both sets recorded while both exist: an unstage after a crash here finds them all.
  StageState both = next;
  both.paths.insert(both.paths.end(), st->paths.begin(), st->paths.end());
  if (Status s = WriteStageState(staging, both); !s.ok()) {
    drop_new();
    return s;
  }
  if (Status s = host_->DmReload(st->dm_name, MultipathTable(next.size, devs), st->readonly);
      !s.ok()) {
    drop_new();
    (void)WriteStageState(staging, *st);
    return s;
  }
  for (const auto& p : st->paths) {
    if (Status s = host_->DisconnectNbd(p.nbd); !s.ok()) {
      spdlog::warn("swap paths: old nbd{}: {}", p.nbd, s.ToString());
    }
  }
  STRATA_RETURN_IF_ERROR(WriteStageState(staging, next));
  *st = std::move(next);
  return Status::Ok();
}

Status NodeServer::Expand(const v1::NodeExpandVolumeRequest& req,
                          v1::NodeExpandVolumeResponse* resp) {
  if (req.volume_id().empty()) return InvalidArgumentError("volume_id: required");
  if (req.volume_path().empty()) return InvalidArgumentError("volume_path: required");
  if (req.has_volume_capability()) {
    STRATA_RETURN_IF_ERROR(ValidateCapability(req.volume_capability(), "volume_capability"));
  }
  InFlightGuard guard(&in_flight_, req.volume_id());
  STRATA_RETURN_IF_ERROR(guard.status());
  std::lock_guard<std::mutex> lock(mu_);
  std::string staging = req.staging_target_path();
  if (staging.empty()) {
    auto found = StagingFor(req.volume_path());
    if (!found.ok()) return found.status();
    staging = *found;
  }
  auto st = ReadStageState(staging);
  if (!st.ok()) {
    if (st.status().code() == StatusCode::kNotFound) {
      return NotFoundError("volume " + req.volume_id() + " is not staged at " + staging);
    }
    return st.status();
  }
  const uint64_t want =
      req.has_capacity_range() ? static_cast<uint64_t>(req.capacity_range().required_bytes()) : 0;
  if (st->size < want || want == 0) {
    // The kernel's nbd cannot change a connected device's size: new connections (which
    // announce the LUN's new size) replace the old ones under the same dm device.
    std::vector<std::string> portals;
    for (const auto& p : st->paths) portals.push_back(p.portal);
    if (portals.empty()) return UnavailableError("volume " + req.volume_id() + " has no path");
    const uint64_t before = st->size;
    STRATA_RETURN_IF_ERROR(SwapPaths(staging, &*st, portals));
    if (st->size != before) {
      spdlog::info("NodeExpandVolume: {} {} -> {} bytes", st->dm_name, before, st->size);
    }
  }
  if (want > st->size) {
    return OutOfRangeError("capacity_range.required_bytes " + std::to_string(want) +
                           " is more than the LUN's " + std::to_string(st->size) +
                           " bytes (ControllerExpandVolume first)");
  }
  if (!st->fs_type.empty()) {
    STRATA_RETURN_IF_ERROR(
        host_->GrowFs("/dev/mapper/" + st->dm_name, FsMountPoint(staging), st->fs_type));
  }
  resp->set_capacity_bytes(static_cast<int64_t>(st->size));
  return Status::Ok();
}

}  // namespace strata::csi
