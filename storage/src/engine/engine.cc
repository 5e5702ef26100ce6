#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <future>
#include <unordered_set>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "engine_impl.h"
#include "hashed_write.h"
#include "strata/storage/copy_priority.h"
#include "xxh3_stream.h"

namespace strata::storage {
namespace engine {
namespace {

constexpr uint32_t kIndexedBit = 0x80000000u;
constexpr uint32_t kCountMask = 0x7fffffffu;
constexpr char kSnapshotMagic[8] = {'S', 'T', 'R', 'S', 'N', 'A', 'P', '1'};

// A LUN that moved to another device, with no way to reach it from here.
Status MovedAway(const Lun& lun) {
  return UnavailableError("LUN " + lun.rec.name + " moved to device " + lun.rec.moved_to +
                          "; connect to that device's portals");
}

// The bytes [from, from + length) of the pieces taken one after another, as pieces.
void SubPieces(std::span<const std::span<const char>> pieces, uint64_t from, uint64_t length,
               std::vector<std::span<const char>>* out) {
  out->clear();
  for (const auto& p : pieces) {
    if (length == 0) break;
    if (from >= p.size()) {
      from -= p.size();
      continue;
    }
    const size_t k = static_cast<size_t>(std::min<uint64_t>(p.size() - from, length));
    out->emplace_back(p.data() + from, k);
    length -= k;
    from = 0;
  }
}

void JoinPieces(std::span<const std::span<const char>> pieces, std::vector<char>* out) {
  out->clear();
  for (const auto& p : pieces) out->insert(out->end(), p.begin(), p.end());
}

bool PiecesAreZero(std::span<const std::span<const char>> pieces) {
  for (const auto& p : pieces) {
    if (!IsZero(p.data(), p.size())) return false;
  }
  return true;
}

std::string MakeWwn(uint64_t device_id, uint64_t lun_id, uint64_t created) {
  uint64_t parts[3] = {device_id, lun_id, created};
  uint64_t h = XXH3_64bits(parts, sizeof(parts)) & ((1ull << 60) - 1);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "naa.3%015" PRIx64, h);
  return buf;
}

// XXH3-64 of consecutive `range_bytes` ranges of a LUN's `size` bytes, fed in order
// (nullptr: zeros), into (*out)[i]: the values ChecksumsInner gives for the same
// contents. A range that is all zeros is not hashed byte by byte (its value is
// computed once per length): a sparse LUN costs little.
class RangeHasher {
 public:
  RangeHasher(uint64_t range_bytes, uint64_t size, std::vector<uint64_t>* out)
      : range_bytes_(range_bytes), size_(size), out_(out) {}

  void Feed(const char* data, uint64_t n) {
    while (n > 0 && pos_ < size_) {
      const uint64_t range_end = std::min(size_, (pos_ / range_bytes_ + 1) * range_bytes_);
      const uint64_t k = std::min(n, range_end - pos_);
      if (data) {
        FeedZeros();
        state_.Update(data, k);
        touched_ = true;
        data += k;
      } else {
        zeros_ += k;
      }
      pos_ += k;
      n -= k;
      if (pos_ == range_end) Digest();
    }
  }

  // True once every range was digested.
  bool Done() const { return pos_ == size_; }

 private:
  static constexpr size_t kZeroBytes = 64 << 10;
  static const char* Zeros() {
    static const std::vector<char> zeros(kZeroBytes, 0);
    return zeros.data();
  }

  void FeedZeros() {
    while (zeros_ > 0) {
      const uint64_t k = std::min<uint64_t>(zeros_, kZeroBytes);
      state_.Update(Zeros(), k);
      zeros_ -= k;
    }
  }

  void Digest() {
    const uint64_t index = (pos_ - 1) / range_bytes_;
    const uint64_t length = pos_ - index * range_bytes_;
    uint64_t h = 0;
    if (touched_) {
      FeedZeros();
      h = state_.Digest();
    } else {
      auto it = zero_sums_.find(length);
      if (it == zero_sums_.end()) {
        zeros_ = length;
        FeedZeros();
        it = zero_sums_.emplace(length, state_.Digest()).first;
      }
      h = it->second;
    }
    (*out_)[index] = h;
    state_.Reset();
    touched_ = false;
    zeros_ = 0;
  }

  const uint64_t range_bytes_;
  const uint64_t size_;
  std::vector<uint64_t>* const out_;
  Xxh3Stream state_;
  uint64_t pos_ = 0;
  uint64_t zeros_ = 0;  // zeros fed but not yet hashed
  bool touched_ = false;
  std::map<uint64_t, uint64_t> zero_sums_;  // length -> XXH3 of that many zeros
};

// A dedup LUN's write received straight into slots of its write tier, through the
// tier's mapping: slots taken from the reserve (EngineImpl::TakePlacement), each block
// fingerprinted as its receive completes it, and Commit maps the blocks it keeps
// where they landed (EngineImpl::CommitPlaced): one copy (socket -> tier) instead of
// two (socket -> buffer -> tier). Holds no lock while receiving, only the slots, which
// no map references: a client that stops sending holds them as it would a buffer.
// Slots Commit did not keep (dedup hits, zeros, repeats), and all of them when the
// write is abandoned, go back to the reserve.
class PlacedIncomingWrite final : public IncomingWrite {
 public:
  using CommitFn = std::function<Status(PlacedIncomingWrite&)>;

  PlacedIncomingWrite(EngineImpl* engine, std::shared_ptr<Lun> lun, uint64_t offset,
                      uint32_t length, bool fua, uint32_t tier, std::vector<uint64_t> slots,
                      CommitFn commit)
      : engine_(engine),
        lun_(std::move(lun)),
        offset_(offset),
        length_(length),
        fua_(fua),
        tier_(tier),
        slots_(std::move(slots)),
        used_(new bool[slots_.size()]()),
        commit_(std::move(commit)) {
    fps_.reserve(slots_.size());
  }
  ~PlacedIncomingWrite() override {
    std::vector<uint64_t> unused;
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (!used_[i]) unused.push_back(slots_[i]);
    }
    engine_->ReturnPlacement(tier_, unused);
  }

  std::span<char> NextSpace() override {
    std::span<char> space;
    NextSpaces(&space, 1);
    return space;
  }
  // Each run of consecutive slots is one space; together at most kPieceBytes, so a
  // receive's blocks are hashed while still in cache. Slots scattered by earlier
  // random overwrites still take one receive per piece, not one per block.
  size_t NextSpaces(std::span<char>* out, size_t max) override {
    const uint32_t bs = engine_->block_size();
    size_t pos = received_;
    size_t total = 0;
    size_t count = 0;
    while (count < max && pos < length_ && total < kPieceBytes) {
      const size_t k = pos / bs;
      size_t j = k + 1;  // up to the end of this run of consecutive slots
      while (j < slots_.size() && slots_[j] == slots_[k] + (j - k)) ++j;
      const size_t n = std::min<size_t>(j * bs - pos, kPieceBytes - total);
      out[count++] = {engine_->PlacedSpace(tier_, slots_[k]) + pos % bs, n};
      pos += n;
      total += n;
    }
    return count;
  }
  void Received(size_t n) override {
    const uint32_t bs = engine_->block_size();
    received_ += std::min<size_t>(n, length_ - received_);
    for (; (fps_.size() + 1) * bs <= received_;) {
      fps_.push_back(engine_->BlockFingerprint(engine_->PlacedSpace(tier_, slots_[fps_.size()])));
    }
  }
  Status Commit() override {
    if (received_ != length_) {
      return InternalError("write committed with " + std::to_string(received_) + " of " +
                           std::to_string(length_) + " bytes received");
    }
    return commit_(*this);
  }

  // For the commit (LunVolume): the engine's half.
  Status CommitToEngine() {
    return engine_->CommitPlaced(*lun_, offset_, slots_.size(), tier_, slots_, fps_, fua_,
                                 used_.get());
  }

  // At most this much lands per receive before its blocks are hashed.
  static constexpr size_t kPieceBytes = 128 << 10;

 private:
  EngineImpl* const engine_;
  const std::shared_ptr<Lun> lun_;
  const uint64_t offset_;
  const uint32_t length_;
  const bool fua_;
  const uint32_t tier_;
  const std::vector<uint64_t> slots_;
  const std::unique_ptr<bool[]> used_;  // slots_[i] kept by the commit
  CommitFn commit_;
  size_t received_ = 0;
  std::vector<Fingerprint> fps_;
};

// A LUN as the data path sees it. With a client IP, every request re-checks the
// access list, so revoking a client (ControllerUnpublish) stops its I/O at once, and
// counts as client I/O that a device move's copy yields to (EngineImpl::ClientIo).
class LunVolume final : public Volume {
 public:
  LunVolume(EngineImpl* engine, std::shared_ptr<Lun> lun, std::optional<ClientInfo> client)
      : engine_(engine),
        lun_(std::move(lun)),
        client_(std::move(client)),
        open_(engine, client_.has_value()) {}

  uint64_t size_bytes() const override { return lun_->size_bytes.load(); }
  uint32_t block_size() const override { return engine_->block_size(); }
  bool read_only() const override { return false; }

  Status Read(uint64_t offset, std::span<char> out) override {
    STRATA_RETURN_IF_ERROR(Check());
    EngineImpl::ClientIo io(engine_, client_.has_value());
    return engine_->Read(*lun_, offset, out);
  }
  Status Write(uint64_t offset, std::span<const char> data, bool fua) override {
    STRATA_RETURN_IF_ERROR(Check());
    EngineImpl::ClientIo io(engine_, client_.has_value());
    return engine_->Write(*lun_, offset, data, fua);
  }
  Status WriteV(uint64_t offset, std::span<const std::span<const char>> pieces, bool fua) override {
    STRATA_RETURN_IF_ERROR(Check());
    EngineImpl::ClientIo io(engine_, client_.has_value());
    return engine_->WriteV(*lun_, offset, pieces, fua);
  }
  std::unique_ptr<OutgoingRead> BeginRead(uint64_t offset, uint32_t length) override {
    if (!Check().ok()) return nullptr;  // Read says why
    return engine_->BeginRead(*lun_, offset, length, client_.has_value());
  }
  // A dedup LUN's aligned write of up to kRunBlocks blocks is received straight into
  // slots of its write tier (PlacedIncomingWrite); a plain LUN's in-place overwrite of
  // a queued payload straight into its slots (EngineImpl::BeginWrite). Others, and any
  // the placement cannot take now (no mapping, a short reserve, a move), take the
  // caller's buffer and Write.
  std::unique_ptr<IncomingWrite> BeginWrite(uint64_t offset, uint32_t length, bool fua,
                                            const IncomingPayload& payload) override {
    if (!Check().ok()) return nullptr;  // Write says why
    if (!lun_->dedup.load(std::memory_order_acquire)) {
      return engine_->BeginWrite(lun_, offset, length, fua, payload, client_.has_value());
    }
    const uint32_t bs = engine_->block_size();
    if (length == 0 || offset % bs != 0 || length % bs != 0 ||
        length / bs > EngineImpl::run_blocks()) {
      return nullptr;
    }
    std::vector<uint64_t> slots(length / bs);
    uint32_t tier = 0;
    if (!engine_->TakePlacement(*lun_, slots.size(), &tier, slots.data())) return nullptr;
    return std::make_unique<PlacedIncomingWrite>(
        engine_, lun_, offset, length, fua, tier, std::move(slots), [this](PlacedIncomingWrite& w) {
          STRATA_RETURN_IF_ERROR(Check());
          EngineImpl::ClientIo io(engine_, client_.has_value());
          return w.CommitToEngine();
        });
  }
  // EngineImpl::WriteHashed through the same checks as Write.
  Status WriteHashed(uint64_t offset, std::span<const char> data, std::span<const Fingerprint> fps,
                     bool fua) {
    STRATA_RETURN_IF_ERROR(Check());
    EngineImpl::ClientIo io(engine_, client_.has_value());
    return engine_->WriteHashed(*lun_, offset, data, fps, fua);
  }
  Status WriteZeroes(uint64_t offset, uint64_t length, bool fua) override {
    STRATA_RETURN_IF_ERROR(Check());
    EngineImpl::ClientIo io(engine_, client_.has_value());
    return engine_->Zero(*lun_, offset, length, fua);
  }
  Status Trim(uint64_t offset, uint64_t length) override {
    STRATA_RETURN_IF_ERROR(Check());
    EngineImpl::ClientIo io(engine_, client_.has_value());
    return engine_->Zero(*lun_, offset, length, false);
  }
  Status Flush() override {
    STRATA_RETURN_IF_ERROR(Check());
    EngineImpl::ClientIo io(engine_, client_.has_value());
    return engine_->FlushLun(*lun_);
  }
  LunIoStats* io_stats() override { return &lun_->stats; }

 private:
  Status Check() {
    // A stub (its LUN moved away, its I/O passed on to the device holding it) stays
    // usable by what opened it after it is deleted: a move back onto this device deletes
    // it to make room for the incoming copy, and a client connected here (a maintenance
    // window's restore) goes on through the device holding the LUN, which after the move's
    // switch passes the I/O back here, to the new LUN.
    if (lun_->deleted.load() && !lun_->proxy) {
      return UnavailableError("LUN " + lun_->rec.name + " was deleted");
    }
    if (client_ && !engine_->StillAllowed(*lun_, *client_)) {
      return PermissionDeniedError("client " + client_->peer_address +
                                   " is no longer allowed on LUN " + lun_->rec.name);
    }
    return Status::Ok();
  }

  EngineImpl* const engine_;
  const std::shared_ptr<Lun> lun_;
  const std::optional<ClientInfo> client_;
  const EngineImpl::ClientVolume open_;
};

// The end of the run that starts at block i (not a hole): the blocks after it at
// consecutive LBAs held by consecutive slots of the same tier (one pread, one mapped span).
size_t SlotRunEnd(const std::vector<uint64_t>& lbas, const std::vector<BlockRef>& refs, size_t i) {
  size_t j = i + 1;
  while (j < lbas.size() && refs[j] != kHole && lbas[j] == lbas[j - 1] + 1 &&
         RefTier(refs[j]) == RefTier(refs[i]) && RefSlot(refs[j]) == RefSlot(refs[i]) + (j - i)) {
    ++j;
  }
  return j;
}

}  // namespace

bool IsZero(const char* p, size_t n) {
  // Compare in words; blocks are 4-64 KiB and 8-byte aligned in practice.
  static const char kZeros[4096] = {};
  while (n >= sizeof(kZeros)) {
    if (std::memcmp(p, kZeros, sizeof(kZeros)) != 0) return false;
    p += sizeof(kZeros);
    n -= sizeof(kZeros);
  }
  return std::memcmp(p, kZeros, n) == 0;
}

Status WriteWithFingerprints(Volume& volume, uint64_t offset, std::span<const char> data,
                             std::span<const Fingerprint> fps, bool fua) {
  auto* lun = dynamic_cast<LunVolume*>(&volume);
  if (lun == nullptr) return InvalidArgumentError("volume: not a LUN of this engine");
  return lun->WriteHashed(offset, data, fps, fua);
}

Status ValidateName(const std::string& name) {
  if (name.empty() || name.size() > 128) {
    return InvalidArgumentError("name: must be 1-128 characters, got " +
                                std::to_string(name.size()));
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) {
      return InvalidArgumentError("name: '" + name +
                                  "' may only hold letters, digits, '-', '_' and '.'");
    }
  }
  return Status::Ok();
}

EngineImpl::EngineImpl(Env* env, EngineOptions options)
    : env_(env), options_(std::move(options)), bs_(options_.block_size) {
  const CopyPacing& p = options_.copy_pacing;
  if (p.mode == CopyPacing::Mode::kAdaptive) {
    CopyRateController::Options o;
    o.floor_bytes_per_second = p.floor_bytes_per_second;
    o.ceiling_bytes_per_second = p.ceiling_bytes_per_second;
    o.target_factor = p.target_factor;
    o.target = p.target_latency;
    copy_rate_ = std::make_unique<CopyRateController>(o);
    latency_tap_ = std::make_unique<ClientLatencyTap>(copy_rate_.get(), this);
  }
}

EngineImpl::~EngineImpl() {
  stopping_ = true;
  std::vector<std::thread> movers;
  {
    std::lock_guard lock(movers_mu_);
    stop_cv_.notify_all();  // fold passes waiting out their throttle
    movers.swap(movers_);
  }
  for (auto& t : movers) t.join();
  (void)FlushInternal(false);
}

Result<int> EngineImpl::TierIndex(TierClass c) const {
  for (size_t i = 0; i < tiers_.size(); ++i) {
    if (tiers_[i].config.tier_class == c) return static_cast<int>(i);
  }
  std::string have;
  for (const auto& t : tiers_) {
    have += (have.empty() ? "" : ", ") + std::string(TierClassName(t.config.tier_class));
  }
  return InvalidArgumentError("tier: '" + std::string(TierClassName(c)) +
                              "' is not a disk group of this device (it has: " + have + ")");
}

