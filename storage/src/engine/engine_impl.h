#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "block_map.h"
#include "copy_rate_controller.h"
#include "dedup_index.h"
#include "journal.h"
#include "rewrite_log.h"
#include "store_hashes.h"
#include "strata/storage/engine.h"
#include "strata/storage/io_stats.h"
#include "tier_mapping.h"

namespace strata::storage::engine {

// One disk group's block store: a data file of fixed-size slots (slot 0 unused),
// reference counts, the free list and the dedup index.
struct TierStore {
  TierConfig config;
  std::unique_ptr<File> file;
  // The file's shared writable mapping (a file-backed tier; null for a block device or
  // when it cannot be mapped). Slots freed by a flush become reusable through
  // mapping->Retire, so a move may send them from here without the lock.
  std::unique_ptr<TierMapping> mapping;
  // file's bytes without a system call (mapping's, else File::MapForRead), or null:
  // dedup compares and re-hashes read slots through it. Only bytes below written_end
  // are read.
  const char* view = nullptr;
  uint64_t written_end = 0;     // the file is at least this long; guarded by EngineImpl::mu_
  uint64_t capacity_slots = 0;  // slot numbers below this are usable (from 1)
  // Per slot: reference count in the low 31 bits, kIndexedBit when the slot is in
  // `index`. Guarded by EngineImpl::mu_.
  std::vector<uint32_t> refs;
  std::vector<uint64_t> free_slots;
  // Freed by changes not yet durable: reusable only after the next Flush, so a
  // crash can never find a durable mapping pointing at overwritten data.
  std::vector<uint64_t> pending_free;
  // pending_free's bound in slots (EngineOptions::max_pending_free_bytes, capped at an
  // eighth of the capacity); SIZE_MAX: none.
  size_t max_pending_free = SIZE_MAX;
  uint64_t high_water = 1;  // next never-used slot
  // Bumped whenever freed slots become reusable: a dedup candidate compared outside
  // the lock is still the block it was while this has not moved.
  uint64_t reuse_gen = 0;
  // Bumped whenever a dedup LUN's block is rewritten in its own slot
  // (EngineImpl::RewriteDedupInPlace): a candidate compared outside the lock is
  // compared again when this has moved, since its slot may hold other bytes now.
  uint64_t rewrites = 0;
  uint64_t used_slots = 0;
  DedupIndex index;
  // An in-memory mapped tier's redo record for blocks stored in their own slots through
  // the mapping (RewriteDedupInPlace, OverwriteInPlace); null elsewhere (plain in-place
  // writes pwrite there, and dedup overwrites take new slots).
  std::unique_ptr<RewriteLog> rewrite_log;
  // Slots set aside for small writes (a few blocks) and dedup writes: taken under
  // reserve_mu alone, so such a write takes mu_ exclusively once (to map what it
  // wrote) instead of twice.
  // Taken out of free_slots / high_water under mu_ held exclusively (and reserve_mu);
  // a reserved slot's count is 0 and it is not in used_slots until a write maps it.
  // Kept in descending order: the back is the next slot handed out, so consecutive
  // small writes get consecutive slots. Given back to free_slots when a tier runs
  // short. Never journaled: after a restart they are free like any unmapped slot.
  // Taken after mu_ when both are held (a pointer: TierStore is moved by tiers_'s resize).
  std::unique_ptr<std::mutex> reserve_mu = std::make_unique<std::mutex>();
  std::vector<uint64_t> reserved;
  // Never-used slots a refill set aside whose pages were allocated ahead of their
  // writes (EngineImpl::PrepareFreshRun; an in-memory mapped tier only): a write that
  // took only such slots stores its blocks through the mapping (no pwrite) and finds
  // them mapped when it later compares a duplicate with them (no page fault). Pages
  // are never given back, so a slot stays in here when it is freed and reused.
  // Guarded by reserve_mu.
  uint64_t populated_begin = 0;
  uint64_t populated_end = 0;
  // An in-memory mapped tier's slots whose page holds a block a write stored (one bit a
  // slot): that page stays allocated (tmpfs gives no page back and the data file never
  // shrinks), so a later small write that took only such slots from the reserve (freed
  // slots, recycled by flushes under random overwrites) stores its blocks through the
  // mapping as into populated ones: a copy into a mapped page instead of a pwrite,
  // which costs a page-cache lookup, a folio lock and the inode's lock a block. Freed
  // slots alone do not say so: a reserve given back (ReturnReserveLocked) or a write
  // that failed leaves never-written slots in free_slots. Guarded by EngineImpl::mu_.
  std::vector<uint64_t> backed;

  // An in-memory file (tmpfs) mapped and read through its mapping: the tier whose
  // pages a write may store into directly (populated_*, backed).
  bool StoresThroughMapping() const {
    return mapping && view == mapping->data() && mapping->in_memory();
  }
};

// A LUN, or a snapshot (is_snapshot: read-only, never in by_name_, never opened;
// `snap` holds its record, `rec` the parts the block code reads: id, name, size,
// tier, owner).
struct Lun {
  LunRecord rec;
  bool is_snapshot = false;
  SnapRecord snap;
  BlockMap map{0};
  std::atomic<uint64_t> size_bytes{0};
  std::atomic<bool> deleted{false};
  LunIoStats stats;
  TierMove move;                  // guarded by EngineImpl::mu_
  bool cancel_requested = false;  // guarded by EngineImpl::mu_
  bool folding = false;           // a fold pass runs; guarded by EngineImpl::mu_
  // rec.dedup for the data path, which reads it without mu_ (SetDedup changes it
  // under mu_ and then stores it here).
  std::atomic<bool> dedup{false};
  // EngineImpl::Now() of the last read or write, in clock ticks since its epoch.
  std::atomic<int64_t> last_io{0};

