#pragma once

#include <string>

#include "csi/v1/csi.grpc.pb.h"

namespace strata::csi {

// csi.v1.Node, first part: NodeGetInfo and NodeGetCapabilities. Staging (nbd on every
// portal + dm-multipath) and publishing are not implemented yet (issue #6): those RPCs
// answer UNIMPLEMENTED. Thread-safe (no mutable state).
class NodeServer final : public ::csi::v1::Node::Service {
 public:
  // REQUIRES: node_id is "NAME@IP" (ParseNodeId accepts it). `zone`: the node's zone
  // (kZoneKey), or empty.
  NodeServer(std::string node_id, std::string zone);

  // node_id as given: the controller grants its IP on ControllerPublishVolume.
  grpc::Status NodeGetInfo(grpc::ServerContext* context,
                           const ::csi::v1::NodeGetInfoRequest* request,
                           ::csi::v1::NodeGetInfoResponse* response) override;
  // No capabilities yet: STAGE_UNSTAGE_VOLUME, EXPAND_VOLUME and VOLUME_CONDITION come
  // with NodeStageVolume.
  grpc::Status NodeGetCapabilities(grpc::ServerContext* context,
                                   const ::csi::v1::NodeGetCapabilitiesRequest* request,
                                   ::csi::v1::NodeGetCapabilitiesResponse* response) override;

 private:
  const std::string node_id_;
  const std::string zone_;
};

}  // namespace strata::csi