Status EngineImpl::Load() {
  const uint32_t bs = bs_;
  if (bs < 4096 || bs > 65536 || (bs & (bs - 1)) != 0) {
    return InvalidArgumentError("block_size: " + std::to_string(bs) +
                                " is not a power of two from 4096 to 65536");
  }
  if (options_.tiers.empty()) return InvalidArgumentError("tiers: at least one is required");
  if (options_.tier_capacity_bytes.size() != options_.tiers.size()) {
    return InvalidArgumentError("tier_capacity_bytes: one entry per tier is required");
  }
  tiers_.resize(options_.tiers.size());
  for (size_t i = 0; i < tiers_.size(); ++i) {
    TierStore& t = tiers_[i];
    t.config = options_.tiers[i];
    STRATA_ASSIGN_OR_RETURN(PathInfo info, env_->Stat(t.config.path));
    std::string data_path =
        info.kind == PathKind::kBlockDevice ? t.config.path : t.config.path + "/blocks.dat";
    STRATA_ASSIGN_OR_RETURN(t.file, env_->OpenFile(data_path, true));
    t.capacity_slots = options_.tier_capacity_bytes[i] / bs;
    STRATA_ASSIGN_OR_RETURN(t.written_end, t.file->Size());
    t.mapping = TierMapping::Create(*t.file, info.kind, t.capacity_slots * bs);
    t.view = t.mapping ? t.mapping->data() : t.file->MapForRead(t.capacity_slots * bs);
    if (t.StoresThroughMapping()) {
      // Before anything reads the slots: a rewrite a killed process left half done.
      STRATA_ASSIGN_OR_RETURN(
          t.rewrite_log, RewriteLog::Open(env_, t.config.path + "/rewrite.log", bs, kRewriteMaxRun,
                                          RewriteLog::kMaxLanes));
      if (t.rewrite_log != nullptr) {
        if (size_t n = t.rewrite_log->Recover(t.mapping->data(), t.written_end)) {
          spdlog::info("tier {}: completed an interrupted rewrite of {} block(s)", t.config.path,
                       n);
        }
      }
    }
    if (options_.max_pending_free_bytes > 0) {
      uint64_t limit = std::min(options_.max_pending_free_bytes / bs, t.capacity_slots / 8);
      // At least one run's worth, so a single large write never flushes on its own.
      t.max_pending_free = static_cast<size_t>(std::max<uint64_t>(limit, kRunBlocks));
    }
  }

  // Snapshot, then the journal generation that follows it.
  uint64_t gen = 1;
  std::map<BlockRef, bool> indexed_refs;
  ReplayHandlers h;
  h.on_lun = [&](const LunRecord& r) {
    auto it = by_id_.find(r.id);
    std::shared_ptr<Lun> lun;
    if (it == by_id_.end()) {
      lun = std::make_shared<Lun>();
      TapLatency(*lun);
      by_id_[r.id] = lun;
    } else {
      lun = it->second;
      if (lun->rec.name != r.name) by_name_.erase(lun->rec.name);
    }
    lun->rec = r;
    lun->dedup = r.dedup;
    lun->size_bytes = r.size_bytes;
    lun->map.Resize((r.size_bytes + bs - 1) / bs);
    by_name_[r.name] = lun;
    next_lun_id_ = std::max(next_lun_id_, r.id + 1);
  };
  h.on_delete = [&](uint64_t id) {
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return;
    (it->second->is_snapshot ? snapshots_ : by_name_).erase(it->second->rec.name);
    by_id_.erase(it);
    next_lun_id_ = std::max(next_lun_id_, id + 1);
  };
  h.on_map = [&](const MapRecord& m) {
    auto it = by_id_.find(m.lun_id);
    if (it == by_id_.end() || m.lba >= it->second->map.blocks()) return;
    it->second->map.Set(m.lba, m.ref);
    if (m.ref != kHole) indexed_refs[m.ref] = m.indexed;
  };
  h.on_snapshot = [&](const SnapRecord& r) {
    auto snap = std::make_shared<Lun>();
    snap->is_snapshot = true;
    snap->snap = r;
    snap->rec.id = r.id;
    snap->rec.name = r.name;
    snap->rec.size_bytes = r.size_bytes;
    snap->rec.tier = snap->rec.write_tier = r.tier;
    snap->rec.owner = r.owner;
    snap->size_bytes = r.size_bytes;
    snap->map.Resize((r.size_bytes + bs - 1) / bs);
    if (r.share_map_from != 0) {
      auto src = by_id_.find(r.share_map_from);
      if (src != by_id_.end()) snap->map.ShareFrom(src->second->map);
    }
    if (auto old = by_id_.find(r.id); old != by_id_.end()) {
      (old->second->is_snapshot ? snapshots_ : by_name_).erase(old->second->rec.name);
    }
    by_id_[r.id] = snap;
    snapshots_[r.name] = snap;
    next_lun_id_ = std::max(next_lun_id_, r.id + 1);
  };
  h.on_share_map = [&](uint64_t dst, uint64_t src) {
    auto d = by_id_.find(dst);
    auto from = by_id_.find(src);
    if (d == by_id_.end() || from == by_id_.end()) return;
    d->second->map.Release([](BlockRef) {});
    d->second->map.ShareFrom(from->second->map);
  };

  auto snap = env_->ReadFile(SnapshotPath());
  if (snap.ok()) {
    if (snap->size() < 16 || std::memcmp(snap->data(), kSnapshotMagic, 8) != 0) {
      return Status(StatusCode::kDataLoss, SnapshotPath() + ": not a Strata snapshot");
    }
    gen = 0;
    for (int i = 0; i < 8; ++i) {
      gen |= static_cast<uint64_t>(static_cast<uint8_t>((*snap)[8 + i])) << (8 * i);
    }
    ReplayResult rr;
    STRATA_RETURN_IF_ERROR(Replay(std::string_view(*snap).substr(16), h, &rr));
    if (rr.valid_bytes != snap->size() - 16) {
      // Snapshots are written atomically: a short one is damage, not a torn tail.
      return Status(StatusCode::kDataLoss,
                    SnapshotPath() + ": truncated at byte " + std::to_string(16 + rr.valid_bytes));
    }
  } else if (snap.status().code() != StatusCode::kNotFound) {
    return snap.status();
  }
  auto journal_text = env_->ReadFile(JournalPath(gen));
  if (journal_text.ok()) {
    ReplayResult rr;
    STRATA_RETURN_IF_ERROR(Replay(*journal_text, h, &rr));
  } else if (journal_text.status().code() != StatusCode::kNotFound) {
    return journal_text.status();
  }

  // A clone cut short by a crash (see CloneLun) is dropped: it was never acknowledged.
  // So is an incoming LUN: the move that was copying it died with this restart (the
  // source's stream failed and it aborted), so it may be partial and no one will
  // accept it. A later move of the same LUN creates it again.
  for (auto it = by_id_.begin(); it != by_id_.end();) {
    const bool cloning = it->second->rec.name.rfind(kCloningPrefix, 0) == 0;
    if (cloning || (!it->second->is_snapshot && it->second->rec.incoming)) {
      if (!cloning) incoming_dropped_.push_back(it->second->rec.name);
      by_name_.erase(it->second->rec.name);
      it = by_id_.erase(it);
    } else {
      ++it;
    }
  }

  // Derived state: reference counts (one per entry of each distinct leaf: leaves
  // shared by snapshots and restores count once), allocation, the dedup index.
  std::unordered_set<const BlockMap::Leaf*> counted;
  for (auto& [id, lun] : by_id_) {
    lun->map.ForEachLeaf([&](const BlockMap::Leaf& leaf, uint64_t, long) {
      if (!counted.insert(&leaf).second) return;
      for (BlockRef ref : leaf) {
        if (ref == kHole) continue;
        uint32_t ti = RefTier(ref);
        if (ti >= tiers_.size()) continue;
        TierStore& t = tiers_[ti];
        uint64_t s = RefSlot(ref);
        if (t.refs.size() <= s) t.refs.resize(s + 1, 0);
        if ((t.refs[s] & kCountMask) == 0) ++t.used_slots;
        ++t.refs[s];
        t.high_water = std::max(t.high_water, s + 1);
      }
    });
  }
  std::vector<char> buf(bs);
  for (size_t ti = 0; ti < tiers_.size(); ++ti) {
    TierStore& t = tiers_[ti];
    t.refs.resize(t.high_water, 0);
    for (uint64_t s = 1; s < t.high_water; ++s) {
      if ((t.refs[s] & kCountMask) == 0) {
        t.free_slots.push_back(s);
        continue;
      }
      auto it = indexed_refs.find(MakeRef(static_cast<uint32_t>(ti), s));
      if (it == indexed_refs.end() || !it->second) continue;
      STRATA_RETURN_IF_ERROR(t.file->ReadAt(s * bs, buf));
      if (t.index.Insert(Fp(buf.data()), s)) t.refs[s] |= kIndexedBit;
    }
    std::reverse(t.free_slots.begin(), t.free_slots.end());  // hand out low slots first
  }

  // Idle time counts from the device's start for LUNs without I/O since.
  for (auto& [id, lun] : by_id_) TouchIo(*lun);

  // Compact: a fresh snapshot and an empty journal of the next generation.
  journal_gen_ = gen;
  STRATA_RETURN_IF_ERROR(FlushInternal(/*force_checkpoint=*/true));

  for (auto& [id, lun] : by_id_) {
    if (lun->rec.moved_to.empty()) continue;
    if (options_.remote_volume_factory) {
      lun->proxy = options_.remote_volume_factory(lun->rec.moved_to, lun->rec.name);
    }
    lun->move.state = TierMove::State::kDone;
    lun->move.to_device = lun->rec.moved_to;
  }

  // A move interrupted by a crash or a stop: the LUN still belongs to its source
  // tier; move blocks already copied back so it ends whole where it was.
  for (auto& [id, lun] : by_id_) {
    if (lun->is_snapshot) continue;  // never moved: its blocks stay where they were taken
    bool stray = lun->rec.write_tier != lun->rec.tier;
    lun->map.ForEachMapped([&](uint64_t, BlockRef r) { stray |= RefTier(r) != lun->rec.tier; });
    if (!stray) continue;
    {
      ExclusiveLock lock(mu_);
      lun->move.state = TierMove::State::kRunning;
      lun->move.from = tiers_[lun->rec.write_tier].config.tier_class;
      lun->move.to = tiers_[lun->rec.tier].config.tier_class;
      lun->rec.write_tier = lun->rec.tier;
      enc_.Lun(lun->rec);
    }
    SpawnMover(lun, lun->rec.tier, /*rollback=*/true);
  }
  return FlushInternal(false);
}

std::shared_ptr<Lun> EngineImpl::FindLocked(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

SpaceStats EngineImpl::SpaceOfLocked(const Lun& lun) const {
  SpaceStats s;
  double unique = 0;
  lun.map.ForEachLeaf([&](const BlockMap::Leaf& leaf, uint64_t, long sharers) {
    for (BlockRef ref : leaf) {
      if (ref == kHole) continue;
      s.logical_bytes += bs_;
      const TierStore& t = tiers_[RefTier(ref)];
      const uint64_t n = t.refs[RefSlot(ref)] & kCountMask;
      // References: the maps sharing this leaf, plus one per other leaf entry (exact
      // unless those leaves are shared too).
      const uint64_t users = (n ? n : 1) + static_cast<uint64_t>(sharers) - 1;
      unique += static_cast<double>(bs_) / static_cast<double>(users);
      (users == 1 ? s.exclusive_bytes : s.shared_bytes) += bs_;
    }
  });
  s.unique_bytes = static_cast<uint64_t>(unique + 0.5);
  if (!lun.is_snapshot) {
    for (const auto& [name, snap] : snapshots_) {
      if (snap->snap.source_id == lun.rec.id) s.snapshot_bytes += ExclusiveBytesLocked(*snap);
    }
  }
  return s;
}

uint64_t EngineImpl::ExclusiveBytesLocked(const Lun& lun) const {
  uint64_t bytes = 0;
  lun.map.ForEachLeaf([&](const BlockMap::Leaf& leaf, uint64_t, long sharers) {
    if (sharers > 1) return;  // every block of a shared leaf has another user
    for (BlockRef ref : leaf) {
      if (ref != kHole && (tiers_[RefTier(ref)].refs[RefSlot(ref)] & kCountMask) == 1) {
        bytes += bs_;
      }
    }
  });
  return bytes;
}

LunInfo EngineImpl::InfoLocked(const Lun& lun) const {
  LunInfo i;
  i.name = lun.rec.name;
  i.id = lun.rec.id;
  i.wwn = lun.rec.wwn;
  i.size_bytes = lun.rec.size_bytes;
  i.tier = tiers_[lun.rec.tier].config.tier_class;
  i.dedup = lun.rec.dedup;
  i.owner = lun.rec.owner;
  i.allowed_clients = lun.rec.allowed_clients;
  i.allowed_identities = lun.rec.allowed_identities;
  i.created_unix = lun.rec.created_unix;
  i.space = SpaceOfLocked(lun);
  i.move = lun.move;
  i.moved_to = lun.rec.moved_to;
  i.metadata = lun.rec.metadata;
  i.publications = lun.rec.publications;
  const int64_t now = Now().time_since_epoch().count();
  const int64_t last = lun.last_io.load(std::memory_order_relaxed);
  if (now > last) {
    i.idle_seconds = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                               std::chrono::steady_clock::duration(now - last))
                                               .count());
  }
  i.folding = lun.folding;
  i.incoming = lun.rec.incoming;
  return i;
}

// What every new LUN's spec must satisfy: name, size, access list, metadata.
Status ValidateSpec(const LunSpec& spec) {
  STRATA_RETURN_IF_ERROR(ValidateName(spec.name));
  STRATA_RETURN_IF_ERROR(ValidateLunMetadata(spec.metadata));
  if (spec.size_bytes == 0 || spec.size_bytes % 512 != 0) {
    return InvalidArgumentError("size: " + std::to_string(spec.size_bytes) +
                                " bytes is not a positive multiple of 512");
  }
  STRATA_RETURN_IF_ERROR(ValidateAllowedIdentities(spec.allowed_identities));
  return ValidateAllowedClients(spec.allowed_clients);
}

Result<LunInfo> EngineImpl::SameLunLocked(const Lun& existing, const LunSpec& spec,
                                          uint32_t tier) const {
  const LunRecord& r = existing.rec;
  if (r.size_bytes == spec.size_bytes && r.tier == tier && r.dedup == spec.dedup &&
      r.owner == spec.owner && (spec.wwn.empty() || spec.wwn == r.wwn)) {
    return InfoLocked(existing);
  }
  return AlreadyExistsError("LUN '" + spec.name +
                            "' exists with a different size, tier, dedup or owner");
}

Status EngineImpl::CheckFitsLocked(uint64_t size_bytes, uint32_t tier) const {
  const uint64_t cap = tiers_[tier].capacity_slots * bs_;
  if (size_bytes <= cap) return Status::Ok();
  return ResourceExhaustedError("size: " + std::to_string(size_bytes) +
                                " bytes is more than tier " +
                                std::string(TierClassName(tiers_[tier].config.tier_class)) +
                                " holds (" + std::to_string(cap) + " bytes)");
}

std::shared_ptr<Lun> EngineImpl::NewLunLocked(const LunSpec& spec, uint32_t tier) {
  auto lun = std::make_shared<Lun>();
  TapLatency(*lun);
  LunRecord& r = lun->rec;
  r.id = next_lun_id_++;
  r.name = spec.name;
  r.size_bytes = spec.size_bytes;
  r.tier = r.write_tier = tier;
  r.dedup = spec.dedup;
  r.owner = spec.owner;
  r.allowed_clients = spec.allowed_clients;
  r.allowed_identities = spec.allowed_identities;
  r.metadata = spec.metadata;
  r.incoming = !spec.wwn.empty();  // device moves only: hidden until the source accepts it
  lun->dedup = spec.dedup;
  TouchIo(*lun);
  r.created_unix = static_cast<uint64_t>(std::time(nullptr));
  r.wwn = spec.wwn.empty() ? MakeWwn(options_.device_id, r.id, env_->RandomU64()) : spec.wwn;
  lun->size_bytes = r.size_bytes;
  lun->map.Resize((r.size_bytes + bs_ - 1) / bs_);
  // A move's copy: hash what it stores, for the move's verification (LunChecksums).
  if (r.incoming) lun->store_hashes = std::make_shared<StoreHashes>(r.size_bytes, bs_);
  return lun;
}

Result<LunInfo> EngineImpl::CreateLun(const LunSpec& spec) {
  STRATA_RETURN_IF_ERROR(ValidateSpec(spec));
  if (!spec.wwn.empty() &&
      (spec.wwn.size() != 20 || spec.wwn.rfind("naa.3", 0) != 0 ||
       spec.wwn.find_first_not_of("0123456789abcdef", 5) != std::string::npos)) {
    return InvalidArgumentError("wwn: '" + spec.wwn + "' is not 'naa.3' and 15 hex digits");
  }
  uint32_t tier = 0;
  if (spec.tier) {
    STRATA_ASSIGN_OR_RETURN(int ti, TierIndex(*spec.tier));
    tier = static_cast<uint32_t>(ti);
  }
  {
    ExclusiveLock lock(mu_);
    if (auto existing = FindLocked(spec.name)) return SameLunLocked(*existing, spec, tier);
    STRATA_RETURN_IF_ERROR(CheckFitsLocked(spec.size_bytes, tier));
    auto lun = NewLunLocked(spec, tier);
    enc_.Lun(lun->rec);
    by_name_[lun->rec.name] = lun;
    by_id_[lun->rec.id] = lun;
  }
  STRATA_RETURN_IF_ERROR(Flush());
  return GetLun(spec.name);
}

Result<LunInfo> EngineImpl::CloneLun(const std::string& source, const LunSpec& spec) {
  STRATA_RETURN_IF_ERROR(ValidateSpec(spec));
  if (!spec.wwn.empty()) return InvalidArgumentError("wwn: a clone gets a new WWN");
  {
    ExclusiveLock lock(mu_);
    auto src = FindLocked(source);
    if (!src) return NotFoundError("source LUN '" + source + "' not found");
    const uint32_t tier = src->rec.tier;
    if (spec.tier) {
      STRATA_ASSIGN_OR_RETURN(int ti, TierIndex(*spec.tier));
      if (static_cast<uint32_t>(ti) != tier) {
        return InvalidArgumentError(
            "tier: a clone shares its source's blocks and starts on the source's tier (" +
            std::string(TierClassName(tiers_[tier].config.tier_class)) + "); move it afterwards");
      }
    }
    if (auto existing = FindLocked(spec.name)) return SameLunLocked(*existing, spec, tier);
    if (!src->rec.moved_to.empty()) {
      return FailedPreconditionError("source LUN '" + source + "' moved to device " +
                                     src->rec.moved_to);
    }
    if (src->rec.write_tier != src->rec.tier || src->tracking.load()) {
      return FailedPreconditionError("source LUN '" + source +
                                     "' is moving; clone it when the move has ended");
    }
    if (spec.size_bytes < src->rec.size_bytes) {
      return OutOfRangeError("size: " + std::to_string(spec.size_bytes) +
                             " bytes is less than the source's " +
                             std::to_string(src->rec.size_bytes));
    }
    STRATA_RETURN_IF_ERROR(CheckFitsLocked(spec.size_bytes, tier));
    auto lun = NewLunLocked(spec, tier);
    const LunRecord& r = lun->rec;
    // Journaled under a name no client can give first, then renamed: a torn tail that
    // cuts the mappings leaves a hidden LUN, which the next Load deletes.
    LunRecord hidden = r;
    hidden.name = kCloningPrefix + r.name;
    enc_.Lun(hidden);
    src->map.ForEachMapped([&](uint64_t lba, BlockRef ref) {
      TierStore& t = tiers_[RefTier(ref)];
      uint32_t& refs = t.refs[RefSlot(ref)];
      ++refs;
      lun->map.Set(lba, ref);
      enc_.Map({r.id, lba, ref, (refs & kIndexedBit) != 0});
    });
    enc_.Lun(r);
    by_name_[r.name] = lun;
    by_id_[r.id] = lun;
  }
  STRATA_RETURN_IF_ERROR(Flush());
  return GetLun(spec.name);
}

Status EngineImpl::DeleteLun(const std::string& name) {
  {
    ExclusiveLock lock(mu_);
    auto lun = FindLocked(name);
    if (!lun) return NotFoundError("LUN '" + name + "' not found");
    lun->deleted = true;
    lun->cancel_requested = true;
    // Leaves its snapshots share stay with them (and their blocks referenced).
    lun->map.Release([&](BlockRef ref) { DecrefLocked(ref); });
    lun->map = BlockMap(0);
    by_name_.erase(name);
    by_id_.erase(lun->rec.id);
    enc_.DeleteLun(lun->rec.id);
    move_cv_.notify_all();
  }
  return Flush();
}

Result<LunInfo> EngineImpl::AcceptLun(const std::string& name, const std::string& wwn) {
  {
    ExclusiveLock lock(mu_);
    auto lun = FindLocked(name);
    if (!lun) return NotFoundError("LUN '" + name + "' not found");
    if (lun->rec.wwn != wwn) {
      return FailedPreconditionError("wwn: LUN '" + name + "' has WWN " + lun->rec.wwn + ", not '" +
                                     wwn + "'");
    }
    if (!lun->rec.incoming) return InfoLocked(*lun);
    lun->rec.incoming = false;
    if (lun->store_hashes) lun->store_hashes->Disable();  // verified: no longer needed
    enc_.Lun(lun->rec);
  }
  STRATA_RETURN_IF_ERROR(Flush());
  return GetLun(name);
}