  // rec.allowed_clients and rec.allowed_identities change under mu_ held exclusively
  // *and* this held exclusively; StillAllowed (every client request) reads them under
  // this alone (shared), so a request never waits for mu_ there.
  std::shared_mutex access_mu;

  // Held shared by every request on this LUN, exclusively by a cutover to another
  // device, so the switch sees no request half-way.
  std::shared_mutex gate;
  // Set once the LUN moved to another device: requests go there. Guarded by gate.
  std::shared_ptr<Volume> proxy;
  // Writes to one block of this LUN are serialised by its stripe (so read-modify-write
  // of a partial block is safe); a stripe covers 64 consecutive blocks, and
  // consecutive 64-block chunks take consecutive stripes, so the requests of a
  // sequential stream in flight together (QD8 of 1 MiB: 32 chunks) never share one.
  // Per LUN, not per device: a device-wide set hashed by LUN made a client's 4 KiB
  // write wait for another LUN's 1 MiB writes (a move's target streams) whenever
  // their chunks hashed alike (90 ms at worst, measured during drains). 1024 of them
  // (40 KiB a LUN): with 64, 16 random 4 KiB writes in flight shared a stripe often
  // enough that ~1 % of them slept on one (sched_switch, 4 KiB QD16 on a dedup LUN),
  // behind a holder that was itself often preempted on a loaded host.
  static constexpr size_t kStripes = 1024;         // a power of two
  static constexpr uint64_t kStripeBlockBits = 6;  // 64 blocks a chunk
  std::array<std::mutex, kStripes> stripes;
  // Dirty tracking during an export: one bit per block, set after a write lands.
  std::atomic<bool> tracking{false};
  std::unique_ptr<std::atomic<uint64_t>[]> dirty;  // allocated before tracking is set
  uint64_t dirty_words = 0;

  void MarkDirty(uint64_t lba) {
    if (tracking.load(std::memory_order_acquire) && lba / 64 < dirty_words) {
      dirty[lba / 64].fetch_or(1ull << (lba % 64), std::memory_order_release);
    }
  }

  // The source's half of an export's verification, taken from the full pass's own
  // reads (Engine::ExportPass with hash_range_bytes): XXH3-64 per range of what was
  // read and sent, and which ranges have been sent again since (their hash may be
  // out of date). Reset by StartExport; then used only by the one thread that drives
  // the export (ExportPass, CompleteExport).
  struct ExportHashes {
    uint64_t range_bytes = 0;  // 0: none taken
    std::vector<uint64_t> sums;
    std::vector<bool> stale;
    bool complete = false;  // a full pass hashed every range
  } export_hashes;

  // The target's half of a move's verification (StoreHashes): set for an incoming LUN
  // (created by a move) when it is created, disabled when it is accepted or resized.
  // The pointer never changes after the LUN is published.
  std::shared_ptr<StoreHashes> store_hashes;
};

// The journal name of a LUN being cloned or restored until its mappings are
// written: '~' is not allowed in LUN names, so no client can create, see or open it.
inline constexpr char kCloningPrefix[] = "~clone~";

// A LUN or snapshot name: 1-128 letters, digits, '-', '_', '.'; INVALID_ARGUMENT
// naming the field `name` otherwise.
Status ValidateName(const std::string& name);
// What every new LUN's spec must satisfy: name, size, access list, metadata.
Status ValidateSpec(const LunSpec& spec);

// True when the n bytes at p are all zero (a block that is stored as a hole).
bool IsZero(const char* p, size_t n);

class EngineImpl {
 public:
  EngineImpl(Env* env, EngineOptions options);
  ~EngineImpl();

  Status Load();

  Result<LunInfo> CreateLun(const LunSpec& spec);
  Result<LunInfo> CloneLun(const std::string& source, const LunSpec& spec);
  Status DeleteLun(const std::string& name);
  Result<LunInfo> AcceptLun(const std::string& name, const std::string& wwn);
  std::vector<std::string> IncomingDroppedAtOpen() const { return incoming_dropped_; }
  Result<SnapshotInfo> CreateSnapshot(const std::string& source, const std::string& name,
                                      const std::map<std::string, std::string>& metadata);
  Status DeleteSnapshot(const std::string& name);
  Result<SnapshotInfo> GetSnapshot(const std::string& name);
  std::vector<SnapshotInfo> ListSnapshots();
  Result<LunInfo> RestoreSnapshot(const std::string& snapshot, const LunSpec& spec);
  Result<LunInfo> ResizeLun(const std::string& name, uint64_t new_size);
  Result<LunInfo> SetAccess(const std::string& name, std::vector<std::string> allowed,
                            std::vector<std::string> identities);
  Result<LunInfo> Publish(const std::string& name, const std::string& node_id,
                          const std::vector<std::string>& entries);
  Result<LunInfo> Unpublish(const std::string& name, const std::string& node_id,
                            const std::vector<std::string>& entries);
  // Takes `rec`'s publications and access list into `lun` and journals it when they differ;
  // true when they did. mu_ held exclusively.
  bool CommitPublicationsLocked(Lun* lun, LunRecord rec);
  Result<LunInfo> SetDedup(const std::string& name, bool dedup, bool fold_existing);
  Status WaitFold(const std::string& name);
  Result<LunInfo> GetLun(const std::string& name);
  std::vector<LunInfo> ListLuns();
  size_t LunCount();
  std::map<std::string, SpaceStats> OwnerSpace();
  SpaceStats DeviceSpace();
  std::vector<TierUsage> Tiers();

