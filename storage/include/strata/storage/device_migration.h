#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "strata/common/result.h"
#include "strata/storage/engine.h"

namespace strata::storage {

// Streams blocks into a LUN of another device. Put may buffer, and blocks may be
// applied on the target in any order (a pass puts each block once); Finish returns
// once every block put is applied there (not necessarily durable: see Flush), or
// with the first error of any of them.
class BlockWriter {
 public:
  virtual ~BlockWriter() = default;
  virtual Status Put(uint64_t lba, const char* block) = 0;  // nullptr: a hole (zeros)
  virtual Status Finish() = 0;
  // A buffer of `bytes` for the source to read blocks into before it puts them
  // (Engine::ReadBuffers): Put then keeps a reference to the buffer instead of copying
  // blocks that lie in the last one handed out. Null: the source uses its own, Put copies.
  virtual std::shared_ptr<char[]> ReadBuffer(size_t bytes) {
    (void)bytes;
    return nullptr;
  }
  // Whether PutMapped is taken: the source then hands out the runs of its plain LUNs'
  // blocks where they lie in its tier's mapping instead of reading them
  // (Engine::ExportPass with a MappedSink).
  virtual bool TakesMapped() const { return false; }
  // The run's blocks, as Put of each of them would: read only pinned (MappedRun::Pin,
  // never across a wait), or through MappedRun::Reread when the pin fails.
  virtual Status PutMapped(std::shared_ptr<Engine::MappedRun> run) {
    (void)run;
    return UnimplementedError("this writer takes no mapped runs");
  }
};

// Another strata-stored device, as a move to it needs it. Implemented over gRPC
// (grpc_remote_device) and, in tests, over a second in-process Engine.
class RemoteDevice {
 public:
  virtual ~RemoteDevice() = default;
  virtual const std::string& address() const = 0;
  // The WWN of the LUN of that name on the target, or nullopt when there is none.
  virtual Result<std::optional<std::string>> LunWwn(const std::string& name) = 0;
  virtual Status CreateLun(const LunSpec& spec) = 0;
  virtual Status DeleteLun(const std::string& name) = 0;
  // Engine::AcceptLun on the target: the copy is complete and verified; export it.
  virtual Status AcceptLun(const std::string& name, const std::string& wwn) = 0;
  virtual Result<std::unique_ptr<BlockWriter>> OpenWriter(const std::string& lun,
                                                          uint32_t block_size) = 0;
  virtual Status Flush(const std::string& lun) = 0;
  // The target LUN as a Volume, for proxying after the switch.
  virtual std::shared_ptr<Volume> OpenVolume(const std::string& lun) = 0;
  // Engine::LunChecksums of the target's LUN over [offset, offset+length), in as many
  // calls as it takes.
  virtual Result<std::vector<uint64_t>> LunChecksums(const std::string& lun, uint64_t range_bytes,
                                                     uint64_t offset, uint64_t length) = 0;
};

struct DeviceMoveOptions {
  std::optional<TierClass> target_tier;  // unset: the target's first tier
  // Stop pre-copy passes once this few blocks are dirty (then pause and switch), or
  // after max_passes.
  uint64_t switch_threshold_blocks = 256;
  int max_passes = 8;
  // Compare the copy with the source before the switch (Engine::CompleteExport's
  // verification: every range, then those that may have changed again with I/O
  // paused); a difference fails the move.
  bool verify = true;
  uint64_t verify_range_bytes = Engine::kDefaultChecksumRangeBytes;
};

// Moves LUN `name` of `engine` to `remote` while clients keep reading and writing
// (see Engine::StartExport): create the LUN on the target with the same name, size,
// WWN, dedup, owner, access list and metadata; copy (only mapped blocks: holes stay
// holes; the full pass hashes what it reads, options.verify); copy what changed,
// until little is left; compare those per-range checksums with the target's of the
// whole LUN (options.verify);
// pause the LUN's I/O, copy the rest, flush the target, compare again the ranges
// written since or different, accept the copy on the target (until then it is
// incoming there: not exported, deleted if the target restarts), switch this LUN to
// proxy there and free its blocks. On any failure
// (or `cancel`), the LUN stays whole on this device and the partial copy on the target is deleted.
//
// A LUN of the same name already on the target is refused (ALREADY_EXISTS) unless
// its WWN is this LUN's: then it is the leftover of an interrupted move and is
// replaced.
Status MoveLunToDevice(Engine* engine, const std::string& name, RemoteDevice* remote,
                       const DeviceMoveOptions& options, const std::atomic<bool>* cancel);

// MoveLunToDevice in two steps, so a caller can report "running" (and refuse a second
// move) synchronously and run the copy in the background: Begin starts the export;
// Run does the rest and ends it either way.
Status BeginLunMoveToDevice(Engine* engine, const std::string& name,
                            const std::string& target_address);
Status RunLunMoveToDevice(Engine* engine, const std::string& name, RemoteDevice* remote,
                          const DeviceMoveOptions& options, const std::atomic<bool>* cancel);

}  // namespace strata::storage
