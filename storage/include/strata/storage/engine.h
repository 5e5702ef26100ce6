#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "strata/common/env.h"
#include "strata/common/result.h"
#include "strata/storage/copy_pacing.h"
#include "strata/storage/io_stats.h"
#include "strata/storage/tier_config.h"
#include "strata/storage/volume.h"

namespace strata::storage {

namespace engine {
class EngineImpl;
}

struct LunSpec {
  std::string name;
  uint64_t size_bytes = 0;
  std::optional<TierClass> tier;  // unset: the device's first tier
  bool dedup = false;
  std::string owner;  // tenant or namespace, for metering and access control
  // Client IPs or CIDRs allowed to connect; "*" allows any; empty allows none.
  std::vector<std::string> allowed_clients = {"*"};
  // Certificate identities allowed to connect over TLS (see AccessAllowed).
  std::vector<std::string> allowed_identities;
  // Empty: a new WWN. Set when a LUN moves in from another device and keeps its
  // identity ("naa.3" + 15 hex digits).
  std::string wwn;
  // Free-form key/value metadata kept with the LUN (e.g. the Kubernetes PVC that
  // owns it); see ValidateLunMetadata. Not part of CreateLun's idempotence check.
  std::map<std::string, std::string> metadata;
};

struct SpaceStats {
  uint64_t logical_bytes = 0;  // mapped (non-hole) bytes as clients see them
  uint64_t unique_bytes = 0;   // physical bytes; a shared block counts 1/refs to each user
  // Mapped bytes whose block nothing else references (what deleting this LUN or
  // snapshot frees), and mapped bytes whose block is shared with another LUN,
  // snapshot, clone or (dedup) block of the same map.
  uint64_t exclusive_bytes = 0;
  uint64_t shared_bytes = 0;
  // A LUN or an owner: bytes only its snapshots hold (what deleting them all would
  // free, roughly: blocks shared between two snapshots count for neither).
  uint64_t snapshot_bytes = 0;
  double ratio() const {
    return unique_bytes ? static_cast<double>(logical_bytes) / static_cast<double>(unique_bytes)
                        : 1.0;
  }
};

struct TierMove {
  enum class State { kNone, kRunning, kDone, kCancelled, kFailed };
  State state = State::kNone;
  TierClass from = TierClass::kSsd;
  TierClass to = TierClass::kSsd;
  uint64_t bytes_copied = 0;
  uint64_t bytes_total = 0;
  double bytes_per_second = 0;
  std::string message;    // why it failed or was cancelled
  std::string to_device;  // set for a move to another device (its management address)
  // A move to another device: bytes whose copy was compared with the source (per-range
  // checksums from both devices, I/O paused) before the switch; 0 until then, or when
  // the move ran without verification.
  uint64_t verified_bytes = 0;
  // How long the paused part of that comparison took (re-hashing the ranges written
  // since the first, unpaused one): what verification adds to the switch's pause.
  double verify_seconds = 0;
};

struct LunInfo {
  std::string name;
  uint64_t id = 0;
  std::string wwn;  // "naa.3" + 15 hex digits: NAA type 3, locally assigned
  uint64_t size_bytes = 0;
  TierClass tier = TierClass::kSsd;
  bool dedup = false;
  std::string owner;
  std::vector<std::string> allowed_clients;
  std::vector<std::string> allowed_identities;
  uint64_t created_unix = 0;
  SpaceStats space;
  TierMove move;
  // Non-empty once the LUN lives on another device; this one proxies its I/O.
  std::string moved_to;
  std::map<std::string, std::string> metadata;
  // The nodes the LUN is published to (Engine::Publish): node id -> access entries.
  std::map<std::string, std::vector<std::string>> publications;
  // Seconds since the LUN's last read or write (or since it was created or the
  // engine opened, if none since), by EngineOptions::clock.
  uint64_t idle_seconds = 0;
  // A SetDedup(fold_existing) pass is still running over the LUN's blocks.
  bool folding = false;
  // Created here by a move from another device (CreateLun with a WWN) and not yet
  // accepted by it (Engine::AcceptLun): possibly a partial copy. Not exported over NBD
  // (List leaves it out, Open answers NOT_FOUND); deleted when the engine opens.
  bool incoming = false;
};

// A read-only, point-in-time image of a LUN (Engine::CreateSnapshot).
struct SnapshotInfo {
  std::string name;
  // Device-unique, never reused: the engine id and the creation time.
  std::string id;
  std::string source_lun;  // may no longer exist
  uint64_t size_bytes = 0;
  TierClass tier = TierClass::kSsd;
  std::string owner;
  uint64_t created_unix_nanos = 0;
  std::map<std::string, std::string> metadata;
  SpaceStats space;  // exclusive_bytes: freed by deleting it; shared_bytes: the rest
};

struct TierUsage {
  TierClass tier_class = TierClass::kSsd;
  uint64_t capacity_bytes = 0;
  uint64_t used_bytes = 0;  // slots holding data
  uint64_t indexed_blocks = 0;
  uint64_t index_memory_bytes = 0;
};

struct EngineOptions {
  std::string state_dir;  // journal and snapshot; usually the first tier's directory
  std::vector<TierConfig> tiers;
  // Capacity per tier in bytes, resolved by the caller (configured or measured).
  std::vector<uint64_t> tier_capacity_bytes;
  uint64_t device_id = 0;      // seeds WWNs
  uint32_t block_size = 4096;  // 4 KiB to 64 KiB, a power of two
  // Write a snapshot and truncate the journal once it passes this size.
  uint64_t checkpoint_bytes = 64ull << 20;
  // Flush on our own once this many metadata changes wait for a client FLUSH, to
  // bound memory and recovery work.
  size_t max_unflushed_records = 1 << 16;
  // Flush on our own once the blocks replaced by copy-on-write and waiting for a flush
  // to be freed pass this many bytes in any tier (capped at an eighth of the tier's
  // capacity): they stay allocated until then, and a LUN overwritten without flushes
  // must not use more than its size plus this. 0: no bound (the engine still flushes
  // when a tier runs out of free slots).
  uint64_t max_pending_free_bytes = 64ull << 20;
  // Tests only: replaces XXH3-128 as the block fingerprint, e.g. with a constant
  // to prove that colliding fingerprints never share different data.
  std::function<std::pair<uint64_t, uint64_t>(const void*, size_t)> fingerprint_for_test;
  // Opens a LUN on another device as a Volume, for LUNs that moved away (their I/O
  // is proxied). Unset: such LUNs answer UNAVAILABLE.
  std::function<std::shared_ptr<Volume>(const std::string& device, const std::string& lun)>
      remote_volume_factory;
  // Tests only: called before a tier move copies each block; returning false stops
  // that mover on the spot, as if the process had died there.
  std::function<bool(uint64_t lba)> mover_step_for_test;
  // Tests only: called by a dedup write between its search of the index (under the
  // shared lock) and its mapping section, with the write's first LBA.
  std::function<void(uint64_t lba)> dedup_searched_for_test;
  // The clock behind LunInfo::idle_seconds and the copy pacing (when clients last
  // started a request, how long a copy waits); unset: std::chrono::steady_clock. Tests
  // pass a fake to avoid sleeping, or to decide without racing the wall clock.
  std::function<std::chrono::steady_clock::time_point()> clock;
  // How fast a SetDedup(fold_existing) pass may read a LUN's blocks; 0: unthrottled.
  uint64_t fold_bytes_per_second = 32ull << 20;
  // Client I/O first: while this device's clients (NBD) have a request in flight or
  // started one in the last kClientBusyWindow, the device's background copies (device
  // moves out, through YieldToClients with their bytes, and in: the target's storing of
  // a move's messages) go at most this fast, all together: a fixed rate, or one that
  // follows the clients' request latency (CopyPacing::Mode::kAdaptive); an idle device
  // copies at full speed. Default: no cap (only the short waits for requests in flight).
  CopyPacing copy_pacing;
};

// The LUN engine of one device: thin LUNs over per-tier block stores, inline
// dedup, a metadata journal, live moves between tiers. Implements ExportCatalog so
// the NBD server serves its LUNs directly.
//
// Thread-safe. Durability: see Volume. LUN create/delete/resize/access changes are
// durable when the call returns.
class Engine final : public ExportCatalog {
 public:
  static Result<std::unique_ptr<Engine>> Open(Env* env, EngineOptions options);
  ~Engine() override;