  Status StartTierMove(const std::string& name, TierClass target);
  Status CancelTierMove(const std::string& name);
  Result<TierMove> WaitTierMove(const std::string& name);
  Result<TierMove> WaitTierMoveFor(const std::string& name, std::chrono::milliseconds timeout);

  // incoming_ok false: a move's incoming copy is UNAVAILABLE (Engine::OpenVolumeForProxy).
  Result<std::shared_ptr<Volume>> OpenVolume(const std::string& name, const ClientInfo* client,
                                             bool incoming_ok = true);
  std::vector<ExportInfo> List(const ClientInfo& client);
  Result<LunIoStats::Snapshot> IoStats(const std::string& name);
  Status Flush();

  // The data path (LunVolume calls these).
  Status Read(Lun& lun, uint64_t offset, std::span<char> out);
  Status Write(Lun& lun, uint64_t offset, std::span<const char> data, bool fua);
  // Volume::WriteV: Write of the pieces' bytes one after another, without joining
  // them (WriteInnerV).
  Status WriteV(Lun& lun, uint64_t offset, std::span<const std::span<const char>> pieces, bool fua);
  // Volume::BeginWrite (direct_write.cc): when the payload is already queued and every
  // block of the range is one OverwriteInPlace would write (whole blocks, dedup off,
  // each mapped to a slot of the write tier this LUN alone references, the tier
  // mapped), an IncomingWrite whose spaces are the tier mapping at those slots;
  // otherwise nullptr (the caller then calls Write). It holds OverwriteInPlace's guard
  // (gate, stripes, mu_ shared until the last byte landed), so BeginWrite, the
  // receives, Commit and its destruction run on one thread, and only receives that
  // do not wait on the network may happen in between. `client`: counts as ClientIo.
  std::unique_ptr<IncomingWrite> BeginWrite(const std::shared_ptr<Lun>& lun, uint64_t offset,
                                            uint32_t length, bool fua,
                                            const IncomingPayload& payload, bool client);
  // BeginWrite's other half (fresh_write.cc): whole blocks of a LUN with dedup off
  // that Write would store in new slots (not every block overwritable in place), the
  // write tier mapped: the run's slots allocated now, the tier file grown to cover
  // them, and an IncomingWrite whose spaces are the mapping at those slots. Holds no
  // lock while the bytes land (only the slots, mapped nowhere); Commit maps them as
  // StoreNewRunV does; abandoned, they go back to the free list. Else nullptr.
  // to_file (IncomingPayload::to_file) and a tier file that takes splices: the spaces
  // are also offered as ranges of the file (NextFileSpace) and their pages are left
  // for the file's writes to allocate, not populated through the mapping.
  std::unique_ptr<IncomingWrite> BeginFreshWrite(const std::shared_ptr<Lun>& lun, uint64_t lba,
                                                 size_t n, bool fua, bool client,
                                                 bool to_file = false);
  // At most this many blocks per fresh write (a larger one takes Write).
  static constexpr size_t kFreshMaxBlocks = 4 * 256;
  // The tier file grows by at least this much at a time for fresh writes.
  static constexpr uint64_t kGrowBytes = 16ull << 20;
  // Volume::BeginRead (direct_read.cc): for a LUN with dedup off whose range lies in
  // mapped tiers, an OutgoingRead whose spans are the tier mapping at the range's slots
  // (and zeros for holes), at most 64 of them; otherwise nullptr (the caller then calls
  // Read). It holds ReadInner's guard (gate, mu_ shared) until destroyed, on the thread
  // that called BeginRead; the caller only copies the spans meanwhile (a send that
  // does not wait).
  std::unique_ptr<OutgoingRead> BeginRead(Lun& lun, uint64_t offset, uint32_t length, bool client);
  // Write of `data` with the dedup fingerprints of its whole blocks computed already
  // (BlockFingerprint, e.g. as each block arrived from the network while still in
  // cache): fps[k] is the k-th whole block of data from the first block boundary at
  // or after `offset`. Blocks past fps.size() and partial blocks are fingerprinted
  // here, as by Write. Only the engine's own code passes them (the fingerprints never
  // come from a client), and a wrong one is still safe: a fingerprint only finds
  // candidates, every hit and every in-request twin is confirmed by comparing bytes,
  // and the index keys a slot by its fingerprint's tag and drops it by slot number, so
  // a wrong one costs that block its dedup until the index is rebuilt at the next
  // open (from the stored bytes), never wrong data. On a LUN with dedup off they are
  // unused.
  Status WriteHashed(Lun& lun, uint64_t offset, std::span<const char> data,
                     std::span<const Fingerprint> fps, bool fua);
  // The fingerprint the dedup index keys a block of block_size() bytes by.
  Fingerprint BlockFingerprint(const char* block) const { return Fp(block); }
  // The most blocks one StoreRun takes (kRunBlocks): a placement's limit.
  static constexpr size_t run_blocks() { return kRunBlocks; }
  // A dedup LUN's write received straight into slots (PlacedIncomingWrite): n slots
  // of the LUN's write tier from its reserve, every one inside the tier file and its
  // mapping, into *tier and slots; false (nothing taken) when the LUN is not a plain
  // dedup LUN of a mapped tier right now or the reserve is short.
  bool TakePlacement(Lun& lun, size_t n, uint32_t* tier, uint64_t* slots);
  // Slots of a placement that hold no block: back to the reserve.
  void ReturnPlacement(uint32_t tier, std::span<const uint64_t> slots);
  // Where slot `slot` of `tier` lies in the tier's mapping (after TakePlacement).
  char* PlacedSpace(uint32_t tier, uint64_t slot) {
    return tiers_[tier].mapping->data() + slot * bs_;
  }
  // The write of a placement's n = length / block_size() blocks at `offset` (aligned):
  // as WriteHashed, with each block written where it landed (StoreRun's Placement);
  // used[i]: slots[i] was kept. When the placement cannot be kept, the bytes are copied
  // out and written as by Write (used all false).
  Status CommitPlaced(Lun& lun, uint64_t offset, size_t n, uint32_t tier,
                      std::span<const uint64_t> slots, std::span<const Fingerprint> fps, bool fua,
                      bool* used);
  Status Zero(Lun& lun, uint64_t offset, uint64_t length, bool fua);
  bool StillAllowed(Lun& lun, const ClientInfo& client);
  Status FlushLun(Lun& lun);

