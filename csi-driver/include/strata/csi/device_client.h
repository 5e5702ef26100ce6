#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "strata/common/result.h"
#include "strata/device/client.h"
#include "strata/storage/v1/storage.pb.h"

namespace strata::csi {

namespace storage_v1 = ::strata::storage::v1;

// One strata-stored device as the CSI controller sees it: the seam between the CSI
// services and the storage management API, a named view of a device::Client (libs/device)
// with the calls the CSI services make. Every error is a Status whose code is the
// gRPC code the device returned (NOT_FOUND, ALREADY_EXISTS, RESOURCE_EXHAUSTED, ...)
// or UNAVAILABLE / DEADLINE_EXCEEDED when the device cannot be reached, so callers map
// it to the CSI reply with a cast. Implementations are thread-safe.
class DeviceClient {
 public:
  virtual ~DeviceClient() = default;

  // The --device NAME this driver knows the device by (the first part of volume ids).
  virtual const std::string& name() const = 0;
  // Its management (gRPC) address, when it has one: the node follows LUN moves with it.
  virtual std::string address() const { return {}; }

  virtual Result<storage_v1::DeviceStatus> GetDeviceStatus() = 0;
  virtual Result<storage_v1::Lun> CreateLun(const storage_v1::CreateLunRequest& request) = 0;
  virtual Status DeleteLun(const std::string& lun) = 0;
  virtual Result<storage_v1::Lun> GetLun(const std::string& lun) = 0;
  // Every LUN of the device (follows the device's paging).
  virtual Result<std::vector<storage_v1::Lun>> ListLuns() = 0;
  virtual Result<storage_v1::Lun> ResizeLun(const std::string& lun, uint64_t size_bytes) = 0;
  // Replaces the LUN's access list (empty: nobody may connect).
  virtual Result<storage_v1::Lun> SetLunAccess(const std::string& lun,
                                               const std::vector<std::string>& clients) = 0;

  // Records the node a LUN is published to with the access entries it needs, and adds them to
  // the access list (storage PublishLun); UnpublishLun undoes it (node_id empty: every node).
  // Not pure: the defaults return UNIMPLEMENTED, as a device older than these calls does (the
  // controller then changes the access list alone).
  virtual Result<storage_v1::Lun> PublishLun(const std::string& lun, const std::string& node_id,
                                             const std::vector<std::string>& entries);
  virtual Result<storage_v1::Lun> UnpublishLun(const std::string& lun, const std::string& node_id,
                                               const std::vector<std::string>& entries);

  // ControllerModifyVolume's calls. Not pure, so doubles that never modify volumes need not
  // implement them: the defaults return UNIMPLEMENTED.
  // Dedup on or off for an existing LUN; turning it on with `fold_existing` also folds the blocks
  // already written (in the background).
  virtual Result<storage_v1::Lun> SetLunDedup(const std::string& lun, bool dedup,
                                              bool fold_existing);
  // Starts a live move to another tier of this device (request.to_device empty) or to another
  // device.
  virtual Result<storage_v1::Migration> MigrateLun(const storage_v1::MigrateLunRequest& request);

  // Snapshots (CreateSnapshot, DeleteSnapshot, ListSnapshots, restores). Defaults:
  // UNIMPLEMENTED. CreateSnapshot is idempotent for the same name and source (ALREADY_EXISTS
  // for another source); DeleteSnapshot of a missing one is OK; GetSnapshot NOT_FOUND.
  virtual Result<storage_v1::Snapshot> CreateSnapshot(
      const storage_v1::CreateSnapshotRequest& request);
  virtual Status DeleteSnapshot(const std::string& snapshot);
  virtual Result<storage_v1::Snapshot> GetSnapshot(const std::string& snapshot);
  // Every snapshot of the device matching the request's filters (source_lun, name); follows
  // the device's paging (request.max_entries and starting_token are ignored).
  virtual Result<std::vector<storage_v1::Snapshot>> ListSnapshots(
      const storage_v1::ListSnapshotsRequest& request);
};

using DeviceClientPtr = std::shared_ptr<DeviceClient>;

// The device `name` through `client` (its address is the client's).
DeviceClientPtr MakeDeviceClient(std::string name, device::ClientPtr client);

// A DeviceClient over the strata.storage.v1 gRPC API at `address` (HOST:PORT, insecure:
// the management API is bound to loopback or a management network): device::NewGrpcClient.
// Each call has a deadline of `call_timeout`.
DeviceClientPtr MakeGrpcDeviceClient(std::string name, std::string address,
                                     std::chrono::milliseconds call_timeout);

}  // namespace strata::csi
