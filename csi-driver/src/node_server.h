#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "csi/v1/csi.grpc.pb.h"
#include "in_flight.h"
#include "stage_state.h"
#include "strata/common/status.h"
#include "strata/csi/device_client.h"
#include "strata/csi/node_host.h"

namespace strata::csi {

struct NodeOptions {
  std::string node_id;  // NAME@IP (ParseNodeId accepts it)
  std::string zone;     // the node's zone (kZoneKey), or empty
  // Where the node remembers which volumes it staged (one file per dm device naming its
  // staging path), so a restarted plugin's path checker finds them again. Empty: memory
  // only.
  std::string state_dir;
  // The dm device of a LUN is DM_PREFIX + its WWN. Two plugins on one host (two drivers,
  // or the tests' two "nodes" in one VM) need different prefixes.
  std::string dm_prefix = "strata-";
  // NodeGetInfo's max_volumes_per_node (0: no limit announced).
  int64_t max_volumes = 0;
  // How long I/O queues while a volume has no path at all before it fails instead
  // (dm-multipath queue_if_no_path -> fail_if_no_path; multipathd's no_path_retry), so
  // applications get errors rather than hang for ever. Queueing resumes with a path.
  std::chrono::milliseconds no_path_queue{60000};
  // The clock of that timer (tests inject one). Null: steady_clock.
  std::function<std::chrono::steady_clock::time_point()> clock;
  // The NBD client TLS of every path the Linux host connects (--nbd-tls, #14); unused with
  // an injected host.
  NbdClientTls nbd_tls;
  // The management client for a device's gRPC address: used to follow a LUN that moved
  // to another device. Null: the gRPC client.
  std::function<DeviceClientPtr(const std::string& address)> device_factory;
};

// csi.v1.Node.
//
// Staging: one kernel nbd device per portal of the LUN, assembled with dm-multipath as
// /dev/mapper/<dm_prefix><wwn>; filesystem volumes are then formatted when blank and
// mounted at STAGING/fs. Publishing bind-mounts the device node (block) or STAGING/fs
// (filesystem) onto the target. What staging built is recorded in a state file inside
// staging_target_path, so unstage tears down exactly that.
//
// A portal that does not answer at stage time does not fail the stage while another
// does: the volume is staged degraded (its condition says so) and the checker adds the
// path when the portal answers.
//
// Paths: CheckPaths() (a thread when StartPathChecker is called) probes every path of
// every staged volume with a direct read; a path that fails is failed in dm-multipath
// (I/O stays on the others), and when its portal answers again the nbd device gets a new
// socket (NBD_CMD_RECONFIGURE) and the path is reinstated. When the LUN has moved to
// another device (the source's GetLun shows moved_to), the paths are swapped to the new
// device's portals under the same dm device: new nbd devices, an atomic table reload,
// the old ones disconnected. NodeExpandVolume uses the same swap to pick up a new size.
//
// A second call on a volume while one (or a path check of it) is in progress gets
// ABORTED (the CO retries); calls on different volumes are serialised by one mutex:
// staging is rare. The path checker takes each volume's in-flight key, not that mutex,
// so a slow probe never holds up calls on other volumes.
class NodeServer final : public ::csi::v1::Node::Service {
 public:
  // The name of the state file written inside staging_target_path, and of the mount
  // point of a filesystem volume there.
  static constexpr const char* kStateFile = kStageStateFile;
  static constexpr char kFsDir[] = "fs";

  // `host`: null = the Linux host.
  explicit NodeServer(NodeOptions options, std::unique_ptr<NodeHost> host = nullptr);
  NodeServer(std::string node_id, std::string zone, std::unique_ptr<NodeHost> host = nullptr);
  ~NodeServer() override;