  Status StartExport(const std::string& name, const std::string& to_device);
  Result<uint64_t> ExportPass(const std::string& name, bool all_blocks,
                              const Engine::BlockSink& sink, uint64_t hash_range_bytes,
                              const Engine::ReadBuffers& buffers, const Engine::MappedSink& mapped);
  // A MappedRun's fallback (MappedRun::Reread): the LUN's bytes through the lock.
  Status ReadForCopy(Lun& lun, uint64_t offset, std::span<char> out) {
    return ReadInner(lun, offset, out);
  }
  void YieldToClients(std::chrono::microseconds max_wait, uint64_t copy_bytes = 0);
  // YieldToClients' pacing: while clients are busy (a request in flight, or one started
  // in the last kClientBusyWindow while a client volume is still open), waits until `copy_bytes`
  // more fit the device's copy budget (options_.copy_pacing: a fixed rate, or copy_rate_'s, shared
  // by every copy thread).
  void PaceCopy(uint64_t copy_bytes);
  static constexpr std::chrono::milliseconds kClientBusyWindow{100};
  std::chrono::nanoseconds CopyPacedTime() const {
    return std::chrono::nanoseconds(copy_paced_ns_.load(std::memory_order_relaxed));
  }
  // Counts a volume open for a client (the NBD path's, for its connection's life), for
  // PaceCopy.
  class ClientVolume {
   public:
    ClientVolume(EngineImpl* e, bool counts) : e_(counts ? e : nullptr) {
      if (e_) e_->client_volumes_.fetch_add(1);
    }
    ~ClientVolume() {
      if (e_) e_->client_volumes_.fetch_sub(1);
    }
    ClientVolume(const ClientVolume&) = delete;
    ClientVolume& operator=(const ClientVolume&) = delete;

   private:
    EngineImpl* e_;
  };
  // Counts a client's request (the NBD path) in flight, for YieldToClients.
  class ClientIo {
   public:
    ClientIo(EngineImpl* e, bool counts) : e_(counts ? e : nullptr) {
      if (e_) {
        e_->client_io_.fetch_add(1);
        e_->last_client_io_ns_.store(e_->Now().time_since_epoch().count(),
                                     std::memory_order_relaxed);
      }
    }
    ~ClientIo() {
      if (e_ && e_->client_io_.fetch_sub(1) == 1 && e_->yielding_.load() > 0) {
        std::lock_guard lock(e_->yield_mu_);
        e_->yield_cv_.notify_all();
      }
    }
    ClientIo(const ClientIo&) = delete;
    ClientIo& operator=(const ClientIo&) = delete;

   private:
    EngineImpl* e_;
  };
  uint64_t ExportDirtyBlocks(const std::string& name);
  Status CompleteExport(const std::string& name, std::shared_ptr<Volume> remote,
                        const Engine::BlockSink& sink, const std::function<Status()>& flush_remote,
                        const Engine::RangeChecksums& target_checksums, uint64_t verify_range_bytes,
                        const std::function<Status()>& accept_remote);
  Result<std::vector<uint64_t>> LunChecksums(const std::string& name, uint64_t range_bytes,
                                             uint64_t offset, uint64_t length);
  void AbortExport(const std::string& name, const Status& why);
  uint32_t block_size() const { return bs_; }

 private:
  using SharedLock = std::shared_lock<std::shared_mutex>;
  using ExclusiveLock = std::unique_lock<std::shared_mutex>;
  class DirectWrite;  // BeginWrite's IncomingWrite (direct_write.cc)
  class FreshWrite;   // BeginFreshWrite's IncomingWrite (fresh_write.cc)
  // Makes t's file at least `end` bytes long (rounded up to `step`, within the
  // mapping) and t.written_end with it. REQUIRES: mu_ held exclusively.
  Status GrowTierFileLocked(TierStore& t, uint64_t end, uint64_t step = kGrowBytes);
  // Slots of a fresh write that no map references: back to the free list.
  void ReleaseFreshSlots(uint32_t tier, std::span<const uint64_t> slots);
  // Maps a fresh write's blocks to the slots they landed in (under the gate, their
  // stripes and StoreHashes' scope) and records them with StoreHashes; *kept false
  // (nothing changed, the slots still the caller's) when the LUN can no longer take
  // them so (moved away, dedup on, another write tier, shrunk): the caller writes the
  // bytes with Write.
  Status CommitFresh(Lun& lun, uint64_t lba, size_t n, uint32_t tier,
                     std::span<const uint64_t> slots, std::span<const std::span<char>> spaces,
                     bool fua, bool* kept);
  class DirectRead;  // BeginRead's OutgoingRead (direct_read.cc)

  std::string SnapshotPath() const { return options_.state_dir + "/snapshot"; }
  std::string JournalPath(uint64_t gen) const {
    return options_.state_dir + "/journal." + std::to_string(gen);
  }