Result<LunInfo> EngineImpl::ResizeLun(const std::string& name, uint64_t new_size) {
  {
    ExclusiveLock lock(mu_);
    auto lun = FindLocked(name);
    if (!lun) return NotFoundError("LUN '" + name + "' not found");
    if (new_size % 512 != 0) {
      return InvalidArgumentError("size: " + std::to_string(new_size) +
                                  " bytes is not a multiple of 512");
    }
    if (new_size < lun->rec.size_bytes) {
      return InvalidArgumentError(
          "size: " + std::to_string(new_size) + " bytes is smaller than the LUN (" +
          std::to_string(lun->rec.size_bytes) + "); LUNs only grow, shrinking would lose data");
    }
    if (new_size == lun->rec.size_bytes) return InfoLocked(*lun);
    if (lun->tracking || !lun->rec.moved_to.empty()) {
      return FailedPreconditionError(
          "LUN '" + name + "' is moving or has moved to " +
          (lun->rec.moved_to.empty() ? lun->move.to_device : lun->rec.moved_to) +
          "; resize it there");
    }
    lun->rec.size_bytes = new_size;
    if (lun->store_hashes) lun->store_hashes->Disable();  // its ranges were of the old size
    lun->map.Resize((new_size + bs_ - 1) / bs_);
    lun->size_bytes = new_size;
    enc_.Lun(lun->rec);
  }
  STRATA_RETURN_IF_ERROR(Flush());
  return GetLun(name);
}

Result<LunInfo> EngineImpl::SetAccess(const std::string& name, std::vector<std::string> allowed,
                                      std::vector<std::string> identities) {
  STRATA_RETURN_IF_ERROR(ValidateAllowedClients(allowed));
  STRATA_RETURN_IF_ERROR(ValidateAllowedIdentities(identities));
  {
    ExclusiveLock lock(mu_);
    auto lun = FindLocked(name);
    if (!lun) return NotFoundError("LUN '" + name + "' not found");
    {
      std::unique_lock access(lun->access_mu);
      lun->rec.allowed_clients = std::move(allowed);
      lun->rec.allowed_identities = std::move(identities);
    }
    enc_.Lun(lun->rec);
  }
  STRATA_RETURN_IF_ERROR(Flush());
  return GetLun(name);
}

namespace {

Status ValidatePublication(const std::string& node_id, const std::vector<std::string>& entries,
                           bool node_required) {
  if (node_required && node_id.empty()) return InvalidArgumentError("node_id: required");
  if (node_id.size() > 256) {
    return InvalidArgumentError("node_id: " + std::to_string(node_id.size()) +
                                " bytes, at most 256");
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!ValidateAllowedClients({entries[i]}).ok()) {
      return InvalidArgumentError("access_entries[" + std::to_string(i) + "]: '" + entries[i] +
                                  "' is not '*', an IP address or a CIDR (e.g. 10.0.0.0/24)");
    }
  }
  return Status::Ok();
}

void AddUnique(std::vector<std::string>* list, const std::string& e) {
  if (std::find(list->begin(), list->end(), e) == list->end()) list->push_back(e);
}

}  // namespace

bool EngineImpl::CommitPublicationsLocked(Lun* lun, LunRecord rec) {
  if (rec.publications == lun->rec.publications &&
      rec.allowed_clients == lun->rec.allowed_clients) {
    return false;
  }
  // Only these two fields change (others may be read under a shared lock meanwhile).
  lun->rec.publications = std::move(rec.publications);
  {
    std::unique_lock access(lun->access_mu);
    lun->rec.allowed_clients = std::move(rec.allowed_clients);
  }
  enc_.Lun(lun->rec);
  return true;
}

Result<LunInfo> EngineImpl::Publish(const std::string& name, const std::string& node_id,
                                    const std::vector<std::string>& entries) {
  STRATA_RETURN_IF_ERROR(ValidatePublication(node_id, entries, /*node_required=*/true));
  bool changed = false;
  {
    ExclusiveLock lock(mu_);
    auto lun = FindLocked(name);
    if (!lun) return NotFoundError("LUN '" + name + "' not found");
    LunRecord rec = lun->rec;  // a copy: changed as a whole or not at all
    auto node = rec.publications.find(node_id);
    if (node == rec.publications.end()) {
      if (rec.publications.size() >= Engine::kMaxPublications) {
        return ResourceExhaustedError("LUN '" + name + "' is published to " +
                                      std::to_string(rec.publications.size()) +
                                      " nodes already, the most it records");
      }
      node = rec.publications.emplace(node_id, std::vector<std::string>{}).first;
    }
    for (const auto& e : entries) {
      AddUnique(&node->second, e);
      AddUnique(&rec.allowed_clients, e);
    }
    changed = CommitPublicationsLocked(lun.get(), std::move(rec));
  }
  if (changed) STRATA_RETURN_IF_ERROR(Flush());
  return GetLun(name);
}

Result<LunInfo> EngineImpl::Unpublish(const std::string& name, const std::string& node_id,
                                      const std::vector<std::string>& entries) {
  STRATA_RETURN_IF_ERROR(ValidatePublication(node_id, entries, /*node_required=*/false));
  bool changed = false;
  {
    ExclusiveLock lock(mu_);
    auto lun = FindLocked(name);
    if (!lun) return NotFoundError("LUN '" + name + "' not found");
    LunRecord rec = lun->rec;
    if (node_id.empty()) {
      rec.publications.clear();
      rec.allowed_clients.clear();
    } else {
      std::vector<std::string> remove = entries;
      if (auto node = rec.publications.find(node_id); node != rec.publications.end()) {
        for (const auto& e : node->second) AddUnique(&remove, e);
        rec.publications.erase(node);
      }
      for (const auto& [other, held] : rec.publications) {
        for (const auto& e : held)
          remove.erase(std::remove(remove.begin(), remove.end(), e), remove.end());
      }
      auto& list = rec.allowed_clients;
      list.erase(std::remove_if(list.begin(), list.end(),
                                [&](const std::string& c) {
                                  return std::find(remove.begin(), remove.end(), c) != remove.end();
                                }),
                 list.end());
    }
    changed = CommitPublicationsLocked(lun.get(), std::move(rec));
  }
  if (changed) STRATA_RETURN_IF_ERROR(Flush());
  return GetLun(name);
}

Result<LunInfo> EngineImpl::SetDedup(const std::string& name, bool dedup, bool fold_existing) {
  if (fold_existing && !dedup) {
    return InvalidArgumentError(
        "fold_existing: only with dedup on (there is nothing to fold into)");
  }
  std::shared_ptr<Lun> lun;
  bool changed = false;
  {
    ExclusiveLock lock(mu_);
    lun = FindLocked(name);
    if (!lun) return NotFoundError("LUN '" + name + "' not found");
    if (!lun->rec.moved_to.empty()) {
      return FailedPreconditionError("LUN '" + name + "' moved to device " + lun->rec.moved_to +
                                     "; set dedup there");
    }
    if (lun->move.state == TierMove::State::kRunning || lun->tracking ||
        lun->rec.write_tier != lun->rec.tier) {
      return FailedPreconditionError("LUN '" + name +
                                     "' is moving; set dedup when the move has ended");
    }
    if (lun->rec.dedup != dedup) {
      lun->rec.dedup = dedup;
      lun->dedup.store(dedup, std::memory_order_release);
      enc_.Lun(lun->rec);
      changed = true;
    }
  }
  if (changed) STRATA_RETURN_IF_ERROR(Flush());
  if (fold_existing) {
    bool start = false;
    {
      ExclusiveLock lock(mu_);
      if (!lun->deleted && lun->rec.dedup && !lun->folding) start = lun->folding = true;
    }
    if (start) {
      std::lock_guard lock(movers_mu_);
      movers_.emplace_back([this, lun] { FoldLoop(lun); });
    }
  }
  return GetLun(name);
}

Status EngineImpl::WaitFold(const std::string& name) {
  ExclusiveLock lock(mu_);
  auto lun = FindLocked(name);
  if (!lun) return NotFoundError("LUN '" + name + "' not found");
  move_cv_.wait(lock, [&] { return !lun->folding || lun->deleted; });
  return Status::Ok();
}

void EngineImpl::FoldLoop(std::shared_ptr<Lun> lun) {
  BecomeCopyThread();
  using Clock = std::chrono::steady_clock;
  const auto started = Clock::now();
  const double rate = static_cast<double>(options_.fold_bytes_per_second);
  uint64_t read_bytes = 0;
  std::vector<char> buf(bs_);
  for (uint64_t lba = 0; !stopping_; ++lba) {
    BlockRef ref = kHole;
    uint64_t gen = 0;
    {
      SharedLock lock(mu_);
      if (lun->deleted || !lun->rec.dedup || lba >= lun->map.blocks()) break;
      ref = lun->map.Get(lba);
      if (ref == kHole) continue;
      const TierStore& t = tiers_[RefTier(ref)];
      if (t.refs[RefSlot(ref)] & kIndexedBit) continue;  // written with dedup on, or folded
      gen = t.reuse_gen;
      if (!t.file->ReadAt(RefSlot(ref) * bs_, buf).ok()) continue;  // left as it is
    }
    FoldBlock(*lun, lba, ref, gen, buf.data());
    read_bytes += bs_;
    NoteCopyProgress(bs_);
    if (rate > 0) {
      // Throttle: never ahead of `rate` since the start; a stop cuts the wait short.
      auto due =
          started + std::chrono::duration_cast<Clock::duration>(
                        std::chrono::duration<double>(static_cast<double>(read_bytes) / rate));
      std::unique_lock lock(movers_mu_);
      stop_cv_.wait_until(lock, due, [this] { return stopping_.load(); });
    }
  }
  (void)Flush();
  {
    ExclusiveLock lock(mu_);
    lun->folding = false;
  }
  move_cv_.notify_all();
}

void EngineImpl::FoldBlock(Lun& lun, uint64_t lba, BlockRef ref, uint64_t gen, const char* data) {
  const Fingerprint fp = Fp(data);
  std::vector<char> have(bs_);
  bool flush_needed = false;
  {
    ExclusiveLock lock(mu_);
    TierStore& t = tiers_[RefTier(ref)];
    const uint64_t slot = RefSlot(ref);
    // Rewritten, or its slot recycled, since it was read: the new data is not ours
    // to fold (a write with dedup on folds itself).
    if (lun.deleted || lun.map.Get(lba) != ref || t.reuse_gen != gen ||
        (t.refs[slot] & kIndexedBit)) {
      return;
    }
    // Confirm the bytes, as a write does; a fingerprint collision stays unshared.
    Status err;
    if (uint64_t hit = EqualIndexedLocked(t, fp, data, have, &err)) {
      ++t.refs[hit];
      SetMappingLocked(lun, lba, MakeRef(RefTier(ref), hit), true);  // frees `slot` if last
    } else if (err.ok() && t.index.Insert(fp, slot)) {
      t.refs[slot] |= kIndexedBit;
      enc_.Map({lun.rec.id, lba, ref, true});  // same mapping, now indexed
    }
    flush_needed = NeedFlushLocked();
  }
  if (flush_needed) (void)Flush();
}

Result<LunInfo> EngineImpl::GetLun(const std::string& name) {
  SharedLock lock(mu_);
  auto lun = FindLocked(name);
  if (!lun) return NotFoundError("LUN '" + name + "' not found");
  return InfoLocked(*lun);
}

std::vector<LunInfo> EngineImpl::ListLuns() {
  SharedLock lock(mu_);
  std::vector<LunInfo> out;
  for (const auto& [name, lun] : by_name_) out.push_back(InfoLocked(*lun));
  return out;
}

size_t EngineImpl::LunCount() {
  SharedLock lock(mu_);
  return by_name_.size();
}

std::map<std::string, SpaceStats> EngineImpl::OwnerSpace() {
  SharedLock lock(mu_);
  std::map<std::string, SpaceStats> out;
  for (const auto& [name, lun] : by_name_) {
    SpaceStats s = SpaceOfLocked(*lun);
    SpaceStats& o = out[lun->rec.owner];
    o.logical_bytes += s.logical_bytes;
    o.unique_bytes += s.unique_bytes;
    o.exclusive_bytes += s.exclusive_bytes;
    o.shared_bytes += s.shared_bytes;
  }
  // Snapshots (including those whose LUN is gone) count for the owner they were taken
  // under: physical space and what they alone hold, not logical bytes.
  for (const auto& [name, snap] : snapshots_) {
    SpaceStats s = SpaceOfLocked(*snap);
    SpaceStats& o = out[snap->rec.owner];
    o.unique_bytes += s.unique_bytes;
    o.snapshot_bytes += s.exclusive_bytes;
  }
  return out;
}

SpaceStats EngineImpl::DeviceSpace() {
  SharedLock lock(mu_);
  SpaceStats s;
  for (const auto& [name, lun] : by_name_) {
    lun->map.ForEachMapped([&](uint64_t, BlockRef) { s.logical_bytes += bs_; });
  }
  for (const auto& t : tiers_) s.unique_bytes += t.used_slots * bs_;
  return s;
}

std::vector<TierUsage> EngineImpl::Tiers() {
  SharedLock lock(mu_);
  std::vector<TierUsage> out;
  for (const auto& t : tiers_) {
    TierUsage u;
    u.tier_class = t.config.tier_class;
    u.capacity_bytes = t.capacity_slots * bs_;
    u.used_bytes = t.used_slots * bs_;
    u.indexed_blocks = t.index.size();
    u.index_memory_bytes = t.index.memory_bytes();
    out.push_back(u);
  }
  return out;
}

bool EngineImpl::StillAllowed(Lun& lun, const ClientInfo& client) {
  // Not mu_: a request must not wait here for another LUN's exclusive sections.
  std::shared_lock lock(lun.access_mu);
  return AccessAllowed(lun.rec.allowed_clients, lun.rec.allowed_identities, client);
}

Result<std::shared_ptr<Volume>> EngineImpl::OpenVolume(const std::string& name,
                                                       const ClientInfo* client, bool incoming_ok) {
  SharedLock lock(mu_);
  auto lun = FindLocked(name);
  // An incoming LUN (a move's copy, maybe partial) is no export yet: as if absent.
  if (!lun || (client && lun->rec.incoming)) return NotFoundError("LUN '" + name + "' not found");
  if (!incoming_ok && lun->rec.incoming) {
    return UnavailableError("LUN '" + name +
                            "' is a move's incoming copy here, not yet the LUN (the device it "
                            "comes from holds it)");
  }
  if (client && !AccessAllowed(lun->rec.allowed_clients, lun->rec.allowed_identities, *client)) {
    std::string who = "client " + client->peer_address;
    if (!lun->rec.allowed_identities.empty()) {
      who += client->identities.empty() ? " (no TLS client certificate)"
                                        : " (certificate " + client->identities.front() + ")";
    }
    return PermissionDeniedError(who + " is not on the access list of LUN '" + name + "'");
  }
  std::optional<ClientInfo> who;
  if (client) who = *client;
  return std::shared_ptr<Volume>(std::make_shared<LunVolume>(this, lun, std::move(who)));
}

std::vector<ExportInfo> EngineImpl::List(const ClientInfo& client) {
  SharedLock lock(mu_);
  std::vector<ExportInfo> out;
  for (const auto& [name, lun] : by_name_) {
    if (lun->rec.incoming) continue;
    if (!AccessAllowed(lun->rec.allowed_clients, lun->rec.allowed_identities, client)) continue;
    out.push_back({name, lun->rec.wwn, lun->rec.size_bytes});
  }
  return out;
}

Result<LunIoStats::Snapshot> EngineImpl::IoStats(const std::string& name) {
  SharedLock lock(mu_);
  auto lun = FindLocked(name);
  if (!lun) return NotFoundError("LUN '" + name + "' not found");
  return lun->stats.Take();
}

// ---- block store ----

void EngineImpl::ReleaseUnusedLocked(TierStore& t, uint64_t slot) {
  t.refs[slot] = 0;
  --t.used_slots;
  t.free_slots.push_back(slot);  // never journaled: reusable at once
}

void EngineImpl::DecrefLocked(BlockRef ref) {
  TierStore& t = tiers_[RefTier(ref)];
  uint64_t s = RefSlot(ref);
  uint32_t& r = t.refs[s];
  if ((r & kCountMask) > 1) {
    --r;
    return;
  }
  // The index keeps each indexed slot's tag: no re-read or re-hash of the block.
  if (r & kIndexedBit) t.index.EraseSlot(s);
  r = 0;
  --t.used_slots;
  t.pending_free.push_back(s);
}

uint64_t EngineImpl::EqualIndexedLocked(const TierStore& t, const Fingerprint& fp,
                                        const char* block, std::vector<char>& have,
                                        Status* err) const {
  uint64_t equal = 0;
  t.index.Find(fp, [&](uint64_t slot) {
    // Confirm: a fingerprint match alone must never share another block's data.
    const char* bytes = SlotBytesLocked(t, slot, have, err);
    if (bytes == nullptr) return true;  // stop: the caller decides what a failed read means
    if (std::memcmp(bytes, block, bs_) != 0) return false;
    equal = slot;
    return true;
  });
  return equal;
}

const char* EngineImpl::SlotBytesLocked(const TierStore& t, uint64_t slot, std::vector<char>& buf,
                                        Status* err) const {
  if (t.view != nullptr && (slot + 1) * bs_ <= t.written_end) return t.view + slot * bs_;
  buf.resize(bs_);
  Status read = t.file->ReadAt(slot * bs_, buf);
  if (!read.ok()) {
    *err = read;
    return nullptr;
  }
  return buf.data();
}

void EngineImpl::IncrefLocked(BlockRef ref) { ++tiers_[RefTier(ref)].refs[RefSlot(ref)]; }

void EngineImpl::SetMappingLocked(Lun& lun, uint64_t lba, BlockRef ref, bool indexed,
                                  MapBatch* batch) {
  BlockRef old = lun.map.Set(lba, ref, [this](BlockRef r) { IncrefLocked(r); });
  if (old == ref && ref == kHole) return;  // hole to hole: nothing to record
  if (batch != nullptr) {
    batch->Add(lba, ref, indexed);
  } else {
    enc_.Map({lun.rec.id, lba, ref, indexed});
  }
  if (old != kHole) DecrefLocked(old);
}

Result<std::vector<uint64_t>> EngineImpl::AllocateRunLocked(TierStore& t, size_t n) {
  std::vector<uint64_t> slots;
  slots.reserve(n);
  if (t.free_slots.size() + (t.capacity_slots - std::min(t.capacity_slots, t.high_water)) < n) {
    ReturnReserveLocked(t);  // short: the slots set aside for small writes count too
  }
  // Freed slots first, while the free list holds the whole run, so the data file grows
  // (and takes space from its file system) only when the live blocks and those waiting
  // for a flush need it: fresh slots first would grow it to the tier's capacity under
  // plain overwrites, and a tier configured near its file system's size then hits
  // ENOSPC. The tail of the free list is taken in list order: slots freed by an
  // overwrite of consecutive blocks were pushed in ascending order, so the tail is
  // usually a run, written with one pwrite again.
  if (t.free_slots.size() < n && t.high_water + n <= t.capacity_slots) {
    // Contiguous fresh slots: a run of blocks then costs one pwrite.
    for (size_t i = 0; i < n; ++i) {
      auto s = AllocateFreshLocked(t);
      slots.push_back(s);
    }
    return slots;
  }
  const size_t fresh_room = t.capacity_slots > t.high_water ? t.capacity_slots - t.high_water : 0;
  if (t.free_slots.size() + fresh_room < n) {
    return ResourceExhaustedError("tier " + std::string(TierClassName(t.config.tier_class)) +
                                  " is full");
  }
  size_t reuse = std::min(n, t.free_slots.size());
  slots.assign(t.free_slots.end() - static_cast<std::ptrdiff_t>(reuse), t.free_slots.end());
  t.free_slots.resize(t.free_slots.size() - reuse);
  for (uint64_t slot : slots) {
    t.refs[slot] = 1;
    ++t.used_slots;
  }
  while (slots.size() < n) slots.push_back(AllocateFreshLocked(t));
  return slots;
}

