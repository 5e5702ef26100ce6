#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "strata/common/result.h"
#include "strata/storage/v1/storage.pb.h"

namespace strata::device {

namespace sv1 = ::strata::storage::v1;

// How long a call to a device may take unless a client is made with another deadline.
inline constexpr std::chrono::milliseconds kDefaultCallTimeout{10000};

// The management API (strata.storage.v1.StorageDevice) of one strata-stored, the seam every
// component talks to devices through (CSI driver, operator). One client per management address.
//
// Every error is a Status whose code is the gRPC code the device returned (NOT_FOUND,
// ALREADY_EXISTS, FAILED_PRECONDITION, ...) or UNAVAILABLE / DEADLINE_EXCEEDED when the device
// cannot be reached; the message names the call, the object and the address. Every call has a
// deadline. Implementations are thread-safe.
class Client {
 public:
  virtual ~Client() = default;

  // The management address (HOST:PORT or unix:PATH) this client talks to.
  virtual const std::string& address() const = 0;

  virtual Result<sv1::DeviceStatus> GetDeviceStatus() = 0;
  // Puts the device ONLINE or into MAINTENANCE; returns its status afterwards.
  virtual Result<sv1::DeviceStatus> SetDeviceState(sv1::DeviceState state,
                                                   const std::string& reason) = 0;

  virtual Result<sv1::Lun> CreateLun(const sv1::CreateLunRequest& request) = 0;
  virtual Status DeleteLun(const std::string& lun) = 0;
  virtual Result<sv1::Lun> GetLun(const std::string& lun) = 0;
  // Every LUN of the device (of `owner` when not empty), following the device's paging.
  virtual Result<std::vector<sv1::Lun>> ListLuns(const std::string& owner = "") = 0;
  virtual Result<sv1::Lun> ResizeLun(const std::string& lun, uint64_t size_bytes) = 0;
  // Replaces the LUN's access list (empty: nobody may connect).
  virtual Result<sv1::Lun> SetLunAccess(const std::string& lun,
                                        const std::vector<std::string>& clients) = 0;
  // Publications (storage.proto PublishLun / UnpublishLun): the node ids a LUN is published to,
  // each with the access entries it needs, changed together with the access list. Not pure:
  // the defaults return UNIMPLEMENTED (as does a device older than these calls).
  virtual Result<sv1::Lun> PublishLun(const std::string& lun, const std::string& node_id,
                                      const std::vector<std::string>& entries);
  // node_id empty: every node (the access list becomes empty).
  virtual Result<sv1::Lun> UnpublishLun(const std::string& lun, const std::string& node_id,
                                        const std::vector<std::string>& entries);
  virtual Result<sv1::LunStats> GetLunStats(const std::string& lun) = 0;
  virtual Result<sv1::Lun> SetLunDedup(const std::string& lun, bool dedup, bool fold_existing) = 0;

  // A move to another tier of this device, or (request.to_device set) to another device.
  virtual Result<sv1::Migration> MigrateLun(const sv1::MigrateLunRequest& request) = 0;
  virtual Result<sv1::Migration> GetMigration(const std::string& lun) = 0;
  // GetMigration as a long poll (GetMigrationRequest.wait_ms): the reply comes when the move
  // leaves RUNNING or after about `wait` (1 ms .. 60 s), whichever is first. A device older than
  // wait_ms answers at once, so a caller must not assume the wait passed. Not pure: the default
  // returns UNIMPLEMENTED.
  virtual Result<sv1::Migration> WaitMigration(const std::string& lun,
                                               std::chrono::milliseconds wait);
  virtual Result<sv1::Migration> CancelMigration(const std::string& lun) = 0;

  // Snapshots (storage.proto, StorageDevice.CreateSnapshot and the rest; a restore is CreateLun
  // with request.from_snapshot). Not pure so test doubles that do not care about snapshots need
  // not implement them: the defaults return UNIMPLEMENTED.
  //
  // Idempotent: the same name and source returns the existing snapshot; ALREADY_EXISTS when the
  // name belongs to a snapshot of another LUN; NOT_FOUND without the source LUN.
  virtual Result<sv1::Snapshot> CreateSnapshot(const sv1::CreateSnapshotRequest& request);
  // OK when the snapshot does not exist.
  virtual Status DeleteSnapshot(const std::string& snapshot);
  // NOT_FOUND when there is none of that name.
  virtual Result<sv1::Snapshot> GetSnapshot(const std::string& snapshot);
  // One page, as asked (filters, max_entries, starting_token passed through; ABORTED for a bad
  // starting_token), so a CSI ListSnapshots maps onto it directly.
  virtual Result<sv1::ListSnapshotsResponse> ListSnapshots(
      const sv1::ListSnapshotsRequest& request);
};

using ClientPtr = std::shared_ptr<Client>;

// A Client over gRPC (plaintext: the management API is bound to loopback or a management
// network) on a channel from NewDeviceChannel(address). Each call has a deadline of
// `call_timeout`.
ClientPtr NewGrpcClient(std::string address,
                        std::chrono::milliseconds call_timeout = kDefaultCallTimeout);

// Clients by management address, made on first use and shared. Thread-safe.
class ClientCache {
 public:
  using Factory = std::function<ClientPtr(const std::string& address)>;

  // `factory`: how a client is made (default: NewGrpcClient with kDefaultCallTimeout).
  explicit ClientCache(Factory factory = nullptr);

  // The client for `address`, made now if there is none.
  ClientPtr Get(const std::string& address);
  // Drops the client of `address` (its device was removed); calls in flight finish on it.
  void Forget(const std::string& address);
  size_t size() const;

 private:
  const Factory factory_;
  mutable std::mutex mu_;
  std::map<std::string, ClientPtr> clients_;  // guarded by mu_
};

}  // namespace strata::device
