#include "node_server.h"

#include <utility>

#include "call_logging.h"
#include "strata/csi/volume_util.h"

namespace strata::csi {

NodeServer::NodeServer(std::string node_id, std::string zone)
    : node_id_(std::move(node_id)), zone_(std::move(zone)) {}

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
                                             ::csi::v1::NodeGetCapabilitiesResponse*) {
  return LoggedCall("NodeGetCapabilities", *request, [&] { return Status::Ok(); });
}

}  // namespace strata::csi