EngineImpl::FreshRun EngineImpl::RefillReserveLocked(TierStore& t, size_t batch) {
  FreshRun fresh;
  std::lock_guard guard(*t.reserve_mu);
  if (t.reserved.size() >= batch / 2) return fresh;
  const size_t want = batch - t.reserved.size();
  std::vector<uint64_t> got;  // in the order handed out
  got.reserve(batch);
  if (!t.free_slots.empty()) {
    // Freed slots while there are any (already allocated in the file, as a one-block
    // AllocateRunLocked takes them), the tail of the list in list order.
    const size_t k = std::min(want, t.free_slots.size());
    got.assign(t.free_slots.end() - static_cast<std::ptrdiff_t>(k), t.free_slots.end());
    t.free_slots.resize(t.free_slots.size() - k);
  } else if (t.high_water + want <= t.capacity_slots) {
    fresh.first = t.high_water;
    fresh.count = want;
    for (size_t i = 0; i < want; ++i) got.push_back(t.high_water++);
    if (t.refs.size() < t.high_water) {
      t.refs.resize(std::max<uint64_t>(t.high_water, t.refs.size() * 2), 0);
    }
    // In memory (tmpfs), their pages are allocated ahead, all in one call after this
    // section, rather than one by one in each write's pwrite: a write then copies
    // into a page already mapped here, and a later dedup compare with it reads it
    // without a page fault (docs/benchmarks.md, ingest). The file grows to cover
    // them (to their end exactly, one ftruncate a refill: no slack past the slots
    // handed out, which a tier sized near its file system would feel) so the mapping
    // may touch them.
    // Only for small writes' batch: a large dedup write's new slots are received in
    // place or pwritten in runs, whose copy allocates the pages as it goes (one 8 MiB
    // population in a request measured slower in the NBD 1 MiB cells).
    if (batch <= kReserveBatch && t.StoresThroughMapping()) {
      const uint64_t end = t.high_water * uint64_t{bs_};
      if (end <= t.written_end || GrowTierFileLocked(t, end, bs_).ok()) {
        fresh.space = t.mapping->Write(fresh.first * bs_, fresh.count * bs_, t.written_end);
      }
    }
  } else {
    return fresh;  // nearly full: small writes allocate under the lock, as large ones do
  }
  // The back is handed out next: what was left first, then `got` in order.
  std::reverse(got.begin(), got.end());
  got.insert(got.end(), t.reserved.begin(), t.reserved.end());
  t.reserved.swap(got);
  return fresh;
}

void EngineImpl::PrepareFreshRun(TierStore& t, const FreshRun& run) {
  if (run.space.empty() || !t.mapping->Prefault(run.space)) return;
  std::lock_guard guard(*t.reserve_mu);
  if (run.first == t.populated_end) {
    t.populated_end += run.count;  // refills in order extend the range
  } else {
    t.populated_begin = run.first;  // (an earlier range's pages stay allocated, unused here)
    t.populated_end = run.first + run.count;
  }
}

void EngineImpl::ReturnReserveLocked(TierStore& t) {
  std::lock_guard guard(*t.reserve_mu);
  t.free_slots.insert(t.free_slots.end(), t.reserved.begin(), t.reserved.end());
  t.reserved.clear();
}

bool EngineImpl::TakeReserved(TierStore& t, size_t n, uint64_t* slots, bool* populated) {
  std::lock_guard guard(*t.reserve_mu);
  if (t.reserved.size() < n) return false;
  bool all = true;
  for (size_t i = 0; i < n; ++i) {
    slots[i] = t.reserved.back();
    t.reserved.pop_back();
    all = all && slots[i] >= t.populated_begin && slots[i] < t.populated_end;
  }
  if (populated != nullptr) *populated = all;
  return true;
}

void EngineImpl::MarkBackedLocked(TierStore& t, uint64_t slot) {
  if (!t.StoresThroughMapping()) return;
  const uint64_t word = slot / 64;
  if (t.backed.size() <= word) {
    t.backed.resize(std::max<uint64_t>(word + 1, t.backed.size() * 2), 0);
  }
  t.backed[word] |= uint64_t{1} << (slot % 64);
}

bool EngineImpl::BackedLocked(const TierStore& t, std::span<const uint64_t> slots) {
  if (!t.StoresThroughMapping()) return false;
  for (uint64_t slot : slots) {
    const uint64_t word = slot / 64;
    if (word >= t.backed.size() || (t.backed[word] & (uint64_t{1} << (slot % 64))) == 0) {
      return false;
    }
  }
  return true;
}

uint64_t EngineImpl::AllocateFreshLocked(TierStore& t) {
  uint64_t slot = t.high_water++;
  if (t.refs.size() <= slot) t.refs.resize(std::max<uint64_t>(slot + 1, t.refs.size() * 2), 0);
  t.refs[slot] = 1;
  ++t.used_slots;
  return slot;
}

Status EngineImpl::StoreRun(Lun& lun, uint64_t lba, size_t n, const char* data,
                            std::optional<uint32_t> tier_override, const BlockRef* expected,
                            bool verify, std::span<const Fingerprint> fps, Placement* placed) {
  struct Item {
    bool zero = false;
    bool settled = false;  // mapped (hole or shared block) or skipped
    Fingerprint fp;
    uint64_t slot = 0;          // allocated for it, to be written
    size_t same_as = SIZE_MAX;  // an earlier item of this run with the same bytes
    uint64_t candidate = 0;     // a slot found equal outside the lock (see below)
  };
  // SetDedup may change it meanwhile: this request goes by the setting it started with.
  const bool dedup = lun.dedup.load(std::memory_order_acquire);
  // Block i's bytes: in `data`, or (placed) in its slot, through the tier's mapping.
  const bool has_data = data != nullptr || placed != nullptr;
  auto block = [&](size_t i) -> const char* {
    return placed ? tiers_[placed->tier].view + placed->slots[i] * bs_ : data + i * bs_;
  };
  std::vector<Item> items(n);
  for (size_t i = 0; i < n; ++i) {
    const char* b = has_data ? block(i) : nullptr;
    items[i].zero = b == nullptr || IsZero(b, bs_);
    if (dedup && !items[i].zero) items[i].fp = i < fps.size() ? fps[i] : Fp(b);
  }
  // Outside the lock, too: each block's first equal block of this run (its root), so
  // duplicates inside one request (a 1 MiB write of one pattern) share a slot without
  // a scan of the run per block under the exclusive lock. By fingerprint, then bytes.
  std::vector<size_t> root;
  if (dedup && has_data && n > 1) {
    root.resize(n);
    std::vector<size_t> order;
    order.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      root[i] = i;
      if (!items[i].zero) order.push_back(i);
    }
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      const Fingerprint& x = items[a].fp;
      const Fingerprint& y = items[b].fp;
      return x.lo != y.lo ? x.lo < y.lo : x.hi != y.hi ? x.hi < y.hi : a < b;
    });
    for (size_t g = 0; g < order.size();) {
      size_t e = g + 1;
      while (e < order.size() && items[order[e]].fp == items[order[g]].fp) ++e;
      for (size_t k = g + 1; k < e; ++k) {  // groups are one block unless data repeats
        for (size_t f = g; f < k; ++f) {
          if (root[order[f]] == order[f] &&
              std::memcmp(block(order[f]), block(order[k]), bs_) == 0) {
            root[order[k]] = order[f];
            break;
          }
        }
      }
      g = e;
    }
  }
  std::vector<char> have;  // sized by SlotBytesLocked when a read needs it
  // Dedup candidates are read and compared under the shared lock, so writers of
  // duplicate data do not serialise on those reads; the exclusive section below
  // only re-checks that nothing was recycled meanwhile.
  uint32_t cand_tier = 0;
  uint64_t cand_gen = 0;
  uint64_t cand_rewrites = 0;
  // A small client write of new data (no zero block, no dedup hit, no two equal
  // blocks) takes its slots from the tier's reserve under the shared lock: it then
  // takes mu_ exclusively once, to map what it wrote. A dedup match indexed between
  // this lookup and the mapping is found then (index_inserts), as on the slower path.
  const bool small = has_data && n <= kReserveMaxRun && !expected && !tier_override && !verify;
  // So does a dedup client write of up to kRunBlocks blocks, whatever they hold: it
  // takes a slot for each block that is neither zeros, nor a dedup hit, nor equal to an
  // earlier block of the request, and its one exclusive section maps holes, hits and
  // new slots together (one batch of index inserts, refcounts and one journal record).
  const bool one_section =
      dedup && has_data && n <= kRunBlocks && !expected && !tier_override && !verify;
  std::array<uint64_t, kRunBlocks> reserved_slots{};
  bool from_reserve = false;
  bool populated = false;  // the slots from the reserve have their pages (PrepareFreshRun)
  size_t allocated = 0;
  uint64_t index_inserts = 0;  // the index's insert count when this run last missed it
  if ((dedup && has_data) || small) {
    SharedLock lock(mu_);
    cand_tier = tier_override ? *tier_override : lun.rec.write_tier;
    TierStore& t = tiers_[cand_tier];
    cand_gen = t.reuse_gen;
    cand_rewrites = t.rewrites;
    index_inserts = t.index.inserts();
    bool all_new = small && !lun.deleted;
    bool searched = true;  // every candidate search read what it needed
    for (size_t i = 0; i < n; ++i) {
      if (items[i].zero) {
        all_new = false;
        continue;
      }
      if (!dedup) continue;
      Status err;  // a failed read here is retried under the exclusive lock
      items[i].candidate = EqualIndexedLocked(t, items[i].fp, block(i), have, &err);
      if (!err.ok()) searched = false;
    }
    if (one_section) {
      if (searched && !lun.deleted) {
        // A slot for each block to write: its first copy in this request, not a hit.
        auto writes = [&](size_t i) {
          return !items[i].zero && items[i].candidate == 0 && (root.empty() || root[i] == i);
        };
        size_t need = 0;
        for (size_t i = 0; i < n; ++i) need += writes(i) ? 1 : 0;
        // Placed: each block to write already lies in its own slot.
        from_reserve = placed ? cand_tier == placed->tier
                              : TakeReserved(t, need, reserved_slots.data(), &populated);
        for (size_t i = 0, k = 0; from_reserve && i < n; ++i) {
          if (writes(i)) {
            items[i].slot = placed ? placed->slots[i] : reserved_slots[k++];
            if (placed) placed->used[i] = true;
          } else if (!items[i].zero && items[i].candidate == 0) {
            items[i].same_as = root[i];  // its first copy's slot, once written
          }
        }
        allocated = need;
      }
    } else {
      from_reserve = !placed && all_new && TakeReserved(t, n, reserved_slots.data(), &populated);
      for (size_t i = 0; from_reserve && i < n; ++i) items[i].slot = reserved_slots[i];
      if (from_reserve) allocated = n;
    }
    // Freed slots a refill recycled: stored through the mapping too when each page
    // held a block before (TierStore::backed).
    if (from_reserve && !placed && !populated) {
      populated = BackedLocked(t, std::span<const uint64_t>(reserved_slots.data(), allocated));
    }
  }
  if (dedup && options_.dedup_searched_for_test) options_.dedup_searched_for_test(lba);
  if (placed && !from_reserve) {  // the caller writes the bytes the usual way
    placed->fell_back = true;
    return Status::Ok();
  }
  uint32_t tier = 0;
  if (from_reserve) tier = cand_tier;
  for (int attempt = 0; !from_reserve; ++attempt) {
    ExclusiveLock lock(mu_);
    if (lun.deleted) return UnavailableError("LUN " + lun.rec.name + " was deleted");
    MapBatch batch(enc_, lun.rec.id, lba, n);  // journaled before the lock is released
    tier = tier_override ? *tier_override : lun.rec.write_tier;
    TierStore& t = tiers_[tier];
    std::vector<size_t> need;
    std::vector<size_t> leader(root.size(), SIZE_MAX);  // per root: its first item in need
    for (size_t i = 0; i < n; ++i) {
      Item& it = items[i];
      if (it.settled) continue;
      it.same_as = SIZE_MAX;
      if (expected && lun.map.Get(lba + i) != expected[i]) {  // rewritten meanwhile
        it.settled = true;
        continue;
      }
      if (it.zero) {  // zero blocks cost nothing: a hole
        SetMappingLocked(lun, lba + i, kHole, false, &batch);
        it.settled = true;
        continue;
      }
      if (dedup && it.candidate && tier == cand_tier && t.reuse_gen == cand_gen &&
          t.rewrites == cand_rewrites && (t.refs[it.candidate] & kCountMask) > 0) {
        ++t.refs[it.candidate];
        SetMappingLocked(lun, lba + i, MakeRef(tier, it.candidate), true, &batch);
        it.settled = true;
        continue;
      }
      // Searched again: a copy indexed by another writer since the search under the
      // shared lock (requests in flight together often carry the same new bytes).
      if (dedup) {
        Status err;
        uint64_t hit = EqualIndexedLocked(t, it.fp, block(i), have, &err);
        STRATA_RETURN_IF_ERROR(err);
        if (hit != 0) {
          ++t.refs[hit];
          SetMappingLocked(lun, lba + i, MakeRef(tier, hit), true, &batch);
          it.settled = true;
          continue;
        }
      }
      if (!root.empty()) {
        // Duplicates inside one request share too: the index only learns of this
        // run's blocks after they are written.
        size_t& first = leader[root[i]];
        if (first != SIZE_MAX) {
          it.same_as = first;
          continue;
        }
        first = i;
      }
      need.push_back(i);
    }
    if (need.empty()) {  // all mapped here (holes, dedup hits): nothing to write
      batch.Commit();
      const bool flush_needed = NeedFlushLocked();
      lock.unlock();
      return flush_needed ? Flush() : Status::Ok();
    }
    auto slots = AllocateRunLocked(t, need.size());
    if (slots.ok()) {
      for (size_t k = 0; k < need.size(); ++k) items[need[k]].slot = (*slots)[k];
      allocated = need.size();
      index_inserts = t.index.inserts();
      break;
    }
    // Other writers may take what a flush recycles before we retry: try again while
    // flushes still free something, a few times.
    if (attempt >= 3 || (t.pending_free.empty() && !RetainedLocked(t))) return slots.status();
    batch.Commit();
    lock.unlock();
    STRATA_RETURN_IF_ERROR(Flush());  // recycles slots freed by unflushed changes
  }

  TierStore& t = tiers_[tier];  // tiers_ never resizes after Load
  Status w;
  if (allocated > 0 && placed == nullptr) {
    // Write runs of consecutive blocks that got consecutive slots with one call each.
    std::vector<char> back;
    for (size_t i = 0; i < n && w.ok();) {
      if (items[i].slot == 0) {
        ++i;
        continue;
      }
      size_t j = i + 1;
      while (j < n && items[j].slot != 0 && items[j].slot == items[j - 1].slot + 1) ++j;
      std::span<const char> run(data + i * bs_, (j - i) * bs_);
      if (populated) {
        // Pages allocated ahead in an in-memory file: a store cannot fail. The bytes
        // are in the page cache before the section below journals their mapping, as a
        // pwrite's would be.
        std::memcpy(t.mapping->data() + items[i].slot * bs_, run.data(), run.size());
      } else {
        w = t.file->WriteAt(items[i].slot * bs_, run);
      }
      if (w.ok() && verify) {
        back.resize(run.size());
        w = t.file->ReadAt(items[i].slot * bs_, back);
        if (w.ok() && std::memcmp(back.data(), run.data(), run.size()) != 0) {
          w = InternalError("verify: blocks read back differ from what was written");
        }
      }
      i = j;
    }
  }
  bool flush_needed = false;
  std::array<bool, kRunBlocks> later{};  // see below
  bool any_later = false;
  FreshRun fresh;  // never-used slots a refill took: their pages allocated after the section
  TierStore* fresh_tier = nullptr;
  Status stored;
  {
    ExclusiveLock lock(mu_);
    MapBatch batch(enc_, lun.rec.id, lba, n);  // journaled before the lock is released
    if (from_reserve) {  // counted from here on, as AllocateRunLocked counts its slots
      for (size_t i = 0; i < n; ++i) {
        if (items[i].slot == 0) continue;
        t.refs[items[i].slot] = 1;
        ++t.used_slots;
      }
    }
    // One section (one_section from the reserve): holes and the dedup hits found under
    // the shared lock are mapped here too. A hit whose slot may have been recycled
    // since (a flush made freed slots reusable) is searched again; one that is no
    // longer there at all is written after this section, on its own (`later`).
    if (from_reserve && one_section && w.ok() && !lun.deleted) {
      for (size_t i = 0; i < n; ++i) {
        Item& it = items[i];
        if (it.zero) {
          SetMappingLocked(lun, lba + i, kHole, false, &batch);
          continue;
        }
        if (it.candidate == 0) continue;
        uint64_t hit = 0;
        if (t.reuse_gen == cand_gen && t.rewrites == cand_rewrites &&
            (t.refs[it.candidate] & kCountMask) > 0) {
          hit = it.candidate;
        } else {
          Status unread;  // a failed read: written on its own below, which reports it
          hit = EqualIndexedLocked(t, it.fp, block(i), have, &unread);
        }
        if (hit == 0) {
          later[i] = any_later = true;
          continue;
        }
        // The block already holds these bytes (a rewrite of the same data): nothing
        // changes, so no count, map entry or journal record either.
        if (lun.map.Get(lba + i) == MakeRef(tier, hit)) continue;
        ++t.refs[hit];
        SetMappingLocked(lun, lba + i, MakeRef(tier, hit), true, &batch);
      }
    }
    // Another writer or a fold pass may have indexed the same bytes while these were
    // written outside the lock: sharing its slot now keeps the tier free of two
    // unshared copies (one would stay for good).
    const bool index_grew = dedup && t.index.inserts() != index_inserts;
    for (size_t i = 0; i < n; ++i) {
      Item& it = items[i];
      if (it.slot == 0) continue;
      if (!w.ok() || lun.deleted || (expected && lun.map.Get(lba + i) != expected[i])) {
        ReleaseUnusedLocked(t, it.slot);
        it.slot = 0;
        continue;
      }
      t.written_end = std::max(t.written_end, (it.slot + 1) * bs_);
      MarkBackedLocked(t, it.slot);  // written, whether it keeps the block or not
      if (index_grew) {
        Status unread;  // a failed read: keep our own copy
        if (uint64_t hit = EqualIndexedLocked(t, it.fp, block(i), have, &unread)) {
          ReleaseUnusedLocked(t, it.slot);
          it.slot = hit;  // twins in this run (same_as) share it too
          ++t.refs[hit];
          SetMappingLocked(lun, lba + i, MakeRef(tier, hit), true, &batch);
          continue;
        }
      }
      bool indexed = dedup && t.index.Insert(it.fp, it.slot);
      if (indexed) t.refs[it.slot] |= kIndexedBit;
      SetMappingLocked(lun, lba + i, MakeRef(tier, it.slot), dedup, &batch);
    }
    if (w.ok() && !lun.deleted) {
      for (size_t i = 0; i < n; ++i) {
        const Item& it = items[i];
        if (it.same_as == SIZE_MAX) continue;
        uint64_t shared = items[it.same_as].slot;
        if (shared == 0) continue;  // its twin was rewritten meanwhile: left as it was
        if (expected && lun.map.Get(lba + i) != expected[i]) continue;
        ++t.refs[shared];
        SetMappingLocked(lun, lba + i, MakeRef(tier, shared), true, &batch);
      }
    }
    if ((small || one_section) && !lun.deleted) {
      fresh_tier = &tiers_[lun.rec.write_tier];
      fresh =
          RefillReserveLocked(*fresh_tier, n > kReserveMaxRun ? kReserveBatchLarge : kReserveBatch);
    }
    if (!w.ok()) {
      stored = w;
    } else if (lun.deleted) {
      stored = UnavailableError("LUN " + lun.rec.name + " was deleted");
    } else {
      flush_needed = NeedFlushLocked();
    }
  }
  if (fresh_tier != nullptr) PrepareFreshRun(*fresh_tier, fresh);
  STRATA_RETURN_IF_ERROR(stored);
  for (size_t i = 0; any_later && i < n; ++i) {
    // Rare: its dedup hit was recycled between the two locks. The caller holds the
    // block's stripe, so nothing else wrote it meanwhile.
    if (later[i]) {
      STRATA_RETURN_IF_ERROR(StoreRun(lun, lba + i, 1, block(i), {}, nullptr, false,
                                      i < fps.size() ? fps.subspan(i, 1) : fps.subspan(0, 0)));
    }
  }
  return flush_needed ? Flush() : Status::Ok();
}