  // Idempotent: the same spec again returns the existing LUN; the same name with a
  // different size, tier, dedup or owner is ALREADY_EXISTS. With spec.wwn (device
  // moves only) the LUN is created incoming (LunInfo::incoming) until AcceptLun. Metadata is not
  // compared: a retry that adds or changes it succeeds and keeps the first metadata.
  Result<LunInfo> CreateLun(const LunSpec& spec);
  // A new LUN `spec.name` with the contents `source` has now (every write acknowledged
  // before the call), sharing its blocks: no data is copied and no space used until
  // either side overwrites a block (copy-on-write). The clone stays on the source's
  // tier (a different spec.tier is INVALID_ARGUMENT) and gets a new WWN; spec.size_bytes
  // may be larger than the source (OUT_OF_RANGE when smaller). NOT_FOUND without the
  // source; FAILED_PRECONDITION while the source moves (tier or device) or after it
  // moved away. Idempotent like CreateLun. Atomic across crashes: the clone is either
  // whole or absent after a restart.
  Result<LunInfo> CloneLun(const std::string& source, const LunSpec& spec);
  // NOT_FOUND when absent. Open volumes start failing with UNAVAILABLE. The LUN's
  // snapshots stay (their blocks stay referenced).
  Status DeleteLun(const std::string& name);
  // The source of a device move accepts its copy here (complete, flushed, verified):
  // the LUN stops being incoming and is exported like any other. Durable when it
  // returns; idempotent (OK on a LUN already accepted). NOT_FOUND without the LUN;
  // FAILED_PRECONDITION naming `wwn` when the LUN has another WWN.
  Result<LunInfo> AcceptLun(const std::string& name, const std::string& wwn);
  // The incoming LUNs (moves cut by a crash or a stop) Open deleted, by name.
  std::vector<std::string> IncomingDroppedAtOpen();

