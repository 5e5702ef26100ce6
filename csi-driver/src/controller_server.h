#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "csi/v1/csi.grpc.pb.h"
#include "in_flight.h"
#include "strata/csi/device_client.h"
#include "strata/csi/device_registry.h"
#include "strata/csi/volume_util.h"

namespace strata::csi {

// Names of volumes with an operation in flight. A second operation on the same volume
// is refused with ABORTED (the CSI spec's "operation pending for volume"), so the
// device never sees two concurrent changes for one LUN from this driver.
// Thread-safe.

// csi.v1.Controller over the strata-stored devices of a DeviceRegistry. Volumes are LUNs
// named LunNameFor(CSI name); volume ids are "DEVICE/LUN" and keep naming the device a
// volume was created on: after a device-to-device move that device's LUN is a stub whose
// moved_to names the holder's management address, and every call on an existing volume
// follows moved_to (at most kMaxMoveHops) to act on the device that holds the LUN now.
// The driver keeps no state of its own: the devices' LUN tables are the truth (a LUN's
// access list is its publish state), so restarts and several replicas need no recovery.
// Thread-safe.
class ControllerServer final : public ::csi::v1::Controller::Service {
 public:
  // How many moves a volume may be followed through before the chain is taken for a loop.
  static constexpr int kMaxMoveHops = 4;

  explicit ControllerServer(std::shared_ptr<DeviceRegistry> devices);
  // A fixed set of devices. `zones`: device name -> its zone (kZoneKey); devices without
  // one are reachable from every node and their volumes carry no accessible_topology.
  explicit ControllerServer(std::vector<DeviceClientPtr> devices,
                            std::map<std::string, std::string> zones = {});

  grpc::Status CreateVolume(grpc::ServerContext* context,
                            const ::csi::v1::CreateVolumeRequest* request,
                            ::csi::v1::CreateVolumeResponse* response) override;
  grpc::Status DeleteVolume(grpc::ServerContext* context,
                            const ::csi::v1::DeleteVolumeRequest* request,
                            ::csi::v1::DeleteVolumeResponse* response) override;
  grpc::Status ControllerPublishVolume(
      grpc::ServerContext* context, const ::csi::v1::ControllerPublishVolumeRequest* request,
      ::csi::v1::ControllerPublishVolumeResponse* response) override;
  grpc::Status ControllerUnpublishVolume(
      grpc::ServerContext* context, const ::csi::v1::ControllerUnpublishVolumeRequest* request,
      ::csi::v1::ControllerUnpublishVolumeResponse* response) override;
  grpc::Status ValidateVolumeCapabilities(
      grpc::ServerContext* context, const ::csi::v1::ValidateVolumeCapabilitiesRequest* request,
      ::csi::v1::ValidateVolumeCapabilitiesResponse* response) override;
  grpc::Status ListVolumes(grpc::ServerContext* context,
                           const ::csi::v1::ListVolumesRequest* request,
                           ::csi::v1::ListVolumesResponse* response) override;
  grpc::Status GetCapacity(grpc::ServerContext* context,
                           const ::csi::v1::GetCapacityRequest* request,
                           ::csi::v1::GetCapacityResponse* response) override;
  grpc::Status ControllerGetCapabilities(
      grpc::ServerContext* context, const ::csi::v1::ControllerGetCapabilitiesRequest* request,
      ::csi::v1::ControllerGetCapabilitiesResponse* response) override;
  grpc::Status ControllerExpandVolume(grpc::ServerContext* context,
                                      const ::csi::v1::ControllerExpandVolumeRequest* request,
                                      ::csi::v1::ControllerExpandVolumeResponse* response) override;
  grpc::Status ControllerGetVolume(grpc::ServerContext* context,
                                   const ::csi::v1::ControllerGetVolumeRequest* request,
                                   ::csi::v1::ControllerGetVolumeResponse* response) override;
  // mutable_parameters tier and dedup, changed in place on the device that holds the volume:
  // SetLunDedup, then a live move to the tier (MigrateLun). OK once the move has started (it
  // runs in the background; ControllerGetVolume and the LUN's migration show it).
  // Snapshots: controller_snapshots.cc.
  grpc::Status CreateSnapshot(grpc::ServerContext* context,
                              const ::csi::v1::CreateSnapshotRequest* request,
                              ::csi::v1::CreateSnapshotResponse* response) override;
  grpc::Status DeleteSnapshot(grpc::ServerContext* context,
                              const ::csi::v1::DeleteSnapshotRequest* request,
                              ::csi::v1::DeleteSnapshotResponse* response) override;
  grpc::Status ListSnapshots(grpc::ServerContext* context,
                             const ::csi::v1::ListSnapshotsRequest* request,
                             ::csi::v1::ListSnapshotsResponse* response) override;
  grpc::Status ControllerModifyVolume(grpc::ServerContext* context,
                                      const ::csi::v1::ControllerModifyVolumeRequest* request,
                                      ::csi::v1::ControllerModifyVolumeResponse* response) override;

