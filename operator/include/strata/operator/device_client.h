#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "strata/common/result.h"
#include "strata/storage/v1/storage.pb.h"

namespace strata::op {

// The seam between reconcilers and storage devices' management API (strata.storage.v1), keyed by
// endpoint (a StorageDevice's spec.endpoint). The gRPC implementation is a thin layer over
// strata::device::ClientCache / device::Client (libs/device), the one client of the management
// API every component shares. Implementations are thread-safe.
class DeviceClient {
 public:
  virtual ~DeviceClient() = default;
  // UNAVAILABLE / DEADLINE_EXCEEDED when the device cannot be reached; the message names the
  // endpoint.
  virtual Result<storage::v1::DeviceStatus> GetDeviceStatus(const std::string& endpoint,
                                                            std::chrono::milliseconds timeout) = 0;
  // Puts the device ONLINE or into MAINTENANCE; returns its status afterwards.
  virtual Result<storage::v1::DeviceStatus> SetDeviceState(const std::string& endpoint,
                                                           storage::v1::DeviceState state,
                                                           const std::string& reason,
                                                           std::chrono::milliseconds timeout) = 0;
  // Drops any connection kept for `endpoint` (its StorageDevice was deleted).
  virtual void Forget(const std::string& endpoint) = 0;
};

// Over device::ClientCache: one device::Client (gRPC, plaintext) per endpoint, reconnecting as
// device::NewDeviceChannel does (within about a second of a device coming back). Each call's
// deadline is `call_timeout`: the clients are shared per endpoint, so the `timeout` arguments
// above are not consulted (the reconciler passes its options.device_timeout, which main gives
// here).
std::unique_ptr<DeviceClient> NewGrpcDeviceClient(
    std::chrono::milliseconds call_timeout = std::chrono::milliseconds(2000));

}  // namespace strata::op