  // ---- Snapshots: read-only, point-in-time images of a LUN, in their own namespace
  // (a snapshot may have a LUN's name). Not exported over NBD; restore one
  // (RestoreSnapshot) to read it.
  //
  // Takes every write acknowledged before the call (the source is flushed with the
  // snapshot: data first, then one journal record), sharing the source's blocks:
  // the cost is one pointer per 1024 blocks of the source's size and no data. The
  // source keeps writing (copy-on-write). Atomic across crashes (one record). The
  // same name and source again returns the existing snapshot; ALREADY_EXISTS when
  // the name belongs to a snapshot of another LUN; NOT_FOUND without the source;
  // FAILED_PRECONDITION while the source moves (tier or device) or after it moved
  // away; INVALID_ARGUMENT for a bad name or metadata (LUN rules). The answer's
  // `space` is left zero: it scans the map (GetSnapshot and ListSnapshots fill it).
  Result<SnapshotInfo> CreateSnapshot(const std::string& source, const std::string& name,
                                      const std::map<std::string, std::string>& metadata);
  // Frees the blocks nothing else references. NOT_FOUND when absent.
  Status DeleteSnapshot(const std::string& name);
  Result<SnapshotInfo> GetSnapshot(const std::string& name);
  // By name.
  std::vector<SnapshotInfo> ListSnapshots();
  // A new LUN `spec.name` with the snapshot's content, sharing its blocks (no copy;
  // atomic across crashes). spec.size_bytes at least the snapshot's (OUT_OF_RANGE);
  // spec.tier unset: the snapshot's tier; another tier: created on the snapshot's
  // tier and moved there at once by a tier move (LunInfo::move). NOT_FOUND without
  // the snapshot. Idempotent like CreateLun.
  Result<LunInfo> RestoreSnapshot(const std::string& snapshot, const LunSpec& spec);
  // Grow only: a smaller size is INVALID_ARGUMENT (shrinking loses data).
  Result<LunInfo> ResizeLun(const std::string& name, uint64_t new_size_bytes);
  // Replaces the whole access list (both parts); clients with open connections that
  // it no longer admits fail their next request with PERMISSION_DENIED.
  Result<LunInfo> SetAccess(const std::string& name, std::vector<std::string> allowed_clients,
                            std::vector<std::string> allowed_identities = {});
  // Records that the LUN is published to `node_id` (a CSI node id, 1-256 bytes) and adds
  // `entries` (access list entries, as allowed_clients) to its access list where missing;
  // the node's record becomes the union of what it had and `entries`. One durable change;
  // idempotent. INVALID_ARGUMENT naming node_id or access_entries[i]; NOT_FOUND without
  // the LUN; RESOURCE_EXHAUSTED past kMaxPublications nodes.
  Result<LunInfo> Publish(const std::string& name, const std::string& node_id,
                          const std::vector<std::string>& entries);
  // Removes `node_id`'s publication (every one when empty) and takes its recorded entries
  // and `entries` off the access list, except those another remaining publication holds
  // (with node_id empty: the access list becomes empty). OK when not published.
  Result<LunInfo> Unpublish(const std::string& name, const std::string& node_id,
                            const std::vector<std::string>& entries);
  static constexpr size_t kMaxPublications = 4096;
  // Turns de-duplication of new writes on or off for an existing LUN. Blocks already
  // shared stay shared (and correct: every write goes to a new or an equal block, so
  // copy-on-write is unaffected). With `fold_existing` (dedup on only, else
  // INVALID_ARGUMENT), a background pass throttled to
  // EngineOptions::fold_bytes_per_second reads the LUN's blocks not yet in the dedup
  // index and shares or indexes them; it stops when the engine closes, the LUN is
  // deleted or dedup is turned off again (LunInfo::folding; WaitFold). Durable when
  // it returns; the same setting again is a no-op (a fold already running is not
  // restarted). NOT_FOUND without the LUN; FAILED_PRECONDITION while it moves (tier
  // or device) or after it moved to another device. The device-wide dedup switch is
  // the caller's (Device) to check.
  Result<LunInfo> SetDedup(const std::string& name, bool dedup, bool fold_existing);
  // Blocks until no fold pass runs on the LUN (tests).
  Status WaitFold(const std::string& name);
  Result<LunInfo> GetLun(const std::string& name);
  std::vector<LunInfo> ListLuns();
  // Cheap: no space accounting (ListLuns scans every LUN's map).
  size_t LunCount();

