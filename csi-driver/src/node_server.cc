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
#include "strata/csi/volume_util.h"

namespace strata::csi {
namespace {

namespace v1 = ::csi::v1;
namespace fs = std::filesystem;

// The kernel modules staging needs, as named under /sys/module.
constexpr const char* kModules[] = {"nbd", "dm_multipath", "dm_round_robin"};

// What staging built, kept in staging_target_path/kStateFile.
struct StageState {
  std::string dm_name;
  std::vector<int> nbds;
};

std::string StatePath(const std::string& staging) {
  return (fs::path(staging) / NodeServer::kStateFile).string();
}

// NOT_FOUND when there is no state file.
Result<StageState> ReadState(const std::string& staging) {
  std::ifstream in(StatePath(staging));
  if (!in) return NotFoundError("no state file in " + staging);
  StageState st;
  std::string key;
  while (in >> key) {
    if (key == "dm") {
      in >> st.dm_name;
    } else if (key == "nbd") {
      int i = -1;
      in >> i;
      if (i >= 0) st.nbds.push_back(i);
    } else {
      std::string skip;
      std::getline(in, skip);
    }
  }
  if (st.dm_name.empty()) return InternalError("state file " + StatePath(staging) + ": no dm name");
  return st;
}

Status WriteState(const std::string& staging, const StageState& st) {
  const std::string path = StatePath(staging);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return InternalError("cannot write " + tmp);
    out << "dm " << st.dm_name << "\n";
    for (int i : st.nbds) out << "nbd " << i << "\n";
    out.flush();
    if (!out) return InternalError("cannot write " + tmp);
  }
  // temp + fsync + rename: a crash leaves the old state or the new, never half of one.
  int fd = open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open " + tmp, errno);
  const int rc = fsync(fd);
  const int err = errno;
  close(fd);
  if (rc != 0) return ErrnoError("fsync " + tmp, err);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return InternalError("cannot rename " + tmp + ": " + ec.message());
  return Status::Ok();
}

std::string ContextValue(const google::protobuf::Map<std::string, std::string>& ctx,
                         const std::string& key) {
  auto it = ctx.find(key);
  return it == ctx.end() ? std::string() : it->second;
}

Status CheckBlockCapability(const v1::VolumeCapability& cap) {
  STRATA_RETURN_IF_ERROR(ValidateCapability(cap, "volume_capability"));
  if (!cap.has_block()) {
    return InvalidArgumentError(
        "volume_capability: only block volumes are supported by this node plugin so far "
        "(mount volumes are not)");
  }
  return Status::Ok();
}

}  // namespace

NodeServer::NodeServer(std::string node_id, std::string zone, std::unique_ptr<NodeHost> host)
    : node_id_(std::move(node_id)),
      zone_(std::move(zone)),
      host_(host ? std::move(host) : MakeLinuxNodeHost()) {}

grpc::Status NodeServer::NodeGetInfo(grpc::ServerContext*,
                                     const ::csi::v1::NodeGetInfoRequest* request,
                                     ::csi::v1::NodeGetInfoResponse* response) {
  return LoggedCall("NodeGetInfo", *request, [&] {
    response->set_node_id(node_id_);
    if (!zone_.empty()) {
      (*response->mutable_accessible_topology()->mutable_segments())[kZoneKey] = zone_;
    }
    return Status::Ok();
  });
}