  Result<int> TierIndex(TierClass c) const;
  Fingerprint Fp(const char* block) const {
    if (options_.fingerprint_for_test) {
      auto [lo, hi] = options_.fingerprint_for_test(block, bs_);
      return Fingerprint{lo, hi};
    }
    return FingerprintOf(block, bs_);
  }
  std::shared_ptr<Lun> FindLocked(const std::string& name) const;  // REQUIRES: mu_ held
  LunInfo InfoLocked(const Lun& lun) const;                        // REQUIRES: mu_ held
  // Space of one map (a LUN's or a snapshot's); for a LUN also the bytes only its
  // snapshots hold. REQUIRES: mu_ held.
  SpaceStats SpaceOfLocked(const Lun& lun) const;
  // SpaceOfLocked(lun).exclusive_bytes without visiting leaves shared with another
  // map (a snapshot of a LUN that changed little costs one check per 1024 blocks).
  // REQUIRES: mu_ held.
  uint64_t ExclusiveBytesLocked(const Lun& lun) const;
  // with_space: also SpaceOfLocked (a scan of its map). REQUIRES: mu_ held.
  SnapshotInfo SnapshotInfoLocked(const Lun& snap, bool with_space = true) const;
  // Names of the snapshots taken of LUN `lun_id`. REQUIRES: mu_ held.
  std::vector<std::string> SnapshotsOfLocked(uint64_t lun_id) const;
  // The block-reference hook for BlockMap::Set (a shared leaf was copied).
  // REQUIRES: mu_ held exclusively.
  void IncrefLocked(BlockRef ref);
  // CreateLun's idempotence: `existing` if it matches `spec`, else ALREADY_EXISTS.
  Result<LunInfo> SameLunLocked(const Lun& existing, const LunSpec& spec,
                                uint32_t tier) const;                // REQUIRES: mu_ held
  Status CheckFitsLocked(uint64_t size_bytes, uint32_t tier) const;  // REQUIRES: mu_ held
  // A new LUN (id, record, empty map) for `spec` on `tier`; not yet registered or
  // journaled. REQUIRES: mu_ held exclusively.
  std::shared_ptr<Lun> NewLunLocked(const LunSpec& spec, uint32_t tier);

  // The mappings one exclusive section of StoreRun changes, journaled as one run record
  // (RecordEncoder::MapRun) when the batch is destroyed: declare it after the section's
  // lock, so every return path journals what the section changed before unlocking.
  class MapBatch {
   public:
    MapBatch(RecordEncoder& enc, uint64_t lun_id, uint64_t first_lba, size_t capacity)
        : enc_(enc), lun_id_(lun_id), first_lba_(first_lba) {
      entries_.reserve(capacity);
    }
    ~MapBatch() { Commit(); }
    // Journals what was added so far (before an early unlock).
    void Commit() {
      if (!entries_.empty()) enc_.MapRun(lun_id_, first_lba_, entries_.data(), entries_.size());
      entries_.clear();
    }
    MapBatch(const MapBatch&) = delete;
    MapBatch& operator=(const MapBatch&) = delete;
    void Add(uint64_t lba, BlockRef ref, bool indexed) {
      entries_.push_back({static_cast<uint32_t>(lba - first_lba_), ref, indexed});
    }

   private:
    RecordEncoder& enc_;
    const uint64_t lun_id_;
    const uint64_t first_lba_;
    std::vector<MapRunEntry> entries_;
  };
  // Journals the change into `batch` (a MapBatch of lun, lba within its run of at most
  // 2^32 blocks), or as one record of its own when batch is null.
  // REQUIRES: mu_ held exclusively.
  void SetMappingLocked(Lun& lun, uint64_t lba, BlockRef ref, bool indexed,
                        MapBatch* batch = nullptr);
  void DecrefLocked(BlockRef ref);
  // An indexed slot of `t` holding the same bytes as `block` (every candidate of
  // fp's tag is compared), or 0. A failed read stops the search: 0 and *err set.
  // `have`: scratch space. REQUIRES: mu_ held (shared is enough).
  uint64_t EqualIndexedLocked(const TierStore& t, const Fingerprint& fp, const char* block,
                              std::vector<char>& have, Status* err) const;
  // The bytes of `slot` of `t`: through t.view when it covers them, else read into
  // `buf` (null and *err set when that read fails). REQUIRES: mu_ held.
  const char* SlotBytesLocked(const TierStore& t, uint64_t slot, std::vector<char>& buf,
                              Status* err) const;
  void ReleaseUnusedLocked(TierStore& t, uint64_t slot);  // a slot never journaled
  // Too many unflushed records, or too many replaced blocks waiting for a flush to be
  // freed in some tier (EngineOptions::max_pending_free_bytes).
  // Freed slots a flush may still make reusable: held back by the tier's mapping for
  // a reader (a move's send) that may be reading them. REQUIRES: mu_ held.
  static bool RetainedLocked(const TierStore& t) {
    return t.mapping && t.mapping->retained_slots() > 0;
  }
  bool NeedFlushLocked() const {
    if (enc_.records() >= options_.max_unflushed_records) return true;
    for (const TierStore& t : tiers_) {
      if (t.pending_free.size() >= t.max_pending_free) return true;
    }
    return false;
  }

