#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "strata/common/status.h"

namespace grpc {
class Channel;
class Status;
}  // namespace grpc

namespace strata::device {

// How soon a channel to a strata-stored management endpoint tries again after the device went
// away: every client of the management API (CSI driver, operator, strata-admin, device-to-device
// moves) reconnects within this much of a device coming back, instead of after gRPC's default
// backoff of up to two minutes. Calls made meanwhile fail at once with UNAVAILABLE.
inline constexpr int kMaxReconnectBackoffMs = 1000;

// A plaintext channel to the management API at `address` (HOST:PORT or unix:PATH) with the
// reconnect policy above. Thread-safe; share one per address.
std::shared_ptr<grpc::Channel> NewDeviceChannel(const std::string& address);

// A gRPC status as a Status: the codes are numbered alike (strata/common/status.h); `what`
// (the call and the device) prefixes the message.
Status FromGrpc(const grpc::Status& s, std::string_view what);

}  // namespace strata::device