 private:
  // The Status-returning bodies; the overrides log and map them.
  Status Create(const ::csi::v1::CreateVolumeRequest& req, ::csi::v1::CreateVolumeResponse* resp);
  Status Delete(const ::csi::v1::DeleteVolumeRequest& req);
  Status Publish(const ::csi::v1::ControllerPublishVolumeRequest& req,
                 ::csi::v1::ControllerPublishVolumeResponse* resp);
  Status Unpublish(const ::csi::v1::ControllerUnpublishVolumeRequest& req);
  Status Validate(const ::csi::v1::ValidateVolumeCapabilitiesRequest& req,
                  ::csi::v1::ValidateVolumeCapabilitiesResponse* resp);
  Status List(const ::csi::v1::ListVolumesRequest& req, ::csi::v1::ListVolumesResponse* resp);
  Status Capacity(const ::csi::v1::GetCapacityRequest& req, ::csi::v1::GetCapacityResponse* resp);
  Status Expand(const ::csi::v1::ControllerExpandVolumeRequest& req,
                ::csi::v1::ControllerExpandVolumeResponse* resp);
  Status GetVolume(const ::csi::v1::ControllerGetVolumeRequest& req,
                   ::csi::v1::ControllerGetVolumeResponse* resp);
  Status Modify(const ::csi::v1::ControllerModifyVolumeRequest& req);
  Status TakeSnapshot(const ::csi::v1::CreateSnapshotRequest& req,
                      ::csi::v1::CreateSnapshotResponse* resp);
  Status DropSnapshot(const ::csi::v1::DeleteSnapshotRequest& req);
  Status ListSnaps(const ::csi::v1::ListSnapshotsRequest& req,
                   ::csi::v1::ListSnapshotsResponse* resp);

  // A device that had the LUN on the way to its holder, and the LUN there.
  struct Hop {
    DeviceClientPtr device;
    storage::v1::Lun lun;
  };
  // Follows the LUN of `id` from its named device through moved_to. On success `hops` ends
  // with the holder (moved_to empty); before it, the stubs of earlier devices. On an error
  // (the last device asked did not answer or does not have the LUN) `hops` holds the devices
  // that had it. NOT_FOUND when the named device has no such volume.
  Status Follow(const VolumeId& id, const DeviceClientPtr& first, std::vector<Hop>* hops);

  // Where a new volume goes among `candidates` (see Create). `short_of_space`: some
  // candidate was refused only for want of room (or of the tier) — another device may do.
  struct Placement {
    DeviceClientPtr best;
    std::string zone;
    std::string why_not;  // "; device X ..." for each refused candidate
    bool all_unreachable = false;
    bool short_of_space = false;
  };
  static Placement Place(const std::vector<DeviceInfo>& candidates, storage::v1::TierClass tier,
                         uint64_t size, const ::csi::v1::TopologyRequirement* topology);

  // The zone of a device ("" when it has none or is not a known device).
  std::string ZoneOf(const DeviceClientPtr& device) const;
  // The device of a volume id; NOT_FOUND for a malformed id or an unknown device.
  Result<DeviceClientPtr> DeviceOf(const VolumeId& id) const;

  const std::shared_ptr<DeviceRegistry> devices_;
  InFlightSet in_flight_;
};

// Snapshot metadata keys this driver writes: the CSI source volume id and the CSI name.
inline constexpr std::string_view kSnapshotSourceVolumeKey = "block.csi.strata.io/source-volume-id";
inline constexpr std::string_view kSnapshotCsiNameKey = "block.csi.strata.io/snapshot-name";

// Fills a CSI Snapshot from the device snapshot `s` on `device`: id DEVICE/NAME, the source
// volume id from its metadata (else DEVICE/source_lun), size, creation time, ready_to_use.
void FillSnapshot(const std::string& device, const storage::v1::Snapshot& s,
                  ::csi::v1::Snapshot* out);

// Fills a CSI Volume from a LUN on `device`: id, capacity, the volume_context the node
// needs (wwn, exportName, portals as a comma-separated list, device) and, when the
// device has a zone, accessible_topology.
void FillVolume(const std::string& device, const std::string& zone, const storage::v1::Lun& lun,
                ::csi::v1::Volume* out);

}  // namespace strata::csi