  // Space per owner and for the whole device.
  std::map<std::string, SpaceStats> OwnerSpace();
  SpaceStats DeviceSpace();
  std::vector<TierUsage> Tiers();

  // Moves a LUN to another tier of this device while I/O continues: new writes go
  // to the target at once; a background copy moves the rest, verifying each block
  // before switching it; the source blocks are freed. FAILED_PRECONDITION when a
  // move is already running; a move to the LUN's own tier is a no-op.
  Status StartTierMove(const std::string& name, TierClass target);
  // Stops a running move and moves already-copied blocks back: the LUN ends whole
  // on its source tier.
  Status CancelTierMove(const std::string& name);
  // Blocks until the LUN's move ends (tests, CLI --wait).
  Result<TierMove> WaitTierMove(const std::string& name);
  // The same for at most `timeout` (then the move as it is, possibly still running).
  Result<TierMove> WaitTierMoveFor(const std::string& name, std::chrono::milliseconds timeout);

  // ---- Moves to another device, driven by the management layer (which talks to
  // the target). Pre-copy with dirty tracking: StartExport begins tracking writes;
  // ExportPass copies blocks (all mapped blocks, or those written since they were
  // last copied); CompleteExport pauses the LUN's I/O, copies what is still dirty,
  // flushes the target, then makes this LUN a proxy to `remote` and frees its
  // blocks. Until CompleteExport the LUN stays whole here: AbortExport (or a crash)
  // leaves it as it was.
  //
  // The sink gets each block (nullptr for a hole) in LBA order per pass.
  //
  // With `target_checksums` (the target's LunChecksums), CompleteExport verifies the
  // copy before it switches: both devices hash every `verify_range_bytes` range of
  // the LUN at once while I/O continues; then, with I/O paused after the last pass,
  // the ranges written since, still dirty, or different are hashed again; any range
  // still different fails it with DATA_LOSS naming the first one (or with the
  // target's error) instead of switching. TierMove::verified_bytes is the LUN's size
  // once that passed; verify_seconds the paused part.
  using BlockSink = std::function<Status(uint64_t lba, const char* block)>;
  using RangeChecksums = std::function<Result<std::vector<uint64_t>>(
      uint64_t range_bytes, uint64_t offset, uint64_t length)>;
  //
  // ExportPass reads the map under the engine's lock but the data without it, and
  // before each group of blocks waits (at most a few ms) for client requests in
  // flight on this device to end, so clients keep their latency while a move runs.
  // With `hash_range_bytes` (and all_blocks), the pass also hashes every range of
  // that size from the bytes it reads; CompleteExport with the same
  // verify_range_bytes then compares the target with those instead of reading this
  // LUN again (ranges sent again by a later pass, or dirty at the pause, are hashed
  // again with I/O paused, as before).
  //
  // With `buffers`, the pass reads each group of blocks into a buffer it gets from
  // there (of the size it asks for; null: its own) and the sink's block pointers point
  // into it: the sink may keep a reference to the buffer and send the blocks without
  // copying them. Without, one buffer of the pass's own is reused for every group
  // (the sink must copy what it keeps).
  using ReadBuffers = std::function<std::shared_ptr<char[]>(size_t bytes)>;
  //
  // With `mapped`, a LUN with dedup off on a file-backed tier is not read at all: each
  // run of its blocks in consecutive slots goes to `mapped` as a MappedRun, the bytes
  // where they lie in the tier's shared mapping (the sink gets only the holes). The
  // pass's hashes are taken from there. Whoever reads a run's bytes must pin it first;
  // see MappedRun.
  class MappedRun {
   public:
    virtual ~MappedRun() = default;
    uint64_t lba() const { return lba_; }
    uint64_t blocks() const { return blocks_; }
    // The run's bytes in the mapping: readable only between Pin() (true) and Unpin().
    const char* data() const { return data_; }
    // True: the run's slots still hold what the map pointed at when the pass read it
    // (this LUN's bytes, or newer ones written there since, whose blocks are dirty and
    // so sent again by a later pass), and will not be reused until Unpin. Hold a pin
    // for a bounded piece of work (one non-blocking send), never across a wait: a
    // flush's freed slots are held back meanwhile. False: a slot of the tier was made
    // reusable since: read the blocks with Reread instead (nothing to undo).
    virtual bool Pin() = 0;
    virtual void Unpin() = 0;
    // The run's blocks as they are now, read through the engine's lock (its normal
    // read path) into `out` (blocks() * block size bytes).
    virtual Status Reread(std::span<char> out) = 0;