grpc::Status NodeServer::NodeGetCapabilities(grpc::ServerContext*,
                                             const ::csi::v1::NodeGetCapabilitiesRequest* request,
                                             ::csi::v1::NodeGetCapabilitiesResponse* response) {
  return LoggedCall("NodeGetCapabilities", *request, [&] {
    response->add_capabilities()->mutable_rpc()->set_type(
        v1::NodeServiceCapability_RPC_Type_STAGE_UNSTAGE_VOLUME);
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

Status NodeServer::Stage(const v1::NodeStageVolumeRequest& req) {
  if (req.volume_id().empty()) return InvalidArgumentError("volume_id: required");
  if (req.staging_target_path().empty()) {
    return InvalidArgumentError("staging_target_path: required");
  }
  if (!req.has_volume_capability()) return InvalidArgumentError("volume_capability: required");
  STRATA_RETURN_IF_ERROR(CheckBlockCapability(req.volume_capability()));
  const auto& ctx = req.publish_context();
  const std::string wwn = ContextValue(ctx, "wwn");
  const std::string export_name = ContextValue(ctx, "exportName");
  const std::vector<std::string> portals = SplitPortals(ContextValue(ctx, "portals"));
  if (wwn.empty() || export_name.empty() || portals.empty()) {
    return InvalidArgumentError(
        "publish_context: wwn, exportName and portals are required (from "
        "ControllerPublishVolume)");
  }
  auto dm_name = DmNameForWwn(wwn);
  if (!dm_name.ok()) return dm_name.status();

  std::lock_guard<std::mutex> lock(mu_);
  for (const char* m : kModules) {
    if (!host_->HasModule(m)) {
      return FailedPreconditionError(std::string("kernel module ") + m +
                                     " is not loaded (no /sys/module/" + m +
                                     "): staging needs nbd, dm_multipath and dm_round_robin");
    }
  }
  std::error_code ec;
  if (!fs::is_directory(req.staging_target_path(), ec)) {
    return FailedPreconditionError("staging_target_path " + req.staging_target_path() +
                                   " is not a directory");
  }
  // Idempotent: staged already.
  if (auto st = ReadState(req.staging_target_path()); st.ok()) {
    if (st->dm_name != *dm_name) {
      return AlreadyExistsError("staging_target_path " + req.staging_target_path() +
                                " holds another volume (" + st->dm_name + ")");
    }
    if (host_->DmExists(st->dm_name)) return Status::Ok();
  }
  if (host_->DmExists(*dm_name)) {
    return AlreadyExistsError("dm device " + *dm_name + " exists but is not staged at " +
                              req.staging_target_path());
  }

  StageState state{*dm_name, {}};
  auto undo = [&] {
    for (int i : state.nbds) {
      if (Status s = host_->DisconnectNbd(i); !s.ok()) {
        spdlog::warn("NodeStageVolume: undo: nbd{}: {}", i, s.ToString());
      }
    }
    std::filesystem::remove(StatePath(req.staging_target_path()), ec);
  };
  std::vector<std::string> devs;
  uint64_t size = 0;
  for (const auto& portal : portals) {
    auto a = host_->ConnectNbd(portal, export_name);
    if (!a.ok()) {
      undo();
      return UnavailableError("portal " + portal + ": " + a.status().message());
    }
    state.nbds.push_back(a->index);
    devs.push_back(a->dev);
    if (size == 0) {
      size = a->size;
    } else if (a->size != size) {
      undo();
      return InternalError("portal " + portal + " announces " + std::to_string(a->size) +
                           " bytes, another " + std::to_string(size));
    }
  }
  // Written before the dm device, so an unstage after a crash still finds the nbds.
  if (Status s = WriteState(req.staging_target_path(), state); !s.ok()) {
    undo();
    return s;
  }
  if (Status s = host_->DmCreate(*dm_name, MultipathTable(size, devs)); !s.ok()) {
    undo();
    return s;
  }
  return Status::Ok();
}

Status NodeServer::Unstage(const v1::NodeUnstageVolumeRequest& req) {
  if (req.volume_id().empty()) return InvalidArgumentError("volume_id: required");
  if (req.staging_target_path().empty()) {
    return InvalidArgumentError("staging_target_path: required");
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto st = ReadState(req.staging_target_path());
  if (!st.ok()) {
    if (st.status().code() == StatusCode::kNotFound) return Status::Ok();  // unstaged already
    return st.status();
  }
  if (host_->DmExists(st->dm_name)) STRATA_RETURN_IF_ERROR(host_->DmRemove(st->dm_name));
  for (int i : st->nbds) {
    if (host_->NbdConnected(i)) STRATA_RETURN_IF_ERROR(host_->DisconnectNbd(i));
  }
  std::error_code ec;
  fs::remove(StatePath(req.staging_target_path()), ec);
  if (ec) return InternalError("cannot remove state file: " + ec.message());
  return Status::Ok();
}

Status NodeServer::Publish(const v1::NodePublishVolumeRequest& req) {
  if (req.volume_id().empty()) return InvalidArgumentError("volume_id: required");
  if (req.staging_target_path().empty()) {
    return InvalidArgumentError("staging_target_path: required");
  }
  if (req.target_path().empty()) return InvalidArgumentError("target_path: required");
  if (!req.has_volume_capability()) return InvalidArgumentError("volume_capability: required");
  STRATA_RETURN_IF_ERROR(CheckBlockCapability(req.volume_capability()));
  std::lock_guard<std::mutex> lock(mu_);
  auto st = ReadState(req.staging_target_path());
  if (!st.ok()) {
    if (st.status().code() == StatusCode::kNotFound) {
      return FailedPreconditionError("volume " + req.volume_id() + " is not staged at " +
                                     req.staging_target_path());
    }
    return st.status();
  }
  if (host_->IsMountPoint(req.target_path())) return Status::Ok();  // published already
  std::error_code ec;
  const fs::path target(req.target_path());
  if (target.has_parent_path()) fs::create_directories(target.parent_path(), ec);
  if (!fs::exists(target, ec)) {
    std::ofstream touch(req.target_path());
    if (!touch) return InternalError("cannot create target file " + req.target_path());
  }
  return host_->BindMount("/dev/mapper/" + st->dm_name, req.target_path(), req.readonly());
}

Status NodeServer::Unpublish(const v1::NodeUnpublishVolumeRequest& req) {
  if (req.volume_id().empty()) return InvalidArgumentError("volume_id: required");
  if (req.target_path().empty()) return InvalidArgumentError("target_path: required");
  std::lock_guard<std::mutex> lock(mu_);
  if (host_->IsMountPoint(req.target_path())) {
    STRATA_RETURN_IF_ERROR(host_->Unmount(req.target_path()));
  }
  std::error_code ec;
  fs::remove(req.target_path(), ec);
  if (ec) return InternalError("cannot remove " + req.target_path() + ": " + ec.message());
  return Status::Ok();
}

}  // namespace strata::csi