  // Stores one whole block for `lba` in `tier` (the LUN's write tier when unset).
  // With `expected`, only replaces that mapping (the move's compare-and-swap) and
  // returns ABORTED when the block changed meanwhile.
  // Stores n whole blocks at lbas [lba, lba+n) from `data` (nullptr: zeros): holes
  // for zero blocks, shared blocks for dedup hits (bytes compared), new slots for
  // the rest, written with one pwrite per run of consecutive slots. In `tier` (the
  // LUN's write tier when unset). With `expected` (n refs), a block is only replaced
  // while its mapping still equals expected[i] (the move's compare-and-swap).
  // `fps`: the fingerprints of the first fps.size() blocks when the caller has them
  // (WriteHashed); the rest are computed here.
  // `placed` (data null; a dedup LUN's client write, no tier, expected or verify): the
  // blocks were received into slots taken from the reserve of placed->tier (block i in
  // slots[i], through the tier's mapping), so a block that is written keeps its own slot
  // (used[i]) and nothing is copied; the rest of the slots stay the caller's. When that
  // cannot be done (the write tier changed, a candidate could not be read, dedup was
  // turned off) nothing is changed and fell_back is set: the caller writes the bytes the
  // usual way.
  struct Placement {
    uint32_t tier = 0;
    const uint64_t* slots = nullptr;
    bool* used = nullptr;
    bool fell_back = false;
  };
  Status StoreRun(Lun& lun, uint64_t lba, size_t n, const char* data, std::optional<uint32_t> tier,
                  const BlockRef* expected, bool verify, std::span<const Fingerprint> fps = {},
                  Placement* placed = nullptr);
  Result<std::vector<uint64_t>> AllocateRunLocked(TierStore& t, size_t n);
  // Writes of at most this many blocks take their slots from TierStore::reserved.
  static constexpr size_t kReserveMaxRun = 16;
  // Tops TierStore::reserved up to `batch` slots when it fell below batch / 2: freed
  // slots while there are any (as a one-block write takes them), never-used ones only
  // when none are. REQUIRES: mu_ held exclusively.
  static constexpr size_t kReserveBatch = 64;
  // Never-used slots a refill took, [first, first + count), with `space` their bytes in
  // the tier's mapping (the file grown to cover them) when their pages are to be
  // allocated ahead (an in-memory mapped tier, small writes' batch), else empty.
  struct FreshRun {
    uint64_t first = 0;
    uint64_t count = 0;
    std::span<char> space;
  };
  FreshRun RefillReserveLocked(TierStore& t, size_t batch = kReserveBatch);
  // Allocates a refill's fresh pages (FreshRun::space) with one system call
  // (TierMapping::Prefault) and adds them to t.populated_*; when that fails they stay
  // out of it (their writes pwrite, which allocates or reports ENOSPC). Called with no
  // lock held: a write that takes one of them before it is done pwrites it, and the
  // store and the population of one page may race harmlessly.
  void PrepareFreshRun(TierStore& t, const FreshRun& run);
  // Gives the reserved slots back to free_slots. REQUIRES: mu_ held exclusively.
  void ReturnReserveLocked(TierStore& t);
  // n slots from t.reserved into `slots` (all or none); false when it holds fewer.
  // *populated (when given): every one of them lies in t.populated_*.
  static bool TakeReserved(TierStore& t, size_t n, uint64_t* slots, bool* populated = nullptr);
  // TierStore::backed: records that `slot`'s page holds a stored block (an in-memory
  // mapped tier only; others keep no bits). REQUIRES: mu_ held exclusively.
  static void MarkBackedLocked(TierStore& t, uint64_t slot);
  // True when every one of `slots` is marked backed: a store through the tier's
  // mapping cannot fault for want of a page. REQUIRES: mu_ held (shared suffices).
  static bool BackedLocked(const TierStore& t, std::span<const uint64_t> slots);
  // Overwrites n whole blocks at [lba, lba+n) in place when every one of them is
  // mapped to a slot of the LUN's write tier that this LUN alone references (an
  // unshared leaf, a count of one, not in the dedup index) and the LUN has dedup off:
  // no new slot, no mapping change, no journal record, so no flush is owed and the
  // blocks stay where a sequential read finds them. All-or-nothing: false (nothing
  // written) when any block does not qualify or holds only zeros (those become holes
  // through StoreRun). The pwrites run under mu_ shared, so whatever would change the
  // conditions (a snapshot or clone sharing the leaf, SetDedup, a tier move's start,
  // DeleteLun freeing the slot) waits for them. Up to kRewriteMaxRun blocks of an
  // in-memory tier are stored through its mapping and RewriteLog instead (a lane each
  // writer; pwrite when every lane is busy). REQUIRES: the blocks' stripes held.
  Result<bool> OverwriteInPlace(Lun& lun, uint64_t lba, size_t n, const char* data);
  // A dedup LUN's overwrite of n whole blocks (n <= kRewriteMaxRun), each with its
  // fingerprint in fps, stored in the blocks' own slots when every block is mapped to a
  // slot of the LUN's write tier that this LUN alone references (an unshared leaf, a
  // count of one, indexed), the tier is stored through its mapping (in memory), and no
  // block is zeros, a duplicate of an indexed block, or equal to another of the run:
  // the slot leaves the index under its old fingerprint and enters it under the new
  // one. No slot is taken or freed and no mapping changes, so no journal record is
  // written and no flush is owed (the index is rebuilt from the slots' bytes on load).
  // All-or-nothing: false (nothing written) when any block does not qualify; the
  // caller then takes StoreRun. The copies run under mu_ held exclusively (readers and
  // dedup compares never see half a block) and through the tier's RewriteLog (a killed
  // process leaves no block half rewritten); a candidate another writer compared
  // before is compared again (TierStore::rewrites). REQUIRES: the blocks' stripes held.
  bool RewriteDedupInPlace(Lun& lun, uint64_t lba, size_t n, const char* data,
                           std::span<const Fingerprint> fps);
  static constexpr size_t kRewriteMaxRun = 4;
  // n whole blocks at [lba, lba+n) from `run`, under their stripes (held): in their own
  // slots when they qualify (RewriteDedupInPlace, OverwriteInPlace), else StoreRun.
  // `fps`: the blocks' fingerprints when the caller has them (WriteHashed).
  Status StoreWholeBlocks(Lun& lun, uint64_t lba, size_t n, const char* run,
                          std::span<const Fingerprint> fps);
  // The vectored write (Volume::WriteV) of a LUN with dedup off: runs of whole
  // blocks are written from the pieces with one pwritev per run of consecutive slots
  // (OverwriteInPlaceV in place, else StoreNewRunV to new slots); partial blocks,
  // and runs holding a zero block (those become holes), are joined and take
  // WriteInner's path. A dedup LUN joins the whole write (fingerprints and compares
  // are per contiguous block).
  // `fps` (WriteHashed): with one piece only, passed on to WriteInner.
  Status WriteInnerV(Lun& lun, uint64_t offset, std::span<const std::span<const char>> pieces,
                     bool fua, std::span<const Fingerprint> fps = {});
  // WriteV and WriteHashed: the LUN's gate, proxy, move and StoreHashes around
  // WriteInnerV.
  Status WriteGated(Lun& lun, uint64_t offset, std::span<const std::span<const char>> pieces,
                    std::span<const Fingerprint> fps, bool fua);
  // n whole blocks at [lba, lba+n) from `run` (n * bs_ bytes), none all zeros.
  // REQUIRES: dedup off when the write began.
  Status WriteBlocksV(Lun& lun, uint64_t lba, size_t n, std::span<const std::span<const char>> run);
  Result<bool> OverwriteInPlaceV(Lun& lun, uint64_t lba, size_t n,
                                 std::span<const std::span<const char>> run);
  // StoreRun's path for n non-zero blocks of a LUN with dedup off: new slots, one
  // pwritev per run of consecutive ones, then the mappings. REQUIRES: stripes held.
  Status StoreNewRunV(Lun& lun, uint64_t lba, size_t n, std::span<const std::span<const char>> run);
  uint64_t AllocateFreshLocked(TierStore& t);
  Status ReadBlockLocked(const Lun& lun, uint64_t lba, char* out);  // REQUIRES: mu_ held
  // A write takes at most kRunBlocks blocks at a time, under their stripes
  // (Lun::stripes), always in index order.
  static constexpr size_t kRunBlocks = 256;
  // What dedup writes of more than kReserveMaxRun blocks keep set aside
  // (RefillReserveLocked's batch; small writes keep kReserveBatch): they take their new
  // slots from the reserve too (up to kRunBlocks a request, several requests in
  // flight), so such a write takes mu_ exclusively once, after its data is written.
  // Reserved slots are within the tier's capacity and given back when it runs short,
  // so a data file may grow up to this many slots past the live and pending blocks.
  static constexpr size_t kReserveBatchLarge = 8 * kRunBlocks;
  static size_t StripeIndex(uint64_t lba) {
    return (lba >> Lun::kStripeBlockBits) & (Lun::kStripes - 1);
  }
  // Holds the stripes of blocks [lba, lba + n): consecutive chunks take consecutive
  // stripes, so that is one cyclic range of stripe indices, taken in index order (the
  // wrapped part first) and with no allocation (one per 4 KiB write showed in malloc).
  class StripeGuard {
   public:
    StripeGuard(Lun& lun, uint64_t lba, size_t n) : lun_(lun) {
      if (n == 0) return;
      const uint64_t chunks =
          ((lba + n - 1) >> Lun::kStripeBlockBits) - (lba >> Lun::kStripeBlockBits) + 1;
      count_ = static_cast<size_t>(std::min<uint64_t>(chunks, Lun::kStripes));
      first_ = count_ == Lun::kStripes ? 0 : StripeIndex(lba);
      const size_t end = first_ + count_;  // past kStripes when the range wraps
      for (size_t i = 0; end > Lun::kStripes && i < end - Lun::kStripes; ++i) {
        lun_.stripes[i].lock();
      }
      for (size_t i = first_; i < std::min(end, Lun::kStripes); ++i) lun_.stripes[i].lock();
    }
    ~StripeGuard() {
      const size_t end = first_ + count_;
      for (size_t i = std::min(end, Lun::kStripes); i > first_; --i) lun_.stripes[i - 1].unlock();
      for (size_t i = end > Lun::kStripes ? end - Lun::kStripes : 0; i > 0; --i) {
        lun_.stripes[i - 1].unlock();
      }
    }
    StripeGuard(const StripeGuard&) = delete;
    StripeGuard& operator=(const StripeGuard&) = delete;

