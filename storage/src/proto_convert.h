#pragma once

#include "strata/common/result.h"
#include "strata/storage/device.h"
#include "strata/storage/engine.h"
#include "strata/storage/io_stats.h"
#include "strata/storage/v1/storage.pb.h"

namespace strata::storage {

// Engine value types <-> wire messages of strata.storage.v1.
v1::TierClass ToProto(TierClass c);
// UNSPECIFIED is an error here; callers decide what "unset" means first.
Result<TierClass> FromProto(v1::TierClass c, const char* field);
v1::DeviceState ToProto(DeviceState s);
void ToProto(const SpaceStats& in, v1::SpaceStats* out);
void ToProto(const DeviceStatus& in, v1::DeviceStatus* out);
void ToProto(const TierMove& in, const std::string& lun, v1::Migration* out);
void ToProto(const LunInfo& in, const std::vector<HostPort>& portals, v1::Lun* out);
void ToProto(const SnapshotInfo& in, v1::Snapshot* out);
void ToProto(const LunIoStats::KindSnapshot& in, double iops, double bytes_per_second,
             v1::IoKindStats* out);

}  // namespace strata::storage
