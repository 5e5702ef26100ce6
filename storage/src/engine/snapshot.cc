// LUN snapshots: read-only maps sharing the source's leaves (see BlockMap), one
// journal record each (SnapRecord), restores sharing the snapshot's leaves.

#include <chrono>
#include <cinttypes>
#include <cstdio>

#include "engine_impl.h"

namespace strata::storage::engine {

std::vector<std::string> EngineImpl::SnapshotsOfLocked(uint64_t lun_id) const {
  std::vector<std::string> out;
  for (const auto& [name, snap] : snapshots_) {
    if (snap->snap.source_id == lun_id) out.push_back(name);
  }
  return out;
}

SnapshotInfo EngineImpl::SnapshotInfoLocked(const Lun& snap, bool with_space) const {
  const SnapRecord& r = snap.snap;
  SnapshotInfo i;
  i.name = r.name;
  // Engine ids can come back after a restart (the highest one deleted, then a
  // checkpoint): the creation time makes the id unique for good.
  char id[48];
  std::snprintf(id, sizeof(id), "%" PRIu64 "-%" PRIx64, r.id, r.created_unix_nanos);
  i.id = id;
  i.source_lun = r.source_lun;
  i.size_bytes = r.size_bytes;
  i.tier = tiers_[r.tier].config.tier_class;
  i.owner = r.owner;
  i.created_unix_nanos = r.created_unix_nanos;
  i.metadata = r.metadata;
  if (with_space) i.space = SpaceOfLocked(snap);
  return i;
}

Result<SnapshotInfo> EngineImpl::CreateSnapshot(
    const std::string& source, const std::string& name,
    const std::map<std::string, std::string>& metadata) {
  STRATA_RETURN_IF_ERROR(ValidateName(name));
  if (source.empty()) return InvalidArgumentError("source_lun: is required");
  STRATA_RETURN_IF_ERROR(ValidateLunMetadata(metadata));
  {
    ExclusiveLock lock(mu_);
    if (auto it = snapshots_.find(name); it != snapshots_.end()) {
      if (it->second->snap.source_lun == source) {
        return SnapshotInfoLocked(*it->second, /*with_space=*/false);
      }
      return AlreadyExistsError("name: snapshot '" + name + "' exists, taken of LUN '" +
                                it->second->snap.source_lun + "'");
    }
    auto src = FindLocked(source);
    if (!src) return NotFoundError("source_lun: LUN '" + source + "' not found");
    if (!src->rec.moved_to.empty()) {
      return FailedPreconditionError("source_lun: LUN '" + source + "' moved to device " +
                                     src->rec.moved_to + "; snapshot it there");
    }
    if (src->rec.write_tier != src->rec.tier || src->tracking.load()) {
      return FailedPreconditionError("source_lun: LUN '" + source +
                                     "' is moving; snapshot it when the move has ended");
    }
    auto snap = std::make_shared<Lun>();
    SnapRecord& r = snap->snap;
    r.id = next_lun_id_++;
    r.name = name;
    r.source_id = src->rec.id;
    r.source_lun = source;
    r.size_bytes = src->rec.size_bytes;
    r.tier = src->rec.tier;
    r.owner = src->rec.owner;
    r.created_unix_nanos =
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count());
    r.share_map_from = src->rec.id;
    r.metadata = metadata;
    snap->is_snapshot = true;
    snap->rec.id = r.id;
    snap->rec.name = name;
    snap->rec.size_bytes = r.size_bytes;
    snap->rec.tier = snap->rec.write_tier = r.tier;
    snap->rec.owner = r.owner;
    snap->size_bytes = r.size_bytes;
    snap->map.Resize(src->map.blocks());
    // Every acknowledged write of the source is in its map (writes map their blocks
    // under mu_, held here); sharing the leaves takes them all, copying nothing.
    snap->map.ShareFrom(src->map);
    // One record: after a crash the snapshot is whole (the record and everything
    // journaled before it) or absent (a torn tail drops the record).
    enc_.Snapshot(r);
    by_id_[r.id] = snap;
    snapshots_[name] = snap;
  }
  // Data first, then the journal with the source's pending mappings and the record.
  STRATA_RETURN_IF_ERROR(Flush());
  SharedLock lock(mu_);
  auto it = snapshots_.find(name);
  if (it == snapshots_.end()) return NotFoundError("snapshot '" + name + "' was deleted");
  return SnapshotInfoLocked(*it->second, /*with_space=*/false);
}