Result<bool> EngineImpl::OverwriteInPlace(Lun& lun, uint64_t lba, size_t n, const char* data) {
  // Read without the lock: SetDedup may flip it meanwhile, and it is read again below.
  if (lun.dedup.load(std::memory_order_acquire)) return false;
  for (size_t i = 0; i < n; ++i) {
    if (IsZero(data + i * bs_, bs_)) return false;
  }
  SharedLock lock(mu_);
  if (lun.deleted || lun.dedup.load(std::memory_order_acquire)) return false;
  const uint32_t tier = lun.rec.write_tier;
  const TierStore& t = tiers_[tier];
  for (size_t i = 0; i < n; ++i) {
    BlockRef ref = lun.map.Get(lba + i);
    if (ref == kHole || RefTier(ref) != tier || !lun.map.OwnsLeaf(lba + i) ||
        t.refs[RefSlot(ref)] != 1) {  // a count of one and not indexed
      return false;
    }
  }
  // A few blocks of an in-memory tier: stored through its mapping and redo log (no
  // system call, no inode lock), each writer in its own lane.
  if (n <= kRewriteMaxRun && t.rewrite_log != nullptr && t.StoresThroughMapping()) {
    std::array<uint64_t, kRewriteMaxRun> slots{};
    bool inside = true;
    for (size_t i = 0; i < n && inside; ++i) {
      slots[i] = RefSlot(lun.map.Get(lba + i));
      inside = (slots[i] + 1) * bs_ <= t.written_end;
    }
    const int lane = inside ? t.rewrite_log->Acquire() : -1;
    if (lane >= 0) {
      t.rewrite_log->Rewrite(lane, t.mapping->data(), std::span<const uint64_t>(slots.data(), n),
                             data);
      t.rewrite_log->Release(lane);
      return true;
    }
  }
  // One pwrite per run of consecutive slots.
  for (size_t i = 0; i < n;) {
    uint64_t slot = RefSlot(lun.map.Get(lba + i));
    size_t j = i + 1;
    while (j < n && RefSlot(lun.map.Get(lba + j)) == slot + (j - i)) ++j;
    STRATA_RETURN_IF_ERROR(
        t.file->WriteAt(slot * bs_, std::span<const char>(data + i * bs_, (j - i) * bs_)));
    i = j;
  }
  return true;
}

bool EngineImpl::RewriteDedupInPlace(Lun& lun, uint64_t lba, size_t n, const char* data,
                                     std::span<const Fingerprint> fps) {
  if (n == 0 || n > kRewriteMaxRun || fps.size() < n) return false;
  for (size_t i = 0; i < n; ++i) {
    for (size_t k = 0; k < i; ++k) {
      if (fps[k] == fps[i]) return false;  // maybe twins: StoreRun shares them
    }
  }
  std::array<uint64_t, kRewriteMaxRun> slots{};
  constexpr uint32_t kOwnIndexed = 1 | kIndexedBit;  // a count of one, in the index
  std::vector<char> have;  // only if a candidate lies outside the view (never, here)
  const uint32_t tier = lun.rec.write_tier;
  // Whether the blocks still qualify and none of the new bytes are indexed yet.
  // REQUIRES: mu_ held (shared suffices).
  auto qualifies = [&](bool search) {
    if (lun.deleted || !lun.dedup.load(std::memory_order_acquire) || lun.rec.write_tier != tier) {
      return false;
    }
    const TierStore& t = tiers_[tier];
    if (t.rewrite_log == nullptr || !t.StoresThroughMapping()) return false;
    for (size_t i = 0; i < n; ++i) {
      const BlockRef ref = lun.map.Get(lba + i);
      if (ref == kHole || RefTier(ref) != tier || !lun.map.OwnsLeaf(lba + i)) return false;
      const uint64_t slot = RefSlot(ref);
      if (t.refs[slot] != kOwnIndexed || (slot + 1) * bs_ > t.written_end) return false;
      if (slots[i] != 0 && slots[i] != slot) return false;
      slots[i] = slot;
    }
    for (size_t i = 0; search && i < n; ++i) {
      // A duplicate (or these very bytes already in the slot): StoreRun shares it.
      Status err;
      if (EqualIndexedLocked(t, fps[i], data + i * bs_, have, &err) != 0 || !err.ok()) {
        return false;
      }
    }
    return true;
  };
  uint64_t inserts = 0;
  {
    SharedLock lock(mu_);
    if (!qualifies(true)) return false;
    const TierStore& t = tiers_[tier];
    inserts = t.index.inserts();
    // The slots' pages are mapped here, so the copies below (under the exclusive
    // lock) do not fault (this guest unmaps pages it has not touched for a while).
    for (size_t i = 0; i < n; ++i) {
      (void)*static_cast<const volatile char*>(t.view + slots[i] * bs_);
    }
  }
  ExclusiveLock lock(mu_);
  TierStore& t = tiers_[tier];
  // Another writer may have shared a slot, indexed the same bytes, or a snapshot may
  // have shared the leaf since: searched again only if the index grew.
  if (!qualifies(t.index.inserts() != inserts)) return false;
  const int lane = t.rewrite_log->Acquire();
  if (lane < 0) return false;  // every lane busy (plain LUNs' writers): a new slot then
  for (size_t i = 0; i < n; ++i) t.index.EraseSlot(slots[i]);
  // Through the redo log: a process killed halfway leaves no block half rewritten.
  t.rewrite_log->Rewrite(lane, t.mapping->data(), std::span<const uint64_t>(slots.data(), n), data);
  t.rewrite_log->Release(lane);
  for (size_t i = 0; i < n; ++i) {
    if (!t.index.Insert(fps[i], slots[i])) t.refs[slots[i]] &= ~kIndexedBit;
  }
  ++t.rewrites;
  return true;
}

Status EngineImpl::ReadBlockLocked(const Lun& lun, uint64_t lba, char* out) {
  BlockRef ref = lun.map.Get(lba);
  if (ref == kHole) {
    std::memset(out, 0, bs_);
    return Status::Ok();
  }
  return tiers_[RefTier(ref)].file->ReadAt(RefSlot(ref) * bs_, std::span<char>(out, bs_));
}

Status EngineImpl::Read(Lun& lun, uint64_t offset, std::span<char> out) {
  TouchIo(lun);
  std::shared_lock gate(lun.gate);
  if (lun.proxy) return lun.proxy->Read(offset, out);
  if (!lun.rec.moved_to.empty()) return MovedAway(lun);
  return ReadInner(lun, offset, out);
}

Status EngineImpl::Write(Lun& lun, uint64_t offset, std::span<const char> data, bool fua) {
  // One piece: WriteV passes it straight through (proxy, store and StoreHashes alike).
  return WriteV(lun, offset, std::span<const std::span<const char>>(&data, 1), fua);
}

Status EngineImpl::WriteV(Lun& lun, uint64_t offset, std::span<const std::span<const char>> pieces,
                          bool fua) {
  return WriteGated(lun, offset, pieces, {}, fua);
}

Status EngineImpl::WriteHashed(Lun& lun, uint64_t offset, std::span<const char> data,
                               std::span<const Fingerprint> fps, bool fua) {
  return WriteGated(lun, offset, std::span<const std::span<const char>>(&data, 1), fps, fua);
}

Status EngineImpl::WriteGated(Lun& lun, uint64_t offset,
                              std::span<const std::span<const char>> pieces,
                              std::span<const Fingerprint> fps, bool fua) {
  TouchIo(lun);
  std::shared_lock gate(lun.gate);
  if (lun.proxy) return lun.proxy->WriteV(offset, pieces, fua);
  if (!lun.rec.moved_to.empty()) return MovedAway(lun);
  if (lun.store_hashes) {
    auto scope = lun.store_hashes->StoreScope();
    Status s = WriteInnerV(lun, offset, pieces, fua, fps);
    if (s.ok()) {
      lun.store_hashes->Stored(offset, pieces);
    } else {
      uint64_t length = 0;
      for (const auto& p : pieces) length += p.size();
      lun.store_hashes->Failed(offset, length);
    }
    return s;
  }
  return WriteInnerV(lun, offset, pieces, fua, fps);
}

bool EngineImpl::TakePlacement(Lun& lun, size_t n, uint32_t* tier, uint64_t* slots) {
  if (n == 0 || n > kRunBlocks) return false;
  // The caller holds its connection's read lock: never wait here for a move's switch
  // (the gate held exclusively across a remote flush); the buffer path waits in Write.
  std::shared_lock gate(lun.gate, std::try_to_lock);
  if (!gate.owns_lock()) return false;
  if (lun.proxy || !lun.rec.moved_to.empty() || lun.store_hashes) return false;
  SharedLock lock(mu_);
  if (lun.deleted || !lun.dedup.load(std::memory_order_acquire)) return false;
  const uint32_t ti = lun.rec.write_tier;
  TierStore& t = tiers_[ti];
  if (!t.mapping || t.view != t.mapping->data()) return false;
  if (!TakeReserved(t, n, slots)) return false;
  for (size_t i = 0; i < n; ++i) {
    // Never past the file's end (SIGBUS): fresh slots the file does not hold yet.
    if (t.mapping->Write(slots[i] * bs_, bs_, t.written_end).empty()) {
      ReturnPlacement(ti, std::span<const uint64_t>(slots, n));
      return false;
    }
  }
  *tier = ti;
  return true;
}

void EngineImpl::ReturnPlacement(uint32_t tier, std::span<const uint64_t> slots) {
  if (slots.empty()) return;
  TierStore& t = tiers_[tier];
  std::lock_guard guard(*t.reserve_mu);
  // Handed out again in the order they were taken (TakeReserved takes from the back).
  for (auto it = slots.rbegin(); it != slots.rend(); ++it) t.reserved.push_back(*it);
}

Status EngineImpl::CommitPlaced(Lun& lun, uint64_t offset, size_t n, uint32_t tier,
                                std::span<const uint64_t> slots, std::span<const Fingerprint> fps,
                                bool fua, bool* used) {
  TouchIo(lun);
  {
    std::shared_lock gate(lun.gate);
    if (!lun.proxy && lun.rec.moved_to.empty() && !lun.store_hashes) {
      const uint64_t size = lun.size_bytes.load();
      if (offset > size || n * bs_ > size - offset) {
        return OutOfRangeError("write of " + std::to_string(n * bs_) + " bytes at " +
                               std::to_string(offset) + " is past the end (" +
                               std::to_string(size) + ")");
      }
      const uint64_t lba = offset / bs_;
      Placement placed{tier, slots.data(), used, false};
      Status stored;
      {
        StripeGuard stripes(lun, lba, n);
        stored = StoreRun(lun, lba, n, nullptr, {}, nullptr, false, fps, &placed);
        // After the write landed, and after a failure too (as WriteInner).
        for (size_t i = 0; !placed.fell_back && i < n; ++i) lun.MarkDirty(lba + i);
      }
      if (!placed.fell_back) {
        STRATA_RETURN_IF_ERROR(stored);
        return fua ? Flush() : Status::Ok();
      }
    }
  }
  // The usual way: the bytes copied out of the slots, which stay the caller's.
  std::vector<char> bytes(n * bs_);
  for (size_t i = 0; i < n; ++i)
    std::memcpy(bytes.data() + i * bs_, PlacedSpace(tier, slots[i]), bs_);
  return WriteHashed(lun, offset, bytes, fps, fua);
}

Status EngineImpl::Zero(Lun& lun, uint64_t offset, uint64_t length, bool fua) {
  TouchIo(lun);
  std::shared_lock gate(lun.gate);
  if (lun.proxy) return lun.proxy->WriteZeroes(offset, length, fua);
  if (!lun.rec.moved_to.empty()) return MovedAway(lun);
  if (lun.store_hashes) {
    auto scope = lun.store_hashes->StoreScope();
    Status s = ZeroInner(lun, offset, length, fua);
    if (s.ok()) {
      lun.store_hashes->StoredZeros(offset, length);
    } else {
      lun.store_hashes->Failed(offset, length);
    }
    return s;
  }
  return ZeroInner(lun, offset, length, fua);
}

Status EngineImpl::FlushLun(Lun& lun) {
  std::shared_lock gate(lun.gate);
  if (lun.proxy) return lun.proxy->Flush();
  if (!lun.rec.moved_to.empty()) return MovedAway(lun);
  return Flush();
}

Status EngineImpl::ReadInner(Lun& lun, uint64_t offset, std::span<char> out) {
  uint64_t size = lun.size_bytes.load();
  if (offset > size || out.size() > size - offset) {
    return OutOfRangeError("read of " + std::to_string(out.size()) + " bytes at " +
                           std::to_string(offset) + " is past the end (" + std::to_string(size) +
                           ")");
  }
  // A dedup LUN's blocks are scattered over shared slots (a 1 MiB read of 50 %
  // duplicates is a hundred runs): those are copied from the tier's mapping, no
  // system call a run. Other LUNs keep one pread a run, as their runs are long.
  const bool mapped = lun.dedup.load(std::memory_order_acquire);
  SharedLock lock(mu_);
  if (lun.deleted) return UnavailableError("LUN " + lun.rec.name + " was deleted");
  uint64_t pos = offset;
  size_t done = 0;
  while (done < out.size()) {
    uint64_t lba = pos / bs_;
    uint64_t in_block = pos % bs_;
    size_t n = static_cast<size_t>(std::min<uint64_t>(bs_ - in_block, out.size() - done));
    BlockRef ref = lun.map.Get(lba);
    // Extend over following whole blocks that sit in the next slots of the same
    // tier (or are holes after a hole), so a sequential read is one pread.
    while (done + n < out.size()) {
      size_t next = static_cast<size_t>(std::min<uint64_t>(bs_, out.size() - done - n));
      BlockRef r = lun.map.Get(lba + (in_block + n) / bs_);
      bool joins = ref == kHole ? r == kHole
                                : (r != kHole && RefTier(r) == RefTier(ref) &&
                                   RefSlot(r) == RefSlot(ref) + (in_block + n) / bs_);
      if (!joins) break;
      n += next;
    }
    if (ref == kHole) {
      std::memset(out.data() + done, 0, n);
    } else {
      const TierStore& t = tiers_[RefTier(ref)];
      const uint64_t at = RefSlot(ref) * bs_ + in_block;
      if (mapped && t.view != nullptr && at + n <= t.written_end) {  // written: inside the file
        std::memcpy(out.data() + done, t.view + at, n);
      } else {
        STRATA_RETURN_IF_ERROR(t.file->ReadAt(at, std::span<char>(out.data() + done, n)));
      }
    }
    pos += n;
    done += n;
  }
  return Status::Ok();
}

Status EngineImpl::StoreWholeBlocks(Lun& lun, uint64_t lba, size_t n, const char* run,
                                    std::span<const Fingerprint> fps) {
  // A dedup LUN's small overwrite: its fingerprints once, for both paths.
  std::array<Fingerprint, kRewriteMaxRun> own_fps;
  if (n <= kRewriteMaxRun && lun.dedup.load(std::memory_order_acquire)) {
    bool zero = false;
    for (size_t i = 0; i < n && !zero; ++i) zero = IsZero(run + i * bs_, bs_);
    if (!zero) {
      if (fps.size() < n) {
        for (size_t i = 0; i < n; ++i) own_fps[i] = Fp(run + i * bs_);
        fps = std::span<const Fingerprint>(own_fps.data(), n);
      }
      if (RewriteDedupInPlace(lun, lba, n, run, fps)) return Status::Ok();
    }
  }
  auto in_place = OverwriteInPlace(lun, lba, n, run);
  if (!in_place.ok()) return in_place.status();
  return *in_place ? Status::Ok() : StoreRun(lun, lba, n, run, {}, nullptr, false, fps);
}

Status EngineImpl::WriteInner(Lun& lun, uint64_t offset, std::span<const char> data, bool fua,
                              std::span<const Fingerprint> fps) {
  uint64_t size = lun.size_bytes.load();
  if (offset > size || data.size() > size - offset) {
    return OutOfRangeError("write of " + std::to_string(data.size()) + " bytes at " +
                           std::to_string(offset) + " is past the end (" + std::to_string(size) +
                           ")");
  }
  uint64_t pos = offset;
  size_t done = 0;
  const uint64_t first_whole = (offset + bs_ - 1) / bs_;  // the block fps[0] is of
  while (done < data.size()) {
    uint64_t lba = pos / bs_;
    uint64_t in_block = pos % bs_;
    if (in_block == 0 && data.size() - done >= bs_) {
      // Whole blocks: up to kRunBlocks at a time, under their stripes.
      size_t n = std::min<size_t>((data.size() - done) / bs_, kRunBlocks);
      const size_t k = static_cast<size_t>(lba - first_whole);
      std::span<const Fingerprint> run_fps =
          k < fps.size() ? fps.subspan(k, std::min(n, fps.size() - k)) : fps.subspan(0, 0);
      StripeGuard stripes(lun, lba, n);
      Status stored = StoreWholeBlocks(lun, lba, n, data.data() + done, run_fps);
      // After the write landed, and after a failure too: it may have changed some
      // of the mappings before it failed.
      for (size_t i = 0; i < n; ++i) lun.MarkDirty(lba + i);
      STRATA_RETURN_IF_ERROR(stored);
      pos += n * bs_;
      done += n * bs_;
      continue;
    }
    // A partial block: read, modify, write under the block's stripe.
    size_t n = static_cast<size_t>(std::min<uint64_t>(bs_ - in_block, data.size() - done));
    StripeGuard stripe(lun, lba, 1);
    std::vector<char> block(bs_);
    {
      SharedLock lock(mu_);
      STRATA_RETURN_IF_ERROR(ReadBlockLocked(lun, lba, block.data()));
    }
    std::memcpy(block.data() + in_block, data.data() + done, n);
    Status stored = StoreWholeBlocks(lun, lba, 1, block.data(), {});
    lun.MarkDirty(lba);
    STRATA_RETURN_IF_ERROR(stored);
    pos += n;
    done += n;
  }
  return fua ? Flush() : Status::Ok();
}