   private:
    Lun& lun_;
    size_t first_ = 0;  // the first chunk's stripe
    size_t count_ = 0;  // stripes held, from first_ on (cyclically)
  };

  // `yield`: wait (briefly) for client requests in flight before each group.
  Result<uint64_t> ExportPassOf(const std::shared_ptr<Lun>& lun_ptr, bool all_blocks,
                                const Engine::BlockSink& sink, uint64_t hash_range_bytes,
                                bool yield, const Engine::ReadBuffers& buffers = {},
                                const Engine::MappedSink& mapped = {});
  // Unlocked versions of the data path, for callers holding lun.gate.
  Status ReadInner(Lun& lun, uint64_t offset, std::span<char> out);
  // `fps`: as WriteHashed's.
  Status WriteInner(Lun& lun, uint64_t offset, std::span<const char> data, bool fua,
                    std::span<const Fingerprint> fps = {});
  Status ZeroInner(Lun& lun, uint64_t offset, uint64_t length, bool fua);
  // LunChecksums for a caller holding lun.gate; arguments already checked.
  Result<std::vector<uint64_t>> ChecksumsInner(Lun& lun, uint64_t range_bytes, uint64_t offset,
                                               uint64_t length);
  // Hashes the checksum ranges [first, last) of each run here and on the target at
  // once, into (*ours)[i] and (*theirs)[i]. `size`: the LUN's size. With `ours`
  // null, only the target's.
  Status HashRuns(Lun& lun, const Engine::RangeChecksums& target, uint64_t range_bytes,
                  uint64_t size, const std::vector<std::pair<uint64_t, uint64_t>>& runs,
                  std::vector<uint64_t>* ours, std::vector<uint64_t>* theirs);

