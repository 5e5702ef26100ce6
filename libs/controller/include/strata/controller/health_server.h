#pragma once

#include <functional>
#include <memory>
#include <string>

#include "strata/common/result.h"

namespace strata::ctrl {

// GET /healthz (the process serves) and GET /readyz (`ready()` says so: caches synced) over plain
// HTTP, for the kubelet's probes. Stops when destroyed.
class HealthServer {
 public:
  virtual ~HealthServer() = default;
};

// `address` is HOST:PORT or :PORT (all interfaces).
Result<std::unique_ptr<HealthServer>> StartHealthServer(const std::string& address,
                                                        std::function<bool()> ready);

}  // namespace strata::ctrl
