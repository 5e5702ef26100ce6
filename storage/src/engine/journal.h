#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "block_map.h"
#include "strata/common/status.h"

namespace strata::storage::engine {

// The metadata journal. Every change to LUNs and block maps is one record; each
// record is an absolute assignment (upsert, delete, set mapping), so replaying a
// prefix twice, or a snapshot followed by records it already contains, converges
// to the same state. A snapshot is the same record format, compacted.
//
// Frame: u32 payload length | u32 XXH32(payload) | payload; little-endian. Replay
// stops at the first frame that is short or fails its checksum: a torn tail.

struct LunRecord {
  uint64_t id = 0;
  std::string name;
  std::string wwn;
  uint64_t size_bytes = 0;
  uint32_t tier = 0;  // index into the device's tiers
  bool dedup = false;
  std::string owner;
  std::vector<std::string> allowed_clients;
  // Certificate identities (AccessList.allowed_identities). Encoded after the
  // metadata, and only when non-empty (the metadata count then always precedes it).
  std::vector<std::string> allowed_identities;
  uint64_t created_unix = 0;
  // A tier move in progress: the tier new writes go to; equal to `tier` otherwise.
  uint32_t write_tier = 0;
  // Set once the LUN's data lives on another device (management address): this
  // device then proxies I/O there until clients switch their paths.
  std::string moved_to;
  // Free-form key/value metadata (CreateLunRequest.metadata). Encoded after
  // moved_to, and only when non-empty, so records of older versions (which end at
  // moved_to) still parse and records without metadata stay byte-identical.
  std::map<std::string, std::string> metadata;
  // The nodes the LUN is published to (PublishLun): node id -> the access entries it
  // needs. Encoded after metadata (an empty metadata count first when there is no
  // metadata) as a tagged section (u8 tag | u32 length | bytes; tag 1); records
  // without publications stay byte-identical to older ones. Later optional fields
  // add tags; a reader skips tags it does not know.
  std::map<std::string, std::vector<std::string>> publications;
  // Created on this device by a move from another one (CreateLun with a WWN) and not
  // yet accepted by the source (Engine::AcceptLun): a copy that may be partial. Never
  // exported over NBD; deleted when the engine opens (the move died with the restart).
  // Tagged section 3 (one byte, 1), present only while set.
  bool incoming = false;
};

// A LUN snapshot (read-only, point in time). Its id comes from the LUN ids (map and
// delete records name it by id). One record creates a whole snapshot: with
// share_map_from set, its map is that LUN's map as replayed so far (shared leaves),
// so a torn tail leaves either no snapshot or a whole one; with share_map_from 0
// (checkpoints), its map records follow.
struct SnapRecord {
  uint64_t id = 0;
  std::string name;
  uint64_t source_id = 0;
  std::string source_lun;
  uint64_t size_bytes = 0;
  uint32_t tier = 0;
  std::string owner;
  uint64_t created_unix_nanos = 0;
  uint64_t share_map_from = 0;
  std::map<std::string, std::string> metadata;
};

struct MapRecord {
  uint64_t lun_id = 0;
  uint64_t lba = 0;
  BlockRef ref = kHole;
  bool indexed = false;  // the block is in its tier's dedup index
};

// One block's mapping in a run record (RecordEncoder::MapRun): lba = the run's first lba
// + offset.
struct MapRunEntry {
  uint32_t offset = 0;
  BlockRef ref = kHole;
  bool indexed = false;
};

class RecordEncoder {
 public:
  void Lun(const LunRecord& r);
  void DeleteLun(uint64_t lun_id);
  void Map(const MapRecord& r);
  // The mappings one request changed in one exclusive section, as one record (one
  // frame, one checksum: a torn tail keeps all of them or none); replayed as n Map
  // records in order (ReplayHandlers::on_map), and counted as n in records(). n >= 1.
  // Payload: u8 type | u64 lun_id | u64 first_lba | u32 n | n x (u32 offset | u64 ref
  // | u8 indexed): 13 bytes a block instead of a 34-byte frame each.
  void MapRun(uint64_t lun_id, uint64_t first_lba, const MapRunEntry* entries, size_t n);
  void Snapshot(const SnapRecord& r);
  // LUN `dst_id`'s map becomes LUN or snapshot `src_id`'s map (shared leaves); a
  // restore journals it between a hidden and the final record of the new LUN.
  void ShareMap(uint64_t dst_id, uint64_t src_id);

  std::string& buffer() { return buf_; }
  // Records encoded since Clear, each map entry of a run record counted as one.
  size_t records() const { return records_; }
  void Clear() {
    buf_.clear();
    records_ = 0;
  }

 private:
  void Frame(const std::string& payload);
  std::string buf_;
  size_t records_ = 0;
};

struct ReplayHandlers {
  std::function<void(const LunRecord&)> on_lun;
  std::function<void(uint64_t lun_id)> on_delete;
  std::function<void(const MapRecord&)> on_map;
  std::function<void(const SnapRecord&)> on_snapshot;
  std::function<void(uint64_t dst_id, uint64_t src_id)> on_share_map;
};

struct ReplayResult {
  size_t records = 0;      // as RecordEncoder::records counts them (a run's entries one each)
  size_t valid_bytes = 0;  // where the intact prefix ends (the rest is a torn tail)
};

// Decodes records from `data` in order. A checksummed frame whose payload does not
// parse is corruption, not a torn tail: DATA_LOSS.
Status Replay(std::string_view data, const ReplayHandlers& handlers, ReplayResult* result);

}  // namespace strata::storage::engine