   protected:
    MappedRun(uint64_t lba, uint64_t blocks, const char* data)
        : lba_(lba), blocks_(blocks), data_(data) {}

   private:
    const uint64_t lba_;
    const uint64_t blocks_;
    const char* const data_;
  };
  using MappedSink = std::function<Status(std::shared_ptr<MappedRun> run)>;
  Status StartExport(const std::string& name, const std::string& to_device);
  Result<uint64_t> ExportPass(const std::string& name, bool all_blocks, const BlockSink& sink,
                              uint64_t hash_range_bytes = 0, const ReadBuffers& buffers = {},
                              const MappedSink& mapped = {});
  // Waits until no client request (NBD) is in flight on this device, or `max_wait`:
  // what background copies call between chunks (the target of a move too). With
  // `copy_bytes` (what the caller copied since its last call), also paces the copies to
  // EngineOptions::copy_pacing while clients are busy.
  void YieldToClients(std::chrono::microseconds max_wait, uint64_t copy_bytes = 0);
  // How long YieldToClients' pacing has held background copies back for busy clients
  // since the engine opened (each wait as decided, on EngineOptions::clock): strata-stored's
  // strata_copy_paced_seconds_total.
  std::chrono::nanoseconds CopyPacedTime() const;
  uint64_t ExportDirtyBlocks(const std::string& name);
  //
  // `accept_remote` (when set) runs last, with I/O still paused, after the flush and
  // the verification passed and before the switch is journaled: the target accepts
  // its copy (AcceptLun). Its failure fails the export like a failed verification.
  Status CompleteExport(const std::string& name, std::shared_ptr<Volume> remote,
                        const BlockSink& sink, const std::function<Status()>& flush_remote,
                        const RangeChecksums& target_checksums = {},
                        uint64_t verify_range_bytes = kDefaultChecksumRangeBytes,
                        const std::function<Status()>& accept_remote = {});
  void AbortExport(const std::string& name, const Status& why);

