#include "strata/operator/api/v1alpha1/storage_device.h"

#include "field_io.h"

namespace strata::op::api::v1alpha1 {

constexpr std::string_view kDesiredStates[] = {"Online", "Maintenance"};
constexpr std::string_view kDevicePhases[] = {"Pending", "Online", "Maintenance", "Degraded",
                                              "Offline"};
constexpr const char* kEndpointPattern =
    "^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?):[0-9]{1,5}$";

void Fields(auto& io, Is<StorageDeviceTier> auto& t) {
  io.Field("class", t.class_, kRequiredTierClass);
  io.Field("capacityBytes", t.capacity_bytes, {.required = true, .minimum = 1});
  io.Field("pricePerGiBHour", t.price_per_gib_hour, kNonNegative);
}

void Fields(auto& io, Is<StorageDeviceSpec> auto& s) {
  io.Field("endpoint", s.endpoint,
           {.required = true, .pattern = kEndpointPattern, .max_length = 261});
  io.Field("tiers", s.tiers,
           {.required = true, .min_items = 1, .max_items = 3, .map_key = "class"});
  io.Field("region", s.region, kLabelValueRule);
  io.Field("jurisdiction", s.jurisdiction, kLabelValueRule);
  io.Field("desiredState", s.desired_state, {.one_of = kDesiredStates});
}

void Fields(auto& io, Is<StorageDeviceTierStatus> auto& t) {
  io.Field("class", t.class_, kRequiredTierClass);
  io.Field("capacityBytes", t.capacity_bytes, kNonNegative);
  io.Field("usedBytes", t.used_bytes, kNonNegative);
  io.Field("healthy", t.healthy);
  io.Field("message", t.message);
}

void Fields(auto& io, Is<StorageDeviceStatus> auto& s) {
  io.Field("phase", s.phase, {.one_of = kDevicePhases});
  io.Field("capacityBytes", s.capacity_bytes, kNonNegative);
  io.Field("usedBytes", s.used_bytes, kNonNegative);
  io.Field("dedupRatio", s.dedup_ratio, kNonNegative);
  io.Field("deviceName", s.device_name);
  io.Field("deviceId", s.device_id);
  io.Field("version", s.version);
  io.Field("stateReason", s.state_reason);
  io.Field("lunCount", s.lun_count, kNonNegative);
  io.Field("portals", s.portals);
  io.Field("readIOPS", s.read_iops, kNonNegative);
  io.Field("writeIOPS", s.write_iops, kNonNegative);
  io.Field("tiers", s.tiers, {.map_key = "class"});
  ObjectStatusFields(io, s);
}

Result<StorageDevice> StorageDeviceFromJson(const kube::Json& json) {
  return ObjectFromJson<StorageDevice>(json);
}
kube::Json ToJson(const StorageDevice& device) { return ObjectToJson(device); }

}  // namespace strata::op::api::v1alpha1