Status EngineImpl::WriteInnerV(Lun& lun, uint64_t offset,
                               std::span<const std::span<const char>> pieces, bool fua,
                               std::span<const Fingerprint> fps) {
  if (pieces.size() == 1) return WriteInner(lun, offset, pieces[0], fua, fps);
  uint64_t total = 0;
  for (const auto& p : pieces) total += p.size();
  const uint64_t size = lun.size_bytes.load();
  if (offset > size || total > size - offset) {
    return OutOfRangeError("write of " + std::to_string(total) + " bytes at " +
                           std::to_string(offset) + " is past the end (" + std::to_string(size) +
                           ")");
  }
  std::vector<char> joined;
  if (lun.dedup.load(std::memory_order_acquire)) {
    JoinPieces(pieces, &joined);
    return WriteInner(lun, offset, joined, fua);
  }
  std::vector<std::span<const char>> run;
  for (uint64_t done = 0; done < total;) {
    const uint64_t pos = offset + done;
    const uint64_t lba = pos / bs_;
    const uint64_t in_block = pos % bs_;
    uint64_t n = 0;  // bytes this step
    bool join = true;
    if (in_block == 0 && total - done >= bs_) {
      const size_t blocks =
          static_cast<size_t>(std::min<uint64_t>((total - done) / bs_, kRunBlocks));
      n = blocks * bs_;
      SubPieces(pieces, done, n, &run);
      // A zero block becomes a hole (StoreRun): such a run takes the joined path.
      std::vector<std::span<const char>> block;
      join = false;
      for (size_t b = 0; b < blocks && !join; ++b) {
        SubPieces(run, b * bs_, bs_, &block);
        join = PiecesAreZero(block);
      }
      if (!join) STRATA_RETURN_IF_ERROR(WriteBlocksV(lun, lba, blocks, run));
    } else {
      n = std::min<uint64_t>(bs_ - in_block, total - done);
      SubPieces(pieces, done, n, &run);
    }
    if (join) {
      JoinPieces(run, &joined);
      STRATA_RETURN_IF_ERROR(WriteInner(lun, pos, joined, false));
    }
    done += n;
  }
  return fua ? Flush() : Status::Ok();
}

Status EngineImpl::WriteBlocksV(Lun& lun, uint64_t lba, size_t n,
                                std::span<const std::span<const char>> run) {
  StripeGuard stripes(lun, lba, n);
  auto in_place = OverwriteInPlaceV(lun, lba, n, run);
  Status stored = !in_place.ok() ? in_place.status()
                  : *in_place    ? Status::Ok()
                                 : StoreNewRunV(lun, lba, n, run);
  for (size_t i = 0; i < n; ++i) lun.MarkDirty(lba + i);  // after a failure too, as WriteInner
  return stored;
}

Result<bool> EngineImpl::OverwriteInPlaceV(Lun& lun, uint64_t lba, size_t n,
                                           std::span<const std::span<const char>> run) {
  SharedLock lock(mu_);
  if (lun.deleted || lun.dedup.load(std::memory_order_acquire)) return false;
  const uint32_t tier = lun.rec.write_tier;
  const TierStore& t = tiers_[tier];
  for (size_t i = 0; i < n; ++i) {
    BlockRef ref = lun.map.Get(lba + i);
    if (ref == kHole || RefTier(ref) != tier || !lun.map.OwnsLeaf(lba + i) ||
        t.refs[RefSlot(ref)] != 1) {  // as OverwriteInPlace
      return false;
    }
  }
  std::vector<std::span<const char>> sub;
  for (size_t i = 0; i < n;) {
    uint64_t slot = RefSlot(lun.map.Get(lba + i));
    size_t j = i + 1;
    while (j < n && RefSlot(lun.map.Get(lba + j)) == slot + (j - i)) ++j;
    SubPieces(run, i * bs_, (j - i) * bs_, &sub);
    STRATA_RETURN_IF_ERROR(t.file->WriteAtV(slot * bs_, sub));
    i = j;
  }
  return true;
}

Status EngineImpl::StoreNewRunV(Lun& lun, uint64_t lba, size_t n,
                                std::span<const std::span<const char>> run) {
  uint32_t tier = 0;
  std::vector<uint64_t> slots;
  for (int attempt = 0;; ++attempt) {
    ExclusiveLock lock(mu_);
    if (lun.deleted) return UnavailableError("LUN " + lun.rec.name + " was deleted");
    tier = lun.rec.write_tier;
    TierStore& t = tiers_[tier];
    auto got = AllocateRunLocked(t, n);
    if (got.ok()) {
      slots = std::move(*got);
      break;
    }
    // As StoreRun: a flush recycles slots freed by unflushed changes.
    if (attempt >= 3 || (t.pending_free.empty() && !RetainedLocked(t))) return got.status();
    lock.unlock();
    STRATA_RETURN_IF_ERROR(Flush());
  }
  TierStore& t = tiers_[tier];  // tiers_ never resizes after Load
  Status w;
  std::vector<std::span<const char>> sub;
  for (size_t i = 0; i < n && w.ok();) {
    size_t j = i + 1;
    while (j < n && slots[j] == slots[j - 1] + 1) ++j;
    SubPieces(run, i * bs_, (j - i) * bs_, &sub);
    w = t.file->WriteAtV(slots[i] * bs_, sub);
    i = j;
  }
  bool flush_needed = false;
  {
    ExclusiveLock lock(mu_);
    for (size_t i = 0; i < n; ++i) {
      if (!w.ok() || lun.deleted) {
        ReleaseUnusedLocked(t, slots[i]);
        continue;
      }
      t.written_end = std::max(t.written_end, (slots[i] + 1) * bs_);
      SetMappingLocked(lun, lba + i, MakeRef(tier, slots[i]), false);
    }
    if (!w.ok()) return w;
    if (lun.deleted) return UnavailableError("LUN " + lun.rec.name + " was deleted");
    flush_needed = NeedFlushLocked();
  }
  return flush_needed ? Flush() : Status::Ok();
}

Status EngineImpl::ZeroInner(Lun& lun, uint64_t offset, uint64_t length, bool fua) {
  uint64_t size = lun.size_bytes.load();
  if (offset > size || length > size - offset) {
    return OutOfRangeError("zero of " + std::to_string(length) + " bytes at " +
                           std::to_string(offset) + " is past the end (" + std::to_string(size) +
                           ")");
  }
  uint64_t pos = offset;
  uint64_t end = offset + length;
  while (pos < end) {
    uint64_t lba = pos / bs_;
    uint64_t in_block = pos % bs_;
    if (in_block == 0 && end - pos >= bs_) {
      size_t n = static_cast<size_t>(std::min<uint64_t>((end - pos) / bs_, kRunBlocks));
      StripeGuard stripes(lun, lba, n);
      Status stored = StoreRun(lun, lba, n, nullptr, {}, nullptr, false);
      for (size_t i = 0; i < n; ++i) lun.MarkDirty(lba + i);
      STRATA_RETURN_IF_ERROR(stored);
      pos += n * bs_;
      continue;
    }
    uint64_t n = std::min<uint64_t>(bs_ - in_block, end - pos);
    StripeGuard stripe(lun, lba, 1);
    std::vector<char> block(bs_);
    {
      SharedLock lock(mu_);
      STRATA_RETURN_IF_ERROR(ReadBlockLocked(lun, lba, block.data()));
    }
    std::memset(block.data() + in_block, 0, n);
    Status stored = StoreRun(lun, lba, 1, block.data(), {}, nullptr, false);
    lun.MarkDirty(lba);
    STRATA_RETURN_IF_ERROR(stored);
    pos += n;
  }
  return fua ? Flush() : Status::Ok();
}

// ---- durability ----

std::string EngineImpl::EncodeStateLocked() {
  RecordEncoder e;
  for (const auto& [id, lun] : by_id_) {
    if (lun->is_snapshot) {
      SnapRecord r = lun->snap;
      r.share_map_from = 0;  // its own map records follow
      e.Snapshot(r);
    } else {
      e.Lun(lun->rec);
    }
    lun->map.ForEachMapped([&](uint64_t lba, BlockRef ref) {
      bool indexed = tiers_[RefTier(ref)].refs[RefSlot(ref)] & kIndexedBit;
      e.Map({id, lba, ref, indexed});
    });
  }
  return std::move(e.buffer());
}

Status EngineImpl::Flush() { return FlushInternal(false); }

Status EngineImpl::FlushInternal(bool force_checkpoint) {
  std::lock_guard flush_lock(flush_mu_);
  std::string records;
  std::string snapshot;
  std::vector<std::vector<uint64_t>> pending(tiers_.size());
  bool checkpoint = force_checkpoint;
  {
    ExclusiveLock lock(mu_);
    records.swap(enc_.buffer());
    enc_.Clear();
    for (size_t i = 0; i < tiers_.size(); ++i) pending[i].swap(tiers_[i].pending_free);
    checkpoint = checkpoint || checkpoint_needed_ || !journal_ ||
                 journal_size_ + records.size() > options_.checkpoint_bytes;
    if (checkpoint) snapshot = EncodeStateLocked();
  }
  auto restore_pending = [&] {
    ExclusiveLock lock(mu_);
    for (size_t i = 0; i < tiers_.size(); ++i) {
      auto& p = tiers_[i].pending_free;
      p.insert(p.end(), pending[i].begin(), pending[i].end());
    }
  };
  // Data first: a durable record must never point at data that is not.
  for (auto& t : tiers_) {
    Status s = t.file->Sync();
    if (!s.ok()) {
      restore_pending();
      return s;
    }
  }
  Status s;
  if (checkpoint) {
    // Snapshot of generation N+1, then journal N+1; journal N is obsolete once the
    // snapshot is durable (the snapshot names the journal that follows it).
    uint64_t next = journal_gen_ + 1;
    std::string file(kSnapshotMagic, 8);
    for (int i = 0; i < 8; ++i) file.push_back(static_cast<char>((next >> (8 * i)) & 0xff));
    file += snapshot;
    s = env_->WriteFileAtomically(SnapshotPath(), file);
    if (s.ok()) {
      auto j = env_->OpenFile(JournalPath(next), true);
      if (j.ok()) {
        s = (*j)->Truncate(0);
        if (s.ok()) s = (*j)->Sync();
        if (s.ok()) {
          journal_ = std::move(*j);
          (void)env_->RemoveFile(JournalPath(journal_gen_));
          journal_gen_ = next;
          journal_size_ = 0;
          checkpoint_needed_ = false;
        }
      } else {
        s = j.status();
      }
    }
  } else if (!records.empty()) {
    s = journal_->WriteAt(journal_size_, records);
    if (s.ok()) s = journal_->Sync();
    if (s.ok()) journal_size_ += records.size();
  }
  if (!s.ok()) {
    // A half-done checkpoint may already have made the old journal obsolete: the
    // next flush must checkpoint again rather than append to it.
    if (checkpoint) checkpoint_needed_ = true;
    // Keep the records for the next attempt; memory stays consistent with them.
    ExclusiveLock lock(mu_);
    records += enc_.buffer();
    enc_.buffer().swap(records);
    lock.unlock();
    restore_pending();
    return s;
  }
  // Reusable in address order (before the lock): a refill takes the free list's tail
  // in list order, so a large write then lands in ascending, nearby slots rather than
  // in the order random overwrites freed them, which its receive pays for in the
  // tier's page tables (docs/benchmarks.md, dedup1m).
  for (auto& p : pending) std::sort(p.begin(), p.end());
  ExclusiveLock lock(mu_);
  for (size_t i = 0; i < tiers_.size(); ++i) {
    TierStore& t = tiers_[i];
    auto& f = t.free_slots;
    const size_t before = f.size();
    if (t.mapping) {
      // Slots a move may still be sending from the mapping are held back (and those
      // held back by an earlier flush come back once their readers are gone).
      t.mapping->Retire(std::move(pending[i]), &f);
    } else {
      f.insert(f.end(), pending[i].begin(), pending[i].end());
    }
    if (f.size() != before) ++t.reuse_gen;
  }
  return Status::Ok();
}

// ---- moves to another device ----

Status EngineImpl::StartExport(const std::string& name, const std::string& to_device) {
  ExclusiveLock lock(mu_);
  auto lun = FindLocked(name);
  if (!lun) return NotFoundError("LUN '" + name + "' not found");
  if (!lun->rec.moved_to.empty()) {
    return FailedPreconditionError("LUN '" + name + "' already moved to " + lun->rec.moved_to);
  }
  if (lun->move.state == TierMove::State::kRunning || lun->tracking) {
    return FailedPreconditionError("LUN '" + name + "' is already moving");
  }
  // Snapshots share the LUN's blocks and stay on this device: moving the LUN away
  // would leave them behind (and keep a draining device busy). The caller decides:
  // delete them, or restore them into LUNs first (those can move).
  if (auto snaps = SnapshotsOfLocked(lun->rec.id); !snaps.empty()) {
    std::string list;
    for (const auto& n : snaps) list += (list.empty() ? "" : ", ") + n;
    return FailedPreconditionError("LUN '" + name + "' has snapshots (" + list +
                                   "); delete them before moving it to another device");
  }
  lun->dirty_words = (lun->map.blocks() + 63) / 64;
  lun->dirty.reset(new std::atomic<uint64_t>[lun->dirty_words]);
  for (uint64_t i = 0; i < lun->dirty_words; ++i) lun->dirty[i] = 0;
  lun->export_hashes = Lun::ExportHashes();
  lun->tracking.store(true, std::memory_order_release);
  uint64_t total = 0;
  lun->map.ForEachMapped([&](uint64_t, BlockRef) { total += bs_; });
  lun->move = TierMove{TierMove::State::kRunning,
                       tiers_[lun->rec.tier].config.tier_class,
                       tiers_[lun->rec.tier].config.tier_class,
                       0,
                       total,
                       0,
                       "",
                       to_device,
                       0,
                       0};
  return Status::Ok();
}

namespace {

// A run of a LUN's blocks handed out from its tier's mapping (Engine::MappedRun):
// pinned through the mapping at the epoch taken when the pass read the map.
class TierMappedRun final : public Engine::MappedRun {
 public:
  TierMappedRun(EngineImpl* engine, std::shared_ptr<Lun> lun, TierMapping* mapping, uint64_t epoch,
                uint32_t block_size, uint64_t lba, uint64_t blocks, const char* data)
      : MappedRun(lba, blocks, data),
        engine_(engine),
        bs_(block_size),
        lun_(std::move(lun)),
        mapping_(mapping),
        epoch_(epoch) {}

  bool Pin() override { return mapping_->TryPin(epoch_); }
  void Unpin() override { mapping_->Unpin(epoch_); }
  Status Reread(std::span<char> out) override {
    return engine_->ReadForCopy(*lun_, lba() * bs_, out);
  }

 private:
  EngineImpl* const engine_;
  const uint32_t bs_;
  const std::shared_ptr<Lun> lun_;
  TierMapping* const mapping_;
  const uint64_t epoch_;
};

}  // namespace

