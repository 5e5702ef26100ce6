#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "strata/common/result.h"
#include "strata/storage/v1/storage.pb.h"

namespace strata::op {

// The seam between reconcilers and storage devices' management API (strata.storage.v1).
// Implementations are thread-safe.
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

// gRPC (plaintext) with one channel per endpoint, reconnecting as device::NewDeviceChannel does
// (within about a second of a device coming back).
std::unique_ptr<DeviceClient> NewGrpcDeviceClient();

}  // namespace strata::op
