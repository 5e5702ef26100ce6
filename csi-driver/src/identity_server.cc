#include "identity_server.h"

#include <utility>

#include "call_logging.h"
#include "strata/csi/volume_util.h"

namespace strata::csi {

IdentityServer::IdentityServer(std::string version, bool controller, bool topology,
                               std::shared_ptr<const DeviceRegistry> devices)
    : version_(std::move(version)),
      controller_(controller),
      topology_(topology),
      devices_(std::move(devices)) {}

namespace {
std::shared_ptr<const DeviceRegistry> Fixed(std::vector<DeviceClientPtr> devices) {
  auto set = std::make_shared<DeviceSet>();
  for (auto& d : devices) (void)set->AddFixed(DeviceInfo{std::move(d), "", "", ""});
  return set;
}
}  // namespace

IdentityServer::IdentityServer(std::string version, bool controller, bool topology,
                               std::vector<DeviceClientPtr> devices)
    : IdentityServer(std::move(version), controller, topology, Fixed(std::move(devices))) {}

grpc::Status IdentityServer::GetPluginInfo(grpc::ServerContext*,
                                           const ::csi::v1::GetPluginInfoRequest* request,
                                           ::csi::v1::GetPluginInfoResponse* response) {
  return LoggedCall("GetPluginInfo", *request, [&] {
    response->set_name(kDriverName);
    response->set_vendor_version(version_);
    return Status::Ok();
  });
}

grpc::Status IdentityServer::GetPluginCapabilities(
    grpc::ServerContext*, const ::csi::v1::GetPluginCapabilitiesRequest* request,
    ::csi::v1::GetPluginCapabilitiesResponse* response) {
  return LoggedCall("GetPluginCapabilities", *request, [&] {
    using PluginService = ::csi::v1::PluginCapability::Service;
    if (controller_) {
      response->add_capabilities()->mutable_service()->set_type(PluginService::CONTROLLER_SERVICE);
    }
    // Only with zones configured: without them every node can reach every device's
    // portals, and a plugin that advertises topology must report it everywhere.
    if (topology_) {
      response->add_capabilities()->mutable_service()->set_type(
          PluginService::VOLUME_ACCESSIBILITY_CONSTRAINTS);
    }
    response->add_capabilities()->mutable_volume_expansion()->set_type(
        ::csi::v1::PluginCapability::VolumeExpansion::ONLINE);
    return Status::Ok();
  });
}

grpc::Status IdentityServer::Probe(grpc::ServerContext*, const ::csi::v1::ProbeRequest* request,
                                   ::csi::v1::ProbeResponse* response) {
  return LoggedCall("Probe", *request, [&] {
    const std::vector<DeviceInfo> devices =
        devices_ ? devices_->Devices() : std::vector<DeviceInfo>();
    bool ready = devices.empty();
    for (const auto& info : devices) {
      auto st = info.client->GetDeviceStatus();
      if (st.ok()) {
        ready = true;
        break;
      }
      spdlog::warn("Probe: {}", st.status().ToString());
    }
    response->mutable_ready()->set_value(ready);
    return Status::Ok();
  });
}

}  // namespace strata::csi
