#pragma once

#include "strata/storage/device.h"
#include "strata/storage/v1/storage.pb.h"

namespace strata::storage {

// Engine value types -> wire messages of strata.storage.v1.
v1::TierClass ToProto(TierClass c);
v1::DeviceState ToProto(DeviceState s);
void ToProto(const DeviceStatus& in, v1::DeviceStatus* out);

}  // namespace strata::storage
