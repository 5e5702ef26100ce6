#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "strata/common/result.h"

namespace strata::kubectl {

// Where a LUN lives now. A LUN that a maintenance window or a tiering policy moved keeps the
// volume handle (DEVICE/LUN) it was created with; the device it left proxies it and names where it
// went (Lun.moved_to), so only the devices know the live device, tier and portals.
struct LiveLun {
  std::string address;  // management address (host:port) of the device that holds it
  std::string tier;     // "ssd", "sas", "sata"; "" when the device does not say
  std::vector<std::string> portals;
  int moves = 0;  // moved_to hops followed
};

// The seam between `kubectl strata volumes` and the devices. Implementations are not required to
// be thread-safe.
class LunLocator {
 public:
  virtual ~LunLocator() = default;
  // Asks the device at `address` for `lun` and follows moved_to (a bounded number of hops).
  // UNAVAILABLE or DEADLINE_EXCEEDED when a device does not answer, NOT_FOUND when the LUN is not
  // there; messages name the address.
  virtual Result<LiveLun> Locate(const std::string& address, const std::string& lun) = 0;
};

// Over strata-stored's gRPC management API (libs/device), each call bounded by `deadline`. A device
// that did not answer once is not asked again by this locator (one slow device must not make the
// listing take a deadline per volume).
std::unique_ptr<LunLocator> NewGrpcLunLocator(std::chrono::milliseconds deadline);

}  // namespace strata::kubectl