  // XXH3-64 of each `range_bytes` range of the LUN's contents in [offset,
  // offset+length) (the last range may be shorter, cut at offset+length or the LUN's
  // end). Holes and unallocated blocks hash as the zeros they read as, so two devices
  // agree on equal contents however they store them (dedup, holes, tiers). Waits for
  // a cutover in progress; FAILED_PRECONDITION for a LUN that moved to another device.
  // range_bytes: a multiple of 4096, at most kMaxChecksumRangeBytes; offset a
  // multiple of range_bytes; at most kMaxChecksumRanges ranges per call.
  static constexpr uint64_t kDefaultChecksumRangeBytes = 1ull << 20;
  static constexpr uint64_t kMaxChecksumRangeBytes = 64ull << 20;
  static constexpr uint64_t kMaxChecksumRanges = 1ull << 16;
  Result<std::vector<uint64_t>> LunChecksums(const std::string& name, uint64_t range_bytes,
                                             uint64_t offset, uint64_t length);

  Result<std::shared_ptr<Volume>> OpenVolume(const std::string& name);
  // The volume for I/O another device passes on (its stub's clients': ReadLunData, and
  // WriteLunData that is not a move's copy): as OpenVolume, but a move's incoming copy
  // (not the LUN yet; the device it comes from holds the LUN) is UNAVAILABLE, so such I/O
  // never lands in a copy the move may yet drop or overwrite.
  Result<std::shared_ptr<Volume>> OpenVolumeForProxy(const std::string& name);
  // The LUN's I/O counters and latency percentiles, as recorded by the data path.
  Result<LunIoStats::Snapshot> IoStats(const std::string& name);
  // Makes every completed write durable.
  Status Flush();

  // ExportCatalog.
  std::vector<ExportInfo> List(const ClientInfo& client) override;
  Result<std::shared_ptr<Volume>> Open(std::string_view name, const ClientInfo& client) override;

 private:
  explicit Engine(std::unique_ptr<engine::EngineImpl> impl);
  std::unique_ptr<engine::EngineImpl> impl_;
};

// True when `client_ip` matches an entry of `allowed` ("*", an IP, or a CIDR).
bool ClientAllowed(const std::vector<std::string>& allowed, const std::string& client_ip);

// Checks entries are "*", IPs or CIDRs; names the bad entry.
Status ValidateAllowedClients(const std::vector<std::string>& allowed);

// Checks entries are "CN=NAME", "DNS:NAME" or "URI:URI" (non-empty, at most 1024
// bytes, no control characters); names the bad entry.
Status ValidateAllowedIdentities(const std::vector<std::string>& allowed);

// The whole access rule: with no identities listed, the IP rule (ClientAllowed);
// with identities, one of client.identities must be listed, and the IP must match
// allowed_clients as well unless that list is empty.
bool AccessAllowed(const std::vector<std::string>& allowed_clients,
                   const std::vector<std::string>& allowed_identities, const ClientInfo& client);

inline constexpr size_t kMaxLunMetadataEntries = 64;
inline constexpr size_t kMaxLunMetadataKeyBytes = 253;
inline constexpr size_t kMaxLunMetadataValueBytes = 1024;
// At most 64 entries; keys 1-253 characters, values at most 1024. INVALID_ARGUMENT
// naming `metadata` and the offending key otherwise.
Status ValidateLunMetadata(const std::map<std::string, std::string>& metadata);

}  // namespace strata::storage
