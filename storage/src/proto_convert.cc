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

Result<TierClass> FromProto(v1::TierClass c, const char* field) {
  switch (c) {
    case v1::TIER_CLASS_SSD:
      return TierClass::kSsd;
    case v1::TIER_CLASS_SAS:
      return TierClass::kSas;
    case v1::TIER_CLASS_SATA:
      return TierClass::kSata;
    default:
      return InvalidArgumentError(std::string(field) + ": tier class " + std::to_string(c) +
                                  " is not one of TIER_CLASS_SSD, TIER_CLASS_SAS, TIER_CLASS_SATA");
  }
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

void ToProto(const SpaceStats& in, v1::SpaceStats* out) {
  out->set_logical_bytes(in.logical_bytes);
  out->set_unique_bytes(in.unique_bytes);
  out->set_dedup_ratio(in.ratio());
  out->set_exclusive_bytes(in.exclusive_bytes);
  out->set_shared_bytes(in.shared_bytes);
  out->set_snapshot_bytes(in.snapshot_bytes);
}

void ToProto(const SnapshotInfo& in, v1::Snapshot* out) {
  out->set_name(in.name);
  out->set_id(in.id);
  out->set_source_lun(in.source_lun);
  out->set_size_bytes(in.size_bytes);
  out->set_created_unix_nanos(in.created_unix_nanos);
  out->set_ready_to_use(true);  // no copy to wait for: whole once created
  out->set_tier(ToProto(in.tier));
  out->set_owner(in.owner);
  out->set_unique_bytes(in.space.exclusive_bytes);
  out->set_shared_bytes(in.space.shared_bytes);
  out->mutable_metadata()->insert(in.metadata.begin(), in.metadata.end());
}

void ToProto(const DeviceStatus& in, v1::DeviceStatus* out) {
  out->set_name(in.name);
  out->set_device_id(in.device_id);
  out->set_state(ToProto(in.state));
  out->set_uptime_seconds(in.uptime_seconds);
  out->set_lun_count(in.lun_count);
  out->set_capacity_bytes(in.capacity_bytes);
  out->set_used_bytes(in.used_bytes);
  out->set_block_size(in.block_size);
  out->set_state_reason(in.state_reason);
  out->set_dedup_enabled(in.dedup_enabled);
  ToProto(in.space, out->mutable_space());
  for (const auto& [owner, space] : in.owners) {
    auto* o = out->add_owners();
    o->set_owner(owner);
    ToProto(space, o->mutable_space());
  }
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
    pt->set_indexed_blocks(t.indexed_blocks);
    pt->set_index_memory_bytes(t.index_memory_bytes);
  }
}

void ToProto(const TierMove& in, const std::string& lun, v1::Migration* out) {
  out->set_lun(lun);
  switch (in.state) {
    case TierMove::State::kNone:
      out->set_state(v1::MIGRATION_STATE_NONE);
      break;
    case TierMove::State::kRunning:
      out->set_state(v1::MIGRATION_STATE_RUNNING);
      break;
    case TierMove::State::kDone:
      out->set_state(v1::MIGRATION_STATE_DONE);
      break;
    case TierMove::State::kCancelled:
      out->set_state(v1::MIGRATION_STATE_CANCELLED);
      break;
    case TierMove::State::kFailed:
      out->set_state(v1::MIGRATION_STATE_FAILED);
      break;
  }
  if (in.state != TierMove::State::kNone) {
    out->set_from_tier(ToProto(in.from));
    out->set_to_tier(ToProto(in.to));
  }
  out->set_bytes_copied(in.bytes_copied);
  out->set_bytes_total(in.bytes_total);
  out->set_bytes_per_second(in.bytes_per_second);
  out->set_message(in.message);
  out->set_to_device(in.to_device);
  out->set_verified_bytes(in.verified_bytes);
  out->set_verify_seconds(in.verify_seconds);
}

void ToProto(const LunInfo& in, const std::vector<HostPort>& portals, v1::Lun* out) {
  out->set_name(in.name);
  out->set_id(in.id);
  out->set_wwn(in.wwn);
  out->set_size_bytes(in.size_bytes);
  out->set_tier(ToProto(in.tier));
  out->set_dedup(in.dedup);
  out->set_owner(in.owner);
  for (const auto& c : in.allowed_clients) out->mutable_access()->add_allowed_clients(c);
  if (in.allowed_clients.empty()) out->mutable_access();  // present and empty: nobody
  for (const auto& id : in.allowed_identities) out->mutable_access()->add_allowed_identities(id);
  out->set_created_unix(in.created_unix);
  ToProto(in.space, out->mutable_space());
  ToProto(in.move, in.name, out->mutable_migration());
  out->set_export_name(in.name);
  for (const HostPort& p : portals) out->add_portals(p.ToString());
  out->set_moved_to(in.moved_to);
  out->set_incoming(in.incoming);
  for (const auto& [node, entries] : in.publications) {
    auto* p = out->add_publications();
    p->set_node_id(node);
    for (const auto& e : entries) p->add_access_entries(e);
  }
  out->mutable_metadata()->insert(in.metadata.begin(), in.metadata.end());
}

void ToProto(const LunIoStats::KindSnapshot& in, double iops, double bytes_per_second,
             v1::IoKindStats* out) {
  out->set_ops(in.ops);
  out->set_bytes(in.bytes);
  out->set_errors(in.errors);
  out->set_iops(iops);
  out->set_bytes_per_second(bytes_per_second);
  out->set_latency_p50_ns(in.p50_ns);
  out->set_latency_p90_ns(in.p90_ns);
  out->set_latency_p99_ns(in.p99_ns);
  out->set_latency_p999_ns(in.p999_ns);
  out->set_latency_max_ns(in.max_ns);
}

}  // namespace strata::storage