Result<uint64_t> EngineImpl::ExportPassOf(const std::shared_ptr<Lun>& lun_ptr, bool all_blocks,
                                          const Engine::BlockSink& sink, uint64_t hash_range_bytes,
                                          bool yield, const Engine::ReadBuffers& buffers,
                                          const Engine::MappedSink& mapped) {
  Lun& lun = *lun_ptr;
  using Clock = std::chrono::steady_clock;
  const auto started = Clock::now();
  constexpr uint64_t kGroupWords = kRunBlocks / 64;
  // How long a group waits for client requests in flight to end before it goes
  // anyway: bounds the copy's slowdown under constant client load.
  constexpr auto kMaxYield = std::chrono::microseconds(2000);
  // Progress (TierMove::bytes_copied) is published this often: it takes mu_.
  constexpr uint64_t kProgressBlocks = 8 * kRunBlocks;
  auto& hashes = lun.export_hashes;
  const uint64_t size = lun.size_bytes.load();
  std::optional<RangeHasher> hasher;
  if (hash_range_bytes > 0 && all_blocks) {
    hashes.range_bytes = hash_range_bytes;
    hashes.sums.assign((size + hash_range_bytes - 1) / hash_range_bytes, 0);
    hashes.stale.assign(hashes.sums.size(), false);
    hashes.complete = false;
    hasher.emplace(hash_range_bytes, size, &hashes.sums);
  }
  std::vector<char> own_buf(kRunBlocks * bs_);
  std::shared_ptr<char[]> group_buf;  // from `buffers`: the sink may keep it
  char* buf = own_buf.data();
  std::vector<uint64_t> lbas;
  std::vector<BlockRef> refs;
  std::vector<uint64_t> gens;  // each tier's reuse_gen when the map was read
  // The group's runs handed out from the mappings instead (`mapped`): [first, end) of
  // lbas/refs each.
  struct Mapped {
    size_t first, end;
    std::shared_ptr<Engine::MappedRun> run;
  };
  std::vector<Mapped> runs;
  uint64_t sent = 0;
  uint64_t sent_at_yield = 0;
  uint64_t unreported = 0;
  auto report = [&] {
    ExclusiveLock lock(mu_);
    lun.move.bytes_copied += unreported * bs_;
    unreported = 0;
    double secs = std::chrono::duration<double>(Clock::now() - started).count();
    if (secs > 0 && all_blocks) {
      lun.move.bytes_per_second = static_cast<double>(sent * bs_) / secs;
    }
  };
  // A group's blocks go to the hasher in LBA order (holes and blocks not sent as
  // nullptr; a full pass sends every mapped block), or, with no hasher, the ranges
  // they fall in are marked stale (hashed again before the switch).
  auto hash_group = [&](uint64_t first, uint64_t end, auto&& data_at) {
    if (hasher) {
      size_t k = 0;
      for (uint64_t lba = first; lba < end; ++lba) {
        const char* data = nullptr;
        if (k < lbas.size() && lbas[k] == lba) {
          if (refs[k] != kHole) data = data_at(k);
          ++k;
        }
        hasher->Feed(data, bs_);
      }
    } else if (hashes.range_bytes > 0) {
      for (uint64_t lba : lbas) {
        const uint64_t r = lba * bs_ / hashes.range_bytes;
        if (r < hashes.stale.size()) hashes.stale[r] = true;
      }
    }
  };
  // Not copied after all: the group's blocks from i on stay dirty for a later pass
  // or the abort.
  auto keep_dirty_from = [&](size_t i) {
    for (size_t k = i; k < lbas.size(); ++k) {
      lun.dirty[lbas[k] / 64].fetch_or(1ull << (lbas[k] % 64), std::memory_order_release);
    }
    if (hasher) hashes.complete = false;
  };
  for (uint64_t w0 = 0; w0 < lun.dirty_words; w0 += kGroupWords) {
    if (yield) {
      YieldToClients(kMaxYield, (sent - sent_at_yield) * bs_);  // paced by what was sent
      sent_at_yield = sent;
    }
    const uint64_t words = std::min(kGroupWords, lun.dirty_words - w0);
    uint64_t bits[kGroupWords] = {};
    // Clear the dirty bits before reading: a write landing after the read sets them
    // again and is copied in a later pass.
    for (uint64_t i = 0; i < words; ++i) {
      bits[i] = lun.dirty[w0 + i].exchange(0, std::memory_order_acq_rel);
    }
    lbas.clear();
    refs.clear();
    const uint64_t first = w0 * 64;
    uint64_t end = first;
    {
      // Only the map is read under the lock; the data is read after it is released,
      // so client writes (which take mu_ exclusively) never wait for this pass's
      // disk reads. A block's slot only changes through a write of that block, and
      // every write sets the block's dirty bit after it lands: whatever this read got
      // for a block rewritten meanwhile is sent again by a later pass (the last one
      // with I/O paused), and its range is hashed again before the switch. The old
      // slot keeps its bytes until a flush makes it reusable (reuse_gen moves): if
      // that happened during the read, the group is read again under the lock, so
      // no other LUN's bytes are ever sent, even for a moment.
      SharedLock lock(mu_);
      if (lun.deleted) return UnavailableError("LUN " + lun.rec.name + " was deleted");
      gens.clear();
      for (const auto& t : tiers_) gens.push_back(t.reuse_gen);
      end = std::min(first + words * 64, lun.map.blocks());
      for (uint64_t lba = first; lba < end; ++lba) {
        bool dirty = bits[(lba - first) / 64] & (1ull << (lba % 64));
        BlockRef ref = lun.map.Get(lba);
        if (!dirty && (!all_blocks || ref == kHole)) continue;
        lbas.push_back(lba);
        refs.push_back(ref);
      }
      // A plain LUN's blocks, all in written slots of mapped tiers: handed out where
      // they lie, pinned at the mapping's epoch of now (the map just read): a slot
      // freed after this and made reusable by a flush moves the epoch, so no pin of
      // this run succeeds while it may hold another LUN's bytes.
      runs.clear();
      bool use_map = mapped && !lun.dedup.load(std::memory_order_acquire);
      for (size_t i = 0; use_map && i < refs.size(); ++i) {
        if (refs[i] == kHole) continue;
        const TierStore& t = tiers_[RefTier(refs[i])];
        use_map = t.mapping && !t.mapping->Read(RefSlot(refs[i]) * bs_, bs_, t.written_end).empty();
      }
      for (size_t i = 0; use_map && i < lbas.size();) {
        const BlockRef ref = refs[i];
        if (ref == kHole) {
          ++i;
          continue;
        }
        const size_t j = SlotRunEnd(lbas, refs, i);
        TierMapping* m = tiers_[RefTier(ref)].mapping.get();
        runs.push_back({i, j,
                        std::make_shared<TierMappedRun>(this, lun_ptr, m, m->epoch(), bs_, lbas[i],
                                                        j - i, m->data() + RefSlot(ref) * bs_)});
        i = j;
      }
    }
    if (!runs.empty()) {
      // Hashed where they lie (without a pin: a slot reused meanwhile belongs to a
      // block rewritten since, which is dirty, so its range is hashed again before
      // the switch), then handed out in LBA order with the holes.
      size_t in_run = 0;
      hash_group(first, end, [&](size_t k) {
        while (runs[in_run].end <= k) ++in_run;
        return runs[in_run].run->data() + (k - runs[in_run].first) * bs_;
      });
      size_t r = 0;
      for (size_t i = 0; i < lbas.size();) {
        const bool run = r < runs.size() && runs[r].first == i;
        Status s = run ? mapped(runs[r].run) : sink(lbas[i], nullptr);
        const size_t next = run ? runs[r].end : i + 1;
        if (!s.ok()) {
          keep_dirty_from(i);
          return s;
        }
        if (run) ++r;
        sent += next - i;
        unreported += next - i;
        i = next;
      }
      if (unreported >= kProgressBlocks) report();
      continue;
    }
    // Read what is sent, one pread per run of consecutive slots.
    auto read_group = [&]() -> Status {
      for (size_t i = 0; i < lbas.size();) {
        const BlockRef ref = refs[i];
        if (ref == kHole) {
          ++i;
          continue;
        }
        const size_t j = SlotRunEnd(lbas, refs, i);
        std::span<char> run(buf + i * bs_, (j - i) * bs_);
        STRATA_RETURN_IF_ERROR(tiers_[RefTier(ref)].file->ReadAt(RefSlot(ref) * bs_, run));
        i = j;
      }
      return Status::Ok();
    };
    if (buffers && !lbas.empty()) {
      group_buf = buffers(kRunBlocks * bs_);
      buf = group_buf ? group_buf.get() : own_buf.data();
    }
    Status read = read_group();
    if (read.ok()) {
      SharedLock lock(mu_);
      bool recycled = false;
      for (size_t t = 0; t < tiers_.size(); ++t) recycled |= tiers_[t].reuse_gen != gens[t];
      if (recycled) {  // rare: read the map and the data again, under the lock
        for (size_t i = 0; i < lbas.size(); ++i) refs[i] = lun.map.Get(lbas[i]);
        read = read_group();
      }
    }
    if (!read.ok()) {
      for (uint64_t lba : lbas) lun.MarkDirty(lba);  // not copied: keep them for later
      return read;
    }
    hash_group(first, end, [&](size_t k) { return buf + k * bs_; });
    for (size_t i = 0; i < lbas.size(); ++i) {
      Status s = sink(lbas[i], refs[i] == kHole ? nullptr : buf + i * bs_);
      if (!s.ok()) {
        keep_dirty_from(i);
        return s;
      }
      ++sent;
      ++unreported;
    }
    if (unreported >= kProgressBlocks) report();
  }
  if (unreported > 0) report();
  if (hasher) hashes.complete = hasher->Done();
  return sent;
}

Result<uint64_t> EngineImpl::ExportPass(const std::string& name, bool all_blocks,
                                        const Engine::BlockSink& sink, uint64_t hash_range_bytes,
                                        const Engine::ReadBuffers& buffers,
                                        const Engine::MappedSink& mapped) {
  std::shared_ptr<Lun> lun;
  {
    SharedLock lock(mu_);
    lun = FindLocked(name);
    if (!lun) return NotFoundError("LUN '" + name + "' not found");
    if (!lun->tracking) return FailedPreconditionError("LUN '" + name + "' is not exporting");
  }
  return ExportPassOf(lun, all_blocks, sink, hash_range_bytes, /*yield=*/true, buffers, mapped);
}

void EngineImpl::PaceCopy(uint64_t copy_bytes) {
  using Clock = std::chrono::steady_clock;
  const CopyPacing& pacing = options_.copy_pacing;
  NoteCopyProgress(copy_bytes);  // the starvation guard's measure (--copy-priority idle)
  if (pacing.mode == CopyPacing::Mode::kNone || copy_bytes == 0) return;
  const Clock::time_point now = Now();
  const Clock::time_point last{Clock::duration(last_client_io_ns_.load(std::memory_order_relaxed))};
  // Busy: a request in flight, or one lately from a client still connected (a client
  // between requests). One that has gone (every client volume closed: nbdcopy that
  // filled a LUN, a kernel client detached) is not slowed down by the copy.
  const bool busy = client_io_.load() > 0 || (client_volumes_.load(std::memory_order_relaxed) > 0 &&
                                              now - last < kClientBusyWindow);
  Clock::duration wait;
  {
    std::lock_guard lock(pace_mu_);
    const uint64_t rate = copy_rate_ ? copy_rate_->OnCopy(now, copy_bytes, busy)
                                     : (busy ? pacing.fixed_bytes_per_second : 0);
    if (copy_rate_ && copy_rate_->rate() != logged_copy_rate_) {
      logged_copy_rate_ = copy_rate_->rate();
      spdlog::debug(
          "copy pacing: {} MiB/s while clients are busy (their p99 {} us in the last "
          "window, target {} us)",
          logged_copy_rate_ >> 20, copy_rate_->last_window().count() / 1000,
          copy_rate_->target().count() / 1000);
    }
    if (rate == 0) {  // no debt carried into the next busy spell
      copy_due_ = now;
      return;
    }
    copy_due_ = std::max(copy_due_, now) +
                std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                    static_cast<double>(copy_bytes) / static_cast<double>(rate)));
    wait = copy_due_ - now;
  }
  copy_paced_ns_.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count(),
                           std::memory_order_relaxed);
  // A rate limit, not synchronisation: a stop cuts it short. Waited for as a duration,
  // so a fake clock (EngineOptions::clock) decides it and the wall clock times it.
  std::unique_lock lock(movers_mu_);
  stop_cv_.wait_for(lock, wait, [this] { return stopping_.load(); });
}

void EngineImpl::YieldToClients(std::chrono::microseconds max_wait, uint64_t copy_bytes) {
  PaceCopy(copy_bytes);
  if (client_io_.load() == 0) return;
  yielding_.fetch_add(1);
  {
    std::unique_lock lock(yield_mu_);
    yield_cv_.wait_for(lock, max_wait, [&] { return client_io_.load() == 0; });
  }
  yielding_.fetch_sub(1);
}

uint64_t EngineImpl::ExportDirtyBlocks(const std::string& name) {
  SharedLock lock(mu_);
  auto lun = FindLocked(name);
  if (!lun || !lun->tracking) return 0;
  uint64_t n = 0;
  for (uint64_t w = 0; w < lun->dirty_words; ++w) {
    n += static_cast<uint64_t>(__builtin_popcountll(lun->dirty[w].load()));
  }
  return n;
}

Status EngineImpl::CompleteExport(const std::string& name, std::shared_ptr<Volume> remote,
                                  const Engine::BlockSink& sink,
                                  const std::function<Status()>& flush_remote,
                                  const Engine::RangeChecksums& target_checksums,
                                  uint64_t verify_range_bytes,
                                  const std::function<Status()>& accept_remote) {
  std::shared_ptr<Lun> lun;
  {
    SharedLock lock(mu_);
    lun = FindLocked(name);
    if (!lun) return NotFoundError("LUN '" + name + "' not found");
    if (!lun->tracking) return FailedPreconditionError("LUN '" + name + "' is not exporting");
  }
  // Verification, in two steps so the pause stays short: every range is hashed on
  // both devices while I/O continues; then, paused, the ranges that may have changed
  // since are hashed again: those with dirty blocks (every block written since the
  // last pass is dirty, and no pass runs in between) and those that differed. The
  // rest are equal at the switch if they were equal then: nothing wrote them here,
  // and the target's LUN is written only by this move.
  //
  // This device's hashes come from the full pass's own reads when it took them
  // (ExportPass with hash_range_bytes): no second read of the LUN. Each range's hash
  // is then of blocks read at different moments, but every block written after it
  // was read is dirty (so it was sent by a later pass, which marks its range stale,
  // or is dirty at the pause): a range neither stale nor dirty holds, at the switch,
  // exactly the bytes hashed. The target's hashes are always of what it stored, read
  // back after every earlier pass was applied there.
  const uint64_t size = lun->size_bytes.load();  // ResizeLun refuses while exporting
  const uint64_t range_bytes = verify_range_bytes;
  const uint64_t ranges = target_checksums ? (size + range_bytes - 1) / range_bytes : 0;
  const auto& hashed = lun->export_hashes;
  const bool from_pass = target_checksums && hashed.complete && hashed.range_bytes == range_bytes &&
                         hashed.sums.size() == ranges;
  std::vector<uint64_t> ours(ranges), theirs(ranges);
  if (from_pass) {
    ours = hashed.sums;
    STRATA_RETURN_IF_ERROR(
        HashRuns(*lun, target_checksums, range_bytes, size, {{0, ranges}}, nullptr, &theirs));
  } else if (target_checksums) {
    STRATA_RETURN_IF_ERROR(
        HashRuns(*lun, target_checksums, range_bytes, size, {{0, ranges}}, &ours, &theirs));
  }
  // Pause this LUN's I/O: requests wait here (they do not fail) while the last
  // dirty blocks go over and the target makes them durable.
  std::unique_lock gate(lun->gate);
  std::vector<bool> again(ranges);
  if (target_checksums) {
    for (uint64_t w = 0; w < lun->dirty_words; ++w) {
      uint64_t bits = lun->dirty[w].load(std::memory_order_acquire);
      for (; bits; bits &= bits - 1) {
        const uint64_t lba = w * 64 + static_cast<uint64_t>(__builtin_ctzll(bits));
        if (lba * bs_ < size) again[lba * bs_ / range_bytes] = true;
      }
    }
    for (uint64_t i = 0; i < ranges; ++i) {
      again[i] = again[i] || ours[i] != theirs[i] || (from_pass && hashed.stale[i]);
    }
  }
  // No yielding here: this LUN's own clients wait on the gate (and count as in flight).
  STRATA_ASSIGN_OR_RETURN(uint64_t last, ExportPassOf(lun, false, sink, 0, /*yield=*/false));
  (void)last;
  STRATA_RETURN_IF_ERROR(flush_remote());
  uint64_t verified = 0;
  double verify_seconds = 0;
  if (target_checksums) {
    const auto paused = std::chrono::steady_clock::now();
    std::vector<std::pair<uint64_t, uint64_t>> runs;
    for (uint64_t i = 0; i < ranges; ++i) {
      if (!again[i]) continue;
      if (!runs.empty() && runs.back().second == i) {
        runs.back().second = i + 1;
      } else {
        runs.emplace_back(i, i + 1);
      }
    }
    STRATA_RETURN_IF_ERROR(
        HashRuns(*lun, target_checksums, range_bytes, size, runs, &ours, &theirs));
    for (uint64_t i = 0; i < ranges; ++i) {
      if (ours[i] == theirs[i]) continue;
      const uint64_t begin = i * range_bytes;
      const uint64_t end = std::min(size, begin + range_bytes);
      return Status(StatusCode::kDataLoss,
                    "verify the copy: range " + std::to_string(i) + " (bytes " +
                        std::to_string(begin) + ".." + std::to_string(end) +
                        ") differs between this device and the target; not switched");
    }
    verified = size;
    verify_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - paused).count();
  }
  // Accept before switching: a crash between the two leaves a whole, verified copy
  // on the target and this LUN still authoritative here (the next move replaces the
  // copy); the other order could leave this LUN proxying to a copy the target deletes
  // as incoming when it restarts.
  if (accept_remote) STRATA_RETURN_IF_ERROR(accept_remote());
  {
    ExclusiveLock lock(mu_);
    lun->move.verified_bytes = verified;
    lun->move.verify_seconds = verify_seconds;
    lun->proxy = std::move(remote);
    lun->rec.moved_to = lun->move.to_device;
    lun->tracking = false;
    lun->map.Release([&](BlockRef ref) { DecrefLocked(ref); });
    enc_.Lun(lun->rec);
    lun->move.state = TierMove::State::kDone;
  }
  // The switch durable before the gate opens: a write let through goes to the target,
  // and must not be acknowledged there while a crash could still bring this device back
  // without the switch (authoritative again, without that write). So a crash before
  // this flush leaves the target's copy exactly as of the pause, and one after it
  // leaves this device proxying.
  Status durable = Flush();
  gate.unlock();
  move_cv_.notify_all();
  STRATA_RETURN_IF_ERROR(durable);
  return Status::Ok();
}

Result<std::vector<uint64_t>> EngineImpl::ChecksumsInner(Lun& lun, uint64_t range_bytes,
                                                         uint64_t offset, uint64_t length) {
  std::vector<uint64_t> out;
  if (offset % bs_ == 0 && length % bs_ == 0 && range_bytes % bs_ == 0) {
    // Whole blocks: hashed where they lie (the tier's mapping, else one pread per run of
    // consecutive slots into a buffer), under mu_ shared per range like ReadInner's read,
    // so no slot is freed and reused meanwhile: no copy of the bytes first.
    out.assign((length + range_bytes - 1) / range_bytes, 0);
    RangeHasher hasher(range_bytes, length, &out);
    std::vector<char> buf;
    for (uint64_t pos = offset; pos < offset + length; pos += range_bytes) {
      const uint64_t first = pos / bs_;
      const uint64_t end = (pos + std::min(range_bytes, offset + length - pos)) / bs_;
      SharedLock lock(mu_);
      if (lun.deleted) return UnavailableError("LUN " + lun.rec.name + " was deleted");
      for (uint64_t lba = first; lba < end;) {
        const BlockRef ref = lun.map.Get(lba);
        uint64_t n = 1;
        if (ref == kHole) {
          while (lba + n < end && lun.map.Get(lba + n) == kHole) ++n;
          hasher.Feed(nullptr, n * bs_);
          lba += n;
          continue;
        }
        while (lba + n < end) {
          const BlockRef r = lun.map.Get(lba + n);
          if (r == kHole || RefTier(r) != RefTier(ref) || RefSlot(r) != RefSlot(ref) + n) break;
          ++n;
        }
        const TierStore& t = tiers_[RefTier(ref)];
        const uint64_t at = RefSlot(ref) * bs_;
        if (t.view != nullptr && at + n * bs_ <= t.written_end) {
          hasher.Feed(t.view + at, n * bs_);
        } else {
          buf.resize(n * bs_);
          STRATA_RETURN_IF_ERROR(t.file->ReadAt(at, std::span<char>(buf.data(), buf.size())));
          hasher.Feed(buf.data(), buf.size());
        }
        lba += n;
      }
    }
    return out;
  }
  out.reserve((length + range_bytes - 1) / range_bytes);
  std::vector<char> buf(static_cast<size_t>(std::min(range_bytes, length)));
  for (uint64_t pos = offset; pos < offset + length; pos += range_bytes) {
    const size_t n = static_cast<size_t>(std::min(range_bytes, offset + length - pos));
    STRATA_RETURN_IF_ERROR(ReadInner(lun, pos, std::span<char>(buf.data(), n)));
    out.push_back(Xxh3Of(buf.data(), n));
  }
  return out;
}

Status EngineImpl::HashRuns(Lun& lun, const Engine::RangeChecksums& target, uint64_t range_bytes,
                            uint64_t size, const std::vector<std::pair<uint64_t, uint64_t>>& runs,
                            std::vector<uint64_t>* ours, std::vector<uint64_t>* theirs) {
  auto span_of = [&](const std::pair<uint64_t, uint64_t>& run) {
    const uint64_t offset = run.first * range_bytes;
    return std::make_pair(offset, std::min(size, run.second * range_bytes) - offset);
  };
  auto remote = std::async(std::launch::async, [&]() -> Status {
    for (const auto& run : runs) {
      auto [offset, length] = span_of(run);
      STRATA_ASSIGN_OR_RETURN(auto sums, target(range_bytes, offset, length));
      if (sums.size() != run.second - run.first) {
        return Status(StatusCode::kDataLoss,
                      "the target has " + std::to_string(sums.size()) + " checksums for ranges " +
                          std::to_string(run.first) + ".." + std::to_string(run.second) +
                          "; expected " + std::to_string(run.second - run.first));
      }
      std::copy(sums.begin(), sums.end(), theirs->begin() + static_cast<ptrdiff_t>(run.first));
    }
    return Status::Ok();
  });
  Status local = Status::Ok();
  for (const auto& run : ours ? runs : std::vector<std::pair<uint64_t, uint64_t>>()) {
    auto [offset, length] = span_of(run);
    auto sums = ChecksumsInner(lun, range_bytes, offset, length);
    if (!sums.ok()) {
      local = sums.status();
      break;
    }
    std::copy(sums->begin(), sums->end(), ours->begin() + static_cast<ptrdiff_t>(run.first));
  }
  Status there = remote.get();
  if (!local.ok()) return local.WithContext("verify the copy: checksums here");
  if (!there.ok()) return there.WithContext("verify the copy: checksums of the target");
  return Status::Ok();
}

