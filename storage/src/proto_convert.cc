#include "proto_convert.h"

namespace strata::storage {

v1::TierClass ToProto(TierClass c) {
  switch (c) {
    case TierClass::kSsd:
      return v1::TIER_CLASS_SSD;
    case TierClass::kSas:
      return v1::TIER_CLASS_SAS;
    case TierClass::kSata:
      return v1::TIER_CLASS_SATA;
  }
  return v1::TIER_CLASS_UNSPECIFIED;
}

v1::DeviceState ToProto(DeviceState s) {
  switch (s) {
    case DeviceState::kOnline:
      return v1::DEVICE_STATE_ONLINE;
    case DeviceState::kMaintenance:
      return v1::DEVICE_STATE_MAINTENANCE;
    case DeviceState::kDegraded:
      return v1::DEVICE_STATE_DEGRADED;
  }
  return v1::DEVICE_STATE_UNSPECIFIED;
}

void ToProto(const DeviceStatus& in, v1::DeviceStatus* out) {
  out->set_name(in.name);
  out->set_device_id(in.device_id);
  out->set_state(ToProto(in.state));
  out->set_uptime_seconds(in.uptime_seconds);
  out->set_lun_count(in.lun_count);
  out->set_capacity_bytes(in.capacity_bytes);
  out->set_used_bytes(in.used_bytes);
  for (const HostPort& p : in.portals) out->add_portals(p.ToString());
  for (const TierStatus& t : in.tiers) {
    v1::TierStatus* pt = out->add_tiers();
    pt->set_class_(ToProto(t.config.tier_class));
    pt->set_path(t.config.path);
    pt->set_capacity_bytes(t.capacity_bytes);
    pt->set_used_bytes(t.used_bytes);
    pt->set_price_per_gib_hour(t.config.EffectivePrice());
    pt->set_healthy(t.healthy);
    pt->set_message(t.message);
  }
}

}  // namespace strata::storage