  grpc::Status NodeGetInfo(grpc::ServerContext* context,
                           const ::csi::v1::NodeGetInfoRequest* request,
                           ::csi::v1::NodeGetInfoResponse* response) override;
  grpc::Status NodeGetCapabilities(grpc::ServerContext* context,
                                   const ::csi::v1::NodeGetCapabilitiesRequest* request,
                                   ::csi::v1::NodeGetCapabilitiesResponse* response) override;
  grpc::Status NodeStageVolume(grpc::ServerContext* context,
                               const ::csi::v1::NodeStageVolumeRequest* request,
                               ::csi::v1::NodeStageVolumeResponse* response) override;
  grpc::Status NodeUnstageVolume(grpc::ServerContext* context,
                                 const ::csi::v1::NodeUnstageVolumeRequest* request,
                                 ::csi::v1::NodeUnstageVolumeResponse* response) override;
  grpc::Status NodePublishVolume(grpc::ServerContext* context,
                                 const ::csi::v1::NodePublishVolumeRequest* request,
                                 ::csi::v1::NodePublishVolumeResponse* response) override;
  grpc::Status NodeUnpublishVolume(grpc::ServerContext* context,
                                   const ::csi::v1::NodeUnpublishVolumeRequest* request,
                                   ::csi::v1::NodeUnpublishVolumeResponse* response) override;
  grpc::Status NodeGetVolumeStats(grpc::ServerContext* context,
                                  const ::csi::v1::NodeGetVolumeStatsRequest* request,
                                  ::csi::v1::NodeGetVolumeStatsResponse* response) override;
  grpc::Status NodeExpandVolume(grpc::ServerContext* context,
                                const ::csi::v1::NodeExpandVolumeRequest* request,
                                ::csi::v1::NodeExpandVolumeResponse* response) override;

  // The logic of the calls above (no gRPC), for tests.
  Status Stage(const ::csi::v1::NodeStageVolumeRequest& req);
  Status Unstage(const ::csi::v1::NodeUnstageVolumeRequest& req);
  Status Publish(const ::csi::v1::NodePublishVolumeRequest& req);
  Status Unpublish(const ::csi::v1::NodeUnpublishVolumeRequest& req);
  Status GetVolumeStats(const ::csi::v1::NodeGetVolumeStatsRequest& req,
                        ::csi::v1::NodeGetVolumeStatsResponse* resp);
  Status Expand(const ::csi::v1::NodeExpandVolumeRequest& req,
                ::csi::v1::NodeExpandVolumeResponse* resp);

  // One pass of the path checker over every staged volume (see the class comment).
  // Returns what it changed, one line per action ("fail_path ...", "reinstate_path ...",
  // "swap ..."), for logs and tests.
  std::vector<std::string> CheckPaths();
  // Runs CheckPaths every `interval` on a thread until the server is destroyed.
  void StartPathChecker(std::chrono::milliseconds interval);

 private:
  // REQUIRES: the volume's in-flight key held. Replaces st->paths with one new path per portal (all
  // must connect and agree on the size) under the same dm device; the old nbds are disconnected.
  // Nothing changes on failure.
  Status SwapPaths(const std::string& staging, StageState* st,
                   const std::vector<std::string>& portals);
  // REQUIRES: the volume's in-flight key held. Connects the missing portals that answer now and
  // adds them to the dm table (one reload).
  void AddMissingPaths(const std::string& staging, StageState* st,
                       std::vector<std::string>* actions);
  // REQUIRES: the volume's in-flight key held. Applies no_path_queue to `dm_name`.
  void CheckNoPath(const std::string& dm_name, std::vector<std::string>* actions);
  // REQUIRES: the volume's in-flight key held. The checks of CheckPaths for one volume.
  void CheckVolume(const std::string& staging, std::vector<std::string>* actions);
  // The staging path of the volume behind `volume_path`.
  Result<std::string> StagingFor(const std::string& volume_path);
  void Remember(const std::string& dm_name, const std::string& staging);
  void Forget(const std::string& dm_name);
  DeviceClientPtr Device(const std::string& address);

  const NodeOptions options_;
  // The volumes with a call (or a path check) in progress.
  InFlightSet in_flight_;
  // Serialises the calls (not the path checker).
  std::mutex mu_;
  std::unique_ptr<NodeHost> host_;  // thread-safe
  // Volumes (dm names) without any active path: since when, and whether I/O was switched
  // to fail.
  struct NoPath {
    std::chrono::steady_clock::time_point since;
    bool failing = false;
  };
  std::mutex no_path_mu_;
  std::map<std::string, NoPath> no_path_;  // guarded by no_path_mu_
  std::mutex registry_mu_;
  std::map<std::string, std::string> staged_;       // dm name -> staging path; registry_mu_
  std::map<std::string, DeviceClientPtr> devices_;  // by address; registry_mu_

  std::mutex checker_mu_;
  std::condition_variable checker_cv_;
  bool stopping_ = false;
  std::thread checker_;
};

}  // namespace strata::csi