Result<std::vector<uint64_t>> EngineImpl::LunChecksums(const std::string& name,
                                                       uint64_t range_bytes, uint64_t offset,
                                                       uint64_t length) {
  if (range_bytes == 0 || range_bytes % 4096 != 0 || range_bytes > Engine::kMaxChecksumRangeBytes) {
    return InvalidArgumentError("range_bytes: " + std::to_string(range_bytes) +
                                " is not a multiple of 4096 from 4096 to " +
                                std::to_string(Engine::kMaxChecksumRangeBytes));
  }
  if (offset % range_bytes != 0) {
    return InvalidArgumentError("offset: " + std::to_string(offset) +
                                " is not a multiple of range_bytes");
  }
  std::shared_ptr<Lun> lun;
  {
    SharedLock lock(mu_);
    lun = FindLocked(name);
    if (!lun) return NotFoundError("LUN '" + name + "' not found");
  }
  std::shared_lock gate(lun->gate);
  if (lun->proxy || !lun->rec.moved_to.empty()) {
    return FailedPreconditionError("LUN '" + name + "' moved to " + lun->rec.moved_to +
                                   ": ask that device");
  }
  const uint64_t size = lun->size_bytes.load();
  if (offset > size) {
    return OutOfRangeError("offset: " + std::to_string(offset) + " is past the end (" +
                           std::to_string(size) + ")");
  }
  length = std::min(length, size - offset);
  if ((length + range_bytes - 1) / range_bytes > Engine::kMaxChecksumRanges) {
    return InvalidArgumentError("length: more than " + std::to_string(Engine::kMaxChecksumRanges) +
                                " ranges in one call");
  }
  StoreHashes* stored = lun->store_hashes.get();
  if (!stored || range_bytes != StoreHashes::kRangeBytes || !stored->enabled()) {
    return ChecksumsInner(*lun, range_bytes, offset, length);
  }
  // A move's copy: the hashes taken as it was stored; a range they do not know is
  // read and hashed.
  auto scope = stored->ChecksumScope();
  std::vector<uint64_t> out;
  out.reserve((length + range_bytes - 1) / range_bytes);
  for (uint64_t pos = offset; pos < offset + length; pos += range_bytes) {
    const uint64_t n = std::min(range_bytes, offset + length - pos);
    std::optional<uint64_t> h;
    if (n == range_bytes || pos + n == size) {  // a whole range (the last one may be short)
      STRATA_ASSIGN_OR_RETURN(
          h, stored->Checksum(pos / range_bytes, [&](uint64_t at, std::span<char> buf) {
            return ReadInner(*lun, at, buf);
          }));
    }
    if (!h) {
      STRATA_ASSIGN_OR_RETURN(auto sums, ChecksumsInner(*lun, range_bytes, pos, n));
      h = sums.at(0);
    }
    out.push_back(*h);
  }
  return out;
}

void EngineImpl::AbortExport(const std::string& name, const Status& why) {
  ExclusiveLock lock(mu_);
  auto lun = FindLocked(name);
  if (!lun || !lun->tracking) return;
  lun->tracking = false;
  bool cancelled = why.code() == StatusCode::kCancelled;
  lun->move.state = cancelled ? TierMove::State::kCancelled : TierMove::State::kFailed;
  lun->move.message = (cancelled ? "cancelled" : "failed: " + why.message()) +
                      "; the LUN stays whole on this device";
  move_cv_.notify_all();
}

// ---- tier moves ----

Status EngineImpl::StartTierMove(const std::string& name, TierClass target_class) {
  STRATA_ASSIGN_OR_RETURN(int target_i, TierIndex(target_class));
  uint32_t target = static_cast<uint32_t>(target_i);
  std::shared_ptr<Lun> lun;
  {
    ExclusiveLock lock(mu_);
    lun = FindLocked(name);
    if (!lun) return NotFoundError("LUN '" + name + "' not found");
    if (lun->move.state == TierMove::State::kRunning) {
      return FailedPreconditionError("LUN '" + name + "' is already moving to tier " +
                                     std::string(TierClassName(lun->move.to)));
    }
    if (!lun->rec.moved_to.empty() || lun->tracking) {
      return FailedPreconditionError("LUN '" + name + "' is moving or has moved to another device");
    }
    if (lun->rec.tier == target) return Status::Ok();
    uint64_t total = 0;
    lun->map.ForEachMapped([&](uint64_t, BlockRef r) {
      if (RefTier(r) != target) total += bs_;
    });
    lun->move = TierMove{TierMove::State::kRunning,
                         tiers_[lun->rec.tier].config.tier_class,
                         target_class,
                         0,
                         total,
                         0,
                         "",
                         "",
                         0,
                         0};
    lun->cancel_requested = false;
    lun->rec.write_tier = target;
    enc_.Lun(lun->rec);
  }
  STRATA_RETURN_IF_ERROR(Flush());
  SpawnMover(lun, target, false);
  return Status::Ok();
}

Status EngineImpl::CancelTierMove(const std::string& name) {
  ExclusiveLock lock(mu_);
  auto lun = FindLocked(name);
  if (!lun) return NotFoundError("LUN '" + name + "' not found");
  if (lun->move.state != TierMove::State::kRunning) {
    return FailedPreconditionError("LUN '" + name + "' has no move running");
  }
  lun->cancel_requested = true;
  return Status::Ok();
}

Result<TierMove> EngineImpl::WaitTierMove(const std::string& name) {
  ExclusiveLock lock(mu_);
  auto lun = FindLocked(name);
  if (!lun) return NotFoundError("LUN '" + name + "' not found");
  move_cv_.wait(lock, [&] { return lun->move.state != TierMove::State::kRunning || lun->deleted; });
  return lun->move;
}

Result<TierMove> EngineImpl::WaitTierMoveFor(const std::string& name,
                                             std::chrono::milliseconds timeout) {
  ExclusiveLock lock(mu_);
  auto lun = FindLocked(name);
  if (!lun) return NotFoundError("LUN '" + name + "' not found");
  move_cv_.wait_for(lock, timeout,
                    [&] { return lun->move.state != TierMove::State::kRunning || lun->deleted; });
  return lun->move;
}

void EngineImpl::SpawnMover(std::shared_ptr<Lun> lun, uint32_t target, bool rollback) {
  std::lock_guard lock(movers_mu_);
  movers_.emplace_back([this, lun, target, rollback] { MoveLoop(lun, target, rollback); });
}

void EngineImpl::MoveLoop(std::shared_ptr<Lun> lun, uint32_t target, bool rollback) {
  BecomeCopyThread();
  using Clock = std::chrono::steady_clock;
  const auto started = Clock::now();
  std::string failure;
  bool cancelled = false;
  uint64_t blocks;
  {
    SharedLock lock(mu_);
    blocks = lun->map.blocks();
  }
  // Windows of kRunBlocks: one shared-locked pass reads what must move (runs of
  // consecutive slots in one pread), then each run of consecutive blocks is stored
  // in the target with one compare-and-swap StoreRun (verify on).
  std::vector<char> buf;
  std::vector<BlockRef> refs;
  std::vector<bool> need;
  int window_passes = 0;
  for (uint64_t base = 0; base < blocks && !stopping_;) {
    const size_t w = static_cast<size_t>(std::min<uint64_t>(kRunBlocks, blocks - base));
    if (options_.mover_step_for_test && window_passes == 0) {
      for (size_t i = 0; i < w; ++i) {
        if (!options_.mover_step_for_test(base + i)) return;
      }
    }
    buf.resize(w * bs_);
    refs.assign(w, kHole);
    need.assign(w, false);
    size_t moving = 0;
    {
      SharedLock lock(mu_);
      if (lun->deleted) return;
      if (lun->cancel_requested && !rollback) {
        cancelled = true;
        break;
      }
      if (base + w > lun->map.blocks()) break;
      for (size_t i = 0; i < w; ++i) {
        refs[i] = lun->map.Get(base + i);
        need[i] = refs[i] != kHole && RefTier(refs[i]) != target;
        moving += need[i];
      }
      for (size_t i = 0; i < w && failure.empty();) {
        if (!need[i]) {
          ++i;
          continue;
        }
        size_t j = i + 1;
        while (j < w && need[j] && RefTier(refs[j]) == RefTier(refs[i]) &&
               RefSlot(refs[j]) == RefSlot(refs[j - 1]) + 1) {
          ++j;
        }
        std::span<char> run(buf.data() + i * bs_, (j - i) * bs_);
        if (!tiers_[RefTier(refs[i])].file->ReadAt(RefSlot(refs[i]) * bs_, run).ok()) {
          failure = "read of block " + std::to_string(base + i) + " failed";
        }
        i = j;
      }
    }
    if (!failure.empty()) break;
    for (size_t i = 0; i < w && failure.empty();) {
      if (!need[i]) {
        ++i;
        continue;
      }
      size_t j = i + 1;
      while (j < w && need[j]) ++j;
      // Blocks rewritten meanwhile are skipped inside (their new data is in place).
      Status s = StoreRun(*lun, base + i, j - i, buf.data() + i * bs_, target, &refs[i],
                          /*verify=*/true);
      if (!s.ok()) failure = s.message();
      i = j;
    }
    if (!failure.empty()) break;
    // A window is done when nothing in it needs moving; a block left behind (its
    // twin in a shared run was rewritten meanwhile) gets another pass.
    if (moving == 0 || ++window_passes > 4) {
      base += w;
      window_passes = 0;
      continue;
    }
    NoteCopyProgress(moving * bs_);
    ExclusiveLock lock(mu_);
    lun->move.bytes_copied += moving * bs_;
    double secs = std::chrono::duration<double>(Clock::now() - started).count();
    if (secs > 0) lun->move.bytes_per_second = static_cast<double>(lun->move.bytes_copied) / secs;
  }
  if (stopping_) return;  // resumed (rolled back) at the next start

  if (cancelled || !failure.empty()) {
    // Send new writes back to the source and return copied blocks there.
    uint32_t source;
    {
      ExclusiveLock lock(mu_);
      if (lun->deleted) return;
      source = lun->rec.tier;
      lun->rec.write_tier = source;
      enc_.Lun(lun->rec);
    }
    MoveLoop(lun, source, /*rollback=*/true);
    if (stopping_) return;
    // The end state is published only after the flush: WaitTierMove's caller may rely on the
    // rolled-back record being durable (a waiter woken for any reason re-checks the state).
    (void)Flush();
    {
      ExclusiveLock lock(mu_);
      lun->move.state = cancelled ? TierMove::State::kCancelled : TierMove::State::kFailed;
      lun->move.message = cancelled
                              ? "cancelled; blocks moved back to the source tier"
                              : "failed: " + failure + "; blocks moved back to the source tier";
    }
    move_cv_.notify_all();
    return;
  }
  bool done = false;
  {
    ExclusiveLock lock(mu_);
    if (lun->deleted) return;
    if (!rollback) {
      lun->rec.tier = target;
      lun->rec.write_tier = target;
      enc_.Lun(lun->rec);
      done = true;  // published after the flush below, once the new tier is durable
    } else if (lun->move.state == TierMove::State::kRunning &&
               lun->move.to == tiers_[target].config.tier_class) {
      // A rollback started by recovery is the whole move.
      lun->move.state = TierMove::State::kCancelled;
      lun->move.message = "interrupted by a restart; blocks moved back to the source tier";
    }
  }
  (void)Flush();
  if (done) {
    ExclusiveLock lock(mu_);
    if (!lun->deleted) lun->move.state = TierMove::State::kDone;
  }
  move_cv_.notify_all();
}

}  // namespace engine

Status ValidateLunMetadata(const std::map<std::string, std::string>& metadata) {
  if (metadata.size() > kMaxLunMetadataEntries) {
    return InvalidArgumentError("metadata: " + std::to_string(metadata.size()) +
                                " entries, at most " + std::to_string(kMaxLunMetadataEntries) +
                                " are allowed");
  }
  for (const auto& [key, value] : metadata) {
    if (key.empty() || key.size() > kMaxLunMetadataKeyBytes) {
      return InvalidArgumentError("metadata: key '" + key + "' must be 1-" +
                                  std::to_string(kMaxLunMetadataKeyBytes) + " characters, got " +
                                  std::to_string(key.size()));
    }
    if (value.size() > kMaxLunMetadataValueBytes) {
      return InvalidArgumentError("metadata: the value of key '" + key + "' is " +
                                  std::to_string(value.size()) + " characters, at most " +
                                  std::to_string(kMaxLunMetadataValueBytes) + " are allowed");
    }
  }
  return Status::Ok();
}

// ---- public facade ----

Engine::Engine(std::unique_ptr<engine::EngineImpl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

Result<std::unique_ptr<Engine>> Engine::Open(Env* env, EngineOptions options) {
  auto impl = std::make_unique<engine::EngineImpl>(env, std::move(options));
  STRATA_RETURN_IF_ERROR(impl->Load());
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

Result<LunInfo> Engine::CreateLun(const LunSpec& spec) { return impl_->CreateLun(spec); }
Result<LunInfo> Engine::CloneLun(const std::string& source, const LunSpec& spec) {
  return impl_->CloneLun(source, spec);
}
Status Engine::DeleteLun(const std::string& name) { return impl_->DeleteLun(name); }
Result<LunInfo> Engine::AcceptLun(const std::string& name, const std::string& wwn) {
  return impl_->AcceptLun(name, wwn);
}
std::vector<std::string> Engine::IncomingDroppedAtOpen() { return impl_->IncomingDroppedAtOpen(); }
Result<SnapshotInfo> Engine::CreateSnapshot(const std::string& source, const std::string& name,
                                            const std::map<std::string, std::string>& metadata) {
  return impl_->CreateSnapshot(source, name, metadata);
}
Status Engine::DeleteSnapshot(const std::string& name) { return impl_->DeleteSnapshot(name); }
Result<SnapshotInfo> Engine::GetSnapshot(const std::string& name) {
  return impl_->GetSnapshot(name);
}
std::vector<SnapshotInfo> Engine::ListSnapshots() { return impl_->ListSnapshots(); }
Result<LunInfo> Engine::RestoreSnapshot(const std::string& snapshot, const LunSpec& spec) {
  return impl_->RestoreSnapshot(snapshot, spec);
}
Result<LunInfo> Engine::ResizeLun(const std::string& name, uint64_t size) {
  return impl_->ResizeLun(name, size);
}
Result<LunInfo> Engine::SetAccess(const std::string& name, std::vector<std::string> allowed,
                                  std::vector<std::string> identities) {
  return impl_->SetAccess(name, std::move(allowed), std::move(identities));
}
Result<LunInfo> Engine::Publish(const std::string& name, const std::string& node_id,
                                const std::vector<std::string>& entries) {
  return impl_->Publish(name, node_id, entries);
}
Result<LunInfo> Engine::Unpublish(const std::string& name, const std::string& node_id,
                                  const std::vector<std::string>& entries) {
  return impl_->Unpublish(name, node_id, entries);
}
Result<LunInfo> Engine::SetDedup(const std::string& name, bool dedup, bool fold_existing) {
  return impl_->SetDedup(name, dedup, fold_existing);
}
Status Engine::WaitFold(const std::string& name) { return impl_->WaitFold(name); }
Result<LunInfo> Engine::GetLun(const std::string& name) { return impl_->GetLun(name); }
std::vector<LunInfo> Engine::ListLuns() { return impl_->ListLuns(); }
size_t Engine::LunCount() { return impl_->LunCount(); }
std::map<std::string, SpaceStats> Engine::OwnerSpace() { return impl_->OwnerSpace(); }
SpaceStats Engine::DeviceSpace() { return impl_->DeviceSpace(); }
std::vector<TierUsage> Engine::Tiers() { return impl_->Tiers(); }
Status Engine::StartTierMove(const std::string& name, TierClass target) {
  return impl_->StartTierMove(name, target);
}
Status Engine::CancelTierMove(const std::string& name) { return impl_->CancelTierMove(name); }
Result<TierMove> Engine::WaitTierMove(const std::string& name) { return impl_->WaitTierMove(name); }
Result<TierMove> Engine::WaitTierMoveFor(const std::string& name,
                                         std::chrono::milliseconds timeout) {
  return impl_->WaitTierMoveFor(name, timeout);
}
Result<std::shared_ptr<Volume>> Engine::OpenVolume(const std::string& name) {
  return impl_->OpenVolume(name, nullptr);
}
Result<std::shared_ptr<Volume>> Engine::OpenVolumeForProxy(const std::string& name) {
  return impl_->OpenVolume(name, nullptr, /*incoming_ok=*/false);
}
Status Engine::Flush() { return impl_->Flush(); }
Status Engine::StartExport(const std::string& name, const std::string& to_device) {
  return impl_->StartExport(name, to_device);
}
Result<uint64_t> Engine::ExportPass(const std::string& name, bool all_blocks, const BlockSink& sink,
                                    uint64_t hash_range_bytes, const ReadBuffers& buffers,
                                    const MappedSink& mapped) {
  return impl_->ExportPass(name, all_blocks, sink, hash_range_bytes, buffers, mapped);
}
std::chrono::nanoseconds Engine::CopyPacedTime() const { return impl_->CopyPacedTime(); }
void Engine::YieldToClients(std::chrono::microseconds max_wait, uint64_t copy_bytes) {
  impl_->YieldToClients(max_wait, copy_bytes);
}
uint64_t Engine::ExportDirtyBlocks(const std::string& name) {
  return impl_->ExportDirtyBlocks(name);
}
Status Engine::CompleteExport(const std::string& name, std::shared_ptr<Volume> remote,
                              const BlockSink& sink, const std::function<Status()>& flush_remote,
                              const RangeChecksums& target_checksums, uint64_t verify_range_bytes,
                              const std::function<Status()>& accept_remote) {
  return impl_->CompleteExport(name, std::move(remote), sink, flush_remote, target_checksums,
                               verify_range_bytes, accept_remote);
}
Result<std::vector<uint64_t>> Engine::LunChecksums(const std::string& name, uint64_t range_bytes,
                                                   uint64_t offset, uint64_t length) {
  return impl_->LunChecksums(name, range_bytes, offset, length);
}
void Engine::AbortExport(const std::string& name, const Status& why) {
  impl_->AbortExport(name, why);
}
Result<LunIoStats::Snapshot> Engine::IoStats(const std::string& name) {
  return impl_->IoStats(name);
}
std::vector<ExportInfo> Engine::List(const ClientInfo& client) { return impl_->List(client); }
Result<std::shared_ptr<Volume>> Engine::Open(std::string_view name, const ClientInfo& client) {
  return impl_->OpenVolume(std::string(name), &client);
}

}  // namespace strata::storage
