#pragma once

#include <memory>
#include <string>
#include <vector>

#include "csi/v1/csi.grpc.pb.h"
#include "strata/csi/device_client.h"
#include "strata/csi/device_registry.h"

namespace strata::csi {

// csi.v1.Identity. Thread-safe (no mutable state).
class IdentityServer final : public ::csi::v1::Identity::Service {
 public:
  // `controller`: whether this process serves the Controller service (advertised as
  // CONTROLLER_SERVICE). `topology`: whether zones are configured (advertised as
  // VOLUME_ACCESSIBILITY_CONSTRAINTS). `devices`: those the controller manages (none in
  // node mode: Probe is then always ready).
  IdentityServer(std::string version, bool controller, bool topology,
                 std::shared_ptr<const DeviceRegistry> devices);
  IdentityServer(std::string version, bool controller, bool topology,
                 std::vector<DeviceClientPtr> devices);

  grpc::Status GetPluginInfo(grpc::ServerContext* context,
                             const ::csi::v1::GetPluginInfoRequest* request,
                             ::csi::v1::GetPluginInfoResponse* response) override;
  grpc::Status GetPluginCapabilities(grpc::ServerContext* context,
                                     const ::csi::v1::GetPluginCapabilitiesRequest* request,
                                     ::csi::v1::GetPluginCapabilitiesResponse* response) override;
  // ready=false while no device answers GetDeviceStatus within a short deadline.
  grpc::Status Probe(grpc::ServerContext* context, const ::csi::v1::ProbeRequest* request,
                     ::csi::v1::ProbeResponse* response) override;

 private:
  const std::string version_;
  const bool controller_;
  const bool topology_;
  const std::shared_ptr<const DeviceRegistry> devices_;  // null: none
};

}  // namespace strata::csi
