#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "strata/common/env.h"

namespace strata::storage::engine {

// Allocates the pages of `space` (in a shared file mapping) for writing now, with one
// system call (MADV_POPULATE_WRITE), instead of a fault per page while it is filled.
// False when that failed: no room left in the file system, or a kernel without it.
bool PopulateForWrite(std::span<char> space);

// One shared, writable mapping (MAP_SHARED, PROT_READ | PROT_WRITE) of a file-backed
// tier's data file, owned by the engine: reads and stores through it are coherent with
// pread/pwrite (both go through the page cache) and cost no system call. It reserves
// address space for the tier's whole capacity, so the file's growth never moves it;
// only bytes below the file's current length may be touched (past it the process gets
// SIGBUS), so Read/Write take the length the caller knows the file has
// (TierStore::written_end, guarded by the engine's lock) and give an empty span for
// anything past it. None (Create gives null) for a block-device tier or when the file
// cannot be mapped: callers then use pread/pwrite.
//
// Reading slots without the engine's lock (a device move sends a LUN's blocks straight
// from here, and the send may run long after the map was read): a slot freed by a
// write and made reusable by a flush may hold another LUN's bytes a moment later. Such
// a reader takes epoch() under the lock when it reads the map, and reads the slots
// only between TryPin(epoch) (true) and Unpin(epoch); TryPin fails once any slot was
// retired since (the reader then reads through the lock again). The engine hands
// freed slots back for reuse only through Retire, which keeps them back while a reader
// pinned before their retirement may still be reading them. A pin is meant to be held
// for a bounded piece of CPU work (one non-blocking send), never across a wait.
//
// Thread-safety: data(), Read, Write, epoch, TryPin and Unpin from any thread; Retire
// and retained_slots under the engine's lock (one caller at a time).
class TierMapping {
 public:
  // Maps `file` for `reserve_bytes` (the tier's capacity), or null: a block device
  // (`kind`), an empty reservation, or a File without a writable view
  // (File::MapShared).
  static std::unique_ptr<TierMapping> Create(File& file, PathKind kind, uint64_t reserve_bytes);

  // For tests: a mapping over memory the caller owns (no file behind it).
  TierMapping(char* base, uint64_t reserved_bytes, bool in_memory = false)
      : base_(base), reserved_(reserved_bytes), in_memory_(in_memory) {}
  TierMapping(const TierMapping&) = delete;
  TierMapping& operator=(const TierMapping&) = delete;

  char* data() const { return base_; }
  uint64_t reserved_bytes() const { return reserved_; }
  // The file's pages live in memory only (File::InMemory, tmpfs): a page Prefault
  // allocated stays, so the engine may store blocks into it through data() instead of
  // a pwrite (nothing there can fault for want of space).
  bool in_memory() const { return in_memory_; }

  // [offset, offset + length) when it lies inside the reservation and below
  // `file_end`; otherwise empty.
  std::span<const char> Read(uint64_t offset, uint64_t length, uint64_t file_end) const {
    return Covers(offset, length, file_end) ? std::span<const char>(base_ + offset, length)
                                            : std::span<const char>();
  }
  std::span<char> Write(uint64_t offset, uint64_t length, uint64_t file_end) const {
    return Covers(offset, length, file_end) ? std::span<char>(base_ + offset, length)
                                            : std::span<char>();
  }

  // Allocates the pages of `space` (a span Write gave) for writing now, with one
  // system call (MADV_POPULATE_WRITE), instead of a fault per page while it is filled.
  // False when that failed (no room left in the file system, which a store through
  // the mapping would otherwise meet as SIGBUS or EFAULT, or a kernel without it):
  // the caller then writes with pwrite, which reports ENOSPC as an error.
  bool Prefault(std::span<char> space) const;

  // ---- Reads outside the engine's lock ----
  uint64_t epoch() const { return epoch_.load(); }
  // True: no slot was retired since `epoch` was taken, and none will be reusable
  // until Unpin(epoch). False: read them through the lock instead (nothing to undo).
  bool TryPin(uint64_t epoch);
  void Unpin(uint64_t epoch);
  // Slots made free by a durable flush: appends to `reusable` those no pinned reader
  // can still be reading (these and any held back by earlier calls) and holds the
  // rest back for a later call (an empty `freed` just looks again). Without readers,
  // every slot comes straight back.
  void Retire(std::vector<uint64_t> freed, std::vector<uint64_t>* reusable);
  // Held back by Retire, not yet reusable.
  size_t retained_slots() const { return waiting_.size() + next_.size(); }

 private:
  bool Covers(uint64_t offset, uint64_t length, uint64_t file_end) const {
    return length > 0 && offset <= reserved_ && length <= reserved_ - offset &&
           offset + length <= file_end;
  }

  char* const base_;
  const uint64_t reserved_;
  const bool in_memory_;

  // Pins are counted by their epoch's parity. Retire advances the epoch (so no new pin
  // of the old one succeeds) and then finds the old epoch's count: zero, and the freed
  // slots are reusable at once; else they wait in waiting_ until that count is seen
  // zero. Meanwhile no second advance (which would reuse the parity), so slots freed
  // then gather in next_ and are retired together once waiting_ is released.
  std::atomic<uint64_t> epoch_{0};
  std::atomic<int64_t> pins_[2] = {0, 0};
  std::vector<uint64_t> waiting_;  // guarded by the caller's lock
  bool waiting_active_ = false;    // guarded by the caller's lock
  int waiting_parity_ = 0;         // guarded by the caller's lock
  std::vector<uint64_t> next_;     // guarded by the caller's lock
};

}  // namespace strata::storage::engine