  std::chrono::steady_clock::time_point Now() const {
    return options_.clock ? options_.clock() : std::chrono::steady_clock::now();
  }
  void TouchIo(Lun& lun) const {
    lun.last_io.store(Now().time_since_epoch().count(), std::memory_order_relaxed);
  }
  // Folds the LUN's written blocks that are not in the dedup index into it: shares
  // each with an equal indexed block, or indexes it. See Engine::SetDedup.
  void FoldLoop(std::shared_ptr<Lun> lun);
  // One block of FoldLoop: `data` was read from `ref` at `lba` while reuse_gen of
  // its tier was `gen`.
  void FoldBlock(Lun& lun, uint64_t lba, BlockRef ref, uint64_t gen, const char* data);

  // Moves every block of `lun` that is not in `target` into it.
  void MoveLoop(std::shared_ptr<Lun> lun, uint32_t target, bool rollback);
  void SpawnMover(std::shared_ptr<Lun> lun, uint32_t target, bool rollback);

  // Encodes the whole state as records (a snapshot). REQUIRES: mu_ held.
  std::string EncodeStateLocked();
  Status FlushInternal(bool force_checkpoint);

  Env* const env_;
  const EngineOptions options_;
  const uint32_t bs_;

  mutable std::shared_mutex mu_;
  std::vector<TierStore> tiers_;                           // guarded by mu_ (files: thread-safe)
  std::map<std::string, std::shared_ptr<Lun>> by_name_;    // guarded by mu_
  std::vector<std::string> incoming_dropped_;              // set by Load only
  std::map<uint64_t, std::shared_ptr<Lun>> by_id_;         // guarded by mu_ (with snapshots)
  std::map<std::string, std::shared_ptr<Lun>> snapshots_;  // guarded by mu_
  uint64_t next_lun_id_ = 1;                               // guarded by mu_
  RecordEncoder enc_;                                      // guarded by mu_: unflushed records

  std::mutex flush_mu_;             // serialises Flush; taken before mu_ when both are held
  std::unique_ptr<File> journal_;   // guarded by flush_mu_
  uint64_t journal_gen_ = 1;        // guarded by flush_mu_
  uint64_t journal_size_ = 0;       // guarded by flush_mu_
  bool checkpoint_needed_ = false;  // guarded by flush_mu_

  std::mutex movers_mu_;
  std::condition_variable_any move_cv_;  // waits on mu_; signalled when a move ends
  std::vector<std::thread> movers_;      // guarded by movers_mu_ (also fold passes)
  std::condition_variable stop_cv_;      // waits on movers_mu_; signalled when stopping_
  std::atomic<bool> stopping_{false};

  // Client requests in flight (ClientIo) and background copies waiting for them to
  // end (YieldToClients).
  std::atomic<int> client_io_{0};
  std::atomic<int64_t> last_client_io_ns_{0};  // steady_clock ticks of the last client request
  // Volumes open for a client (LunVolume with a ClientInfo: an NBD connection's): with
  // none, a request lately does not make the clients busy (PaceCopy).
  std::atomic<int> client_volumes_{0};
  std::mutex pace_mu_;
  std::chrono::steady_clock::time_point copy_due_{};  // guarded by pace_mu_
  std::atomic<int64_t> copy_paced_ns_{0};             // PaceCopy's waits, in all (CopyPacedTime)
  // CopyPacing::Mode::kAdaptive only (else null): the copy rate that follows the
  // clients' latency (OnCopy under pace_mu_), fed by every LUN's LunIoStats (the NBD
  // path's per-request service time) through latency_tap_.
  class ClientLatencyTap final : public LunIoStats::Listener {
   public:
    ClientLatencyTap(CopyRateController* c, const EngineImpl* e) : c_(c), e_(e) {}
    // Small requests only: what latency-sensitive clients issue; a large request's
    // time is mostly its transfer (and a durable flush's the disk's).
    static constexpr uint64_t kMaxBytes = 64 << 10;
    void OnRequest(IoKind kind, uint64_t bytes, std::chrono::nanoseconds latency) override {
      if (kind == IoKind::kFlush || bytes > kMaxBytes) return;
      c_->RecordLatency(e_->Now(), latency);
    }

   private:
    CopyRateController* c_;
    const EngineImpl* e_;
  };
  std::unique_ptr<CopyRateController> copy_rate_;
  uint64_t logged_copy_rate_ = 0;  // guarded by pace_mu_
  std::unique_ptr<ClientLatencyTap> latency_tap_;
  void TapLatency(Lun& lun) {
    if (latency_tap_) lun.stats.set_listener(latency_tap_.get());
  }
  std::atomic<int> yielding_{0};
  std::mutex yield_mu_;
  std::condition_variable yield_cv_;  // waits on yield_mu_; signalled when client_io_ hits 0
};

}  // namespace strata::storage::engine