Status EngineImpl::DeleteSnapshot(const std::string& name) {
  {
    ExclusiveLock lock(mu_);
    auto it = snapshots_.find(name);
    if (it == snapshots_.end()) return NotFoundError("snapshot '" + name + "' not found");
    std::shared_ptr<Lun> snap = it->second;
    snap->deleted = true;
    snap->map.Release([&](BlockRef ref) { DecrefLocked(ref); });
    snapshots_.erase(it);
    by_id_.erase(snap->rec.id);
    enc_.DeleteLun(snap->rec.id);
  }
  return Flush();
}

Result<SnapshotInfo> EngineImpl::GetSnapshot(const std::string& name) {
  SharedLock lock(mu_);
  auto it = snapshots_.find(name);
  if (it == snapshots_.end()) return NotFoundError("snapshot '" + name + "' not found");
  return SnapshotInfoLocked(*it->second);
}

std::vector<SnapshotInfo> EngineImpl::ListSnapshots() {
  SharedLock lock(mu_);
  std::vector<SnapshotInfo> out;
  for (const auto& [name, snap] : snapshots_) out.push_back(SnapshotInfoLocked(*snap));
  return out;
}

Result<LunInfo> EngineImpl::RestoreSnapshot(const std::string& snapshot, const LunSpec& spec) {
  STRATA_RETURN_IF_ERROR(ValidateSpec(spec));
  if (!spec.wwn.empty()) return InvalidArgumentError("wwn: a restored LUN gets a new WWN");
  uint32_t want = 0;
  bool move = false;
  {
    ExclusiveLock lock(mu_);
    auto it = snapshots_.find(snapshot);
    if (it == snapshots_.end()) {
      return NotFoundError("from_snapshot: snapshot '" + snapshot + "' not found");
    }
    const Lun& snap = *it->second;
    const uint32_t tier = snap.rec.tier;
    want = tier;
    if (spec.tier) {
      STRATA_ASSIGN_OR_RETURN(int ti, TierIndex(*spec.tier));
      want = static_cast<uint32_t>(ti);
    }
    if (auto existing = FindLocked(spec.name)) {
      // A retry while the restore's tier move runs finds the LUN still on the
      // snapshot's tier, heading for `want`.
      const uint32_t as = existing->rec.write_tier == want ? existing->rec.tier : want;
      STRATA_ASSIGN_OR_RETURN(LunInfo info, SameLunLocked(*existing, spec, as));
      move = existing->rec.tier != want && existing->move.state != TierMove::State::kRunning;
      if (!move) return info;
    } else {
      if (spec.size_bytes < snap.rec.size_bytes) {
        return OutOfRangeError("size_bytes: " + std::to_string(spec.size_bytes) +
                               " bytes is less than snapshot '" + snapshot + "' (" +
                               std::to_string(snap.rec.size_bytes) + ")");
      }
      STRATA_RETURN_IF_ERROR(CheckFitsLocked(spec.size_bytes, want));
      auto lun = NewLunLocked(spec, tier);
      const LunRecord& r = lun->rec;
      // As CloneLun: journaled hidden, then its map, then under its name, so a torn
      // tail leaves a hidden LUN that the next Load drops.
      LunRecord hidden = r;
      hidden.name = kCloningPrefix + r.name;
      enc_.Lun(hidden);
      enc_.ShareMap(r.id, snap.rec.id);
      enc_.Lun(r);
      lun->map.ShareFrom(snap.map);
      by_name_[r.name] = lun;
      by_id_[r.id] = lun;
      move = want != tier;
    }
  }
  STRATA_RETURN_IF_ERROR(Flush());
  if (move) {
    // Another tier: a tier move right away (copy-on-write leaves the snapshot's
    // blocks where they are). The LUN is usable meanwhile.
    STRATA_RETURN_IF_ERROR(StartTierMove(spec.name, tiers_[want].config.tier_class));
  }
  return GetLun(spec.name);
}

}  // namespace strata::storage::engine
