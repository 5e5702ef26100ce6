#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "csi/v1/csi.grpc.pb.h"
#include "strata/common/status.h"
#include "strata/csi/node_host.h"

namespace strata::csi {

// csi.v1.Node. Staging (block volumes only so far): one kernel nbd device per portal of
// the LUN, assembled with dm-multipath as /dev/mapper/strata-<wwn>; publishing bind-mounts
// that device node onto the target file. What staging built is recorded in a state file
// inside staging_target_path, so unstage tears down exactly that. Calls are serialised
// (one mutex): staging is rare and the host state is shared.
class NodeServer final : public ::csi::v1::Node::Service {
 public:
  // The name of the state file written inside staging_target_path.
  static constexpr char kStateFile[] = "strata-stage";

  // REQUIRES: node_id is "NAME@IP" (ParseNodeId accepts it). `zone`: the node's zone
  // (kZoneKey), or empty. `host`: null = the Linux host.
  NodeServer(std::string node_id, std::string zone, std::unique_ptr<NodeHost> host = nullptr);

  grpc::Status NodeGetInfo(grpc::ServerContext* context,
                           const ::csi::v1::NodeGetInfoRequest* request,
                           ::csi::v1::NodeGetInfoResponse* response) override;
  // STAGE_UNSTAGE_VOLUME.
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

  // The logic of the calls above (no gRPC), for tests.
  Status Stage(const ::csi::v1::NodeStageVolumeRequest& req);
  Status Unstage(const ::csi::v1::NodeUnstageVolumeRequest& req);
  Status Publish(const ::csi::v1::NodePublishVolumeRequest& req);
  Status Unpublish(const ::csi::v1::NodeUnpublishVolumeRequest& req);

 private:
  const std::string node_id_;
  const std::string zone_;
  std::mutex mu_;
  std::unique_ptr<NodeHost> host_;
};

}  // namespace strata::csi
