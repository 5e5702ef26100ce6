#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "strata/common/result.h"

namespace strata::storage {

class LunIoStats;

// A write whose payload the caller receives straight into where the volume wants it
// (Volume::BeginWrite): the NBD server asks for one when it reads a large WRITE's
// header, and lands each receive of the payload where NextSpace() says, so the bytes
// are copied once (into a mapping of the tier file, or into a buffer the volume
// hashes block by block while the bytes are still in cache).
//
// The caller's protocol: while bytes remain, NextSpace() is where the next ones go
// (never empty, never more than the bytes that remain); after each receive that
// landed n > 0 bytes at its start, Received(n). Once every byte has landed, Commit()
// once: that is the write, with Write's durability (the fua given to BeginWrite),
// errors and statistics (the caller records the request, as for Write).
// Destroyed without Commit (the payload did not all arrive): the write is abandoned
// and never acknowledged. Blocks the received bytes reached may then read back old or
// new bytes, as after a write cut short by a crash; nothing else changes.
//
// Bytes of the payload the caller already holds (read together with the request's
// header) go first, through Land(). A write whose spaces hold live data (an in-place
// overwrite) says so with WholeReceives(): it stores what Land gives with system
// calls, a whole block each time, and the caller fills each space it gives with one
// receive that takes all of it (MSG_WAITALL; the payload is queued). A process killed
// in the middle then leaves each block whole, old or new, never half of each.
//
// BeginWrite, the receives, Commit and the destruction run on one thread (the NBD
// server's connection thread that read the request runs it): an implementation may
// hold locks from BeginWrite on. It holds none across the caller's receives unless
// BeginWrite was told the payload is already queued (they then never wait on the
// network), and the caller does nothing else that may wait before Commit.
class IncomingWrite {
 public:
  virtual ~IncomingWrite() = default;

  virtual std::span<char> NextSpace() = 0;
  // Where the next bytes go when one receive may fill several places (a vectored
  // receive): up to `max` (>= 1) spaces, in payload order, at least one and together
  // never more than the bytes that remain; the count. Received(n) then says n bytes
  // landed across them in order. By default NextSpace() alone.
  virtual size_t NextSpaces(std::span<char>* out, size_t max) {
    (void)max;
    out[0] = NextSpace();
    return 1;
  }
  virtual void Received(size_t n) = 0;
  virtual Status Commit() = 0;

  // The payload's first bytes, before anything is received. By default copied into
  // NextSpace() in turn. INTERNAL when the volume gives no space for them.
  virtual Status Land(std::span<const char> bytes) {
    while (!bytes.empty()) {
      std::span<char> space = NextSpace();
      if (space.empty()) return InternalError("the volume gave no space for the write's payload");
      const size_t n = std::min(space.size(), bytes.size());
      std::copy_n(bytes.data(), n, space.data());
      Received(n);
      bytes = bytes.subspan(n);
    }
    return Status::Ok();
  }
  // Each space NextSpaces gives must be filled by one receive that takes all of it.
  virtual bool WholeReceives() const { return false; }

  // Where the next bytes go as a range of a file, for a caller that asked for it
  // (IncomingPayload::to_file) and writes them with a write into the file (a splice
  // from the socket through a pipe: one copy, into pages the file system allocates
  // without clearing them, where a store through memory pays a populated, cleared
  // and mapped page first). Received(n) then says n bytes landed there, in order;
  // Land may still be called for bytes the caller already holds. fd -1 (the default):
  // the volume takes the payload through NextSpaces only. A write into the file that
  // fails (ENOSPC) abandons the write: the caller drops it and answers the error.
  struct FileSpace {
    int fd = -1;          // owned by the volume, valid while this lives
    uint64_t offset = 0;  // in the file
    size_t length = 0;    // at least one byte when fd >= 0
  };
  virtual FileSpace NextFileSpace() { return {}; }
};

// A read whose bytes the caller sends straight from where the volume keeps them
// (Volume::BeginRead): the NBD server sends a large READ's reply from Spans() (the
// page cache of the tier file, through its mapping) instead of reading it into a
// buffer first. The volume's bytes stay as they are while this lives (it holds the
// volume's guard): the caller only hands them to a send that does not wait (what does
// not fit, it copies), then destroys it, on the thread that called BeginRead.
class OutgoingRead {
 public:
  virtual ~OutgoingRead() = default;

  // The range's bytes in order; together exactly the length asked for.
  virtual std::span<const std::span<const char>> Spans() const = 0;
};

// How the payload of a BeginWrite arrives.
struct IncomingPayload {
  // Every byte of the payload has already reached this host (queued in the socket,
  // or in the caller's buffer): receiving it will not wait on the peer. False when
  // unknown (e.g. under TLS).
  bool queued = false;
  // The caller can write the payload into a file rather than store it through memory
  // (IncomingWrite::NextFileSpace): the plain socket, spliced.
  bool to_file = false;
};

// A LUN as the data path sees it: a byte-addressed block device. The NBD server
// and the migration engine speak to LUNs only through this interface.
//
// Thread-safe: any number of requests may be in flight at once, from any number
// of connections. Overlapping writes in flight at the same time land in some
// order, per block (the granularity at which a shared multi-writer LUN is safe).
//
// Durability contract (the NBD one): a completed Write/WriteZeroes/Trim may be lost
// by a crash until a later Flush completes, or unless it was sent with fua=true, in
// which case it is durable when the call returns. Flush makes every write that
// completed before it was called durable, whichever connection sent it.
//
// Errors: OUT_OF_RANGE for a range past the end, INVALID_ARGUMENT for a bad length,
// RESOURCE_EXHAUSTED when the tier is full (NBD ENOSPC), UNAVAILABLE while the LUN
// is being deleted, INTERNAL for I/O errors (NBD EIO).
class Volume {
 public:
  virtual ~Volume() = default;

  virtual uint64_t size_bytes() const = 0;
  // The block size of the backing store: reads and writes of whole aligned blocks
  // are fastest; any byte range is accepted.
  virtual uint32_t block_size() const = 0;
  virtual bool read_only() const = 0;

  virtual Status Read(uint64_t offset, std::span<char> out) = 0;
  virtual Status Write(uint64_t offset, std::span<const char> data, bool fua) = 0;
  // Write of the pieces' bytes one after another from `offset` (a message received in
  // several buffers), without joining them where the volume can (the engine's LUNs,
  // dedup off). The default joins them and calls Write.
  virtual Status WriteV(uint64_t offset, std::span<const std::span<const char>> pieces, bool fua) {
    if (pieces.size() == 1) return Write(offset, pieces[0], fua);
    std::vector<char> joined;
    for (const auto& p : pieces) joined.insert(joined.end(), p.begin(), p.end());
    return Write(offset, joined, fua);
  }
  // A write whose payload the caller is about to receive, for the volume to say where
  // its bytes should land (IncomingWrite), or nullptr: the caller receives the payload
  // into its own buffer and calls Write (what the default does). Range and length are
  // checked by the caller as for Write (inside the volume, not read-only, length > 0).
  virtual std::unique_ptr<IncomingWrite> BeginWrite(uint64_t /*offset*/, uint32_t /*length*/,
                                                    bool /*fua*/,
                                                    const IncomingPayload& /*payload*/) {
    return nullptr;
  }
  // The bytes of a read for the caller to send without copying them (OutgoingRead),
  // or nullptr: the caller calls Read (what the default does; also for any error,
  // which Read then reports). Range checked by the caller as for Read (length > 0).
  virtual std::unique_ptr<OutgoingRead> BeginRead(uint64_t /*offset*/, uint32_t /*length*/) {
    return nullptr;
  }
  virtual Status WriteZeroes(uint64_t offset, uint64_t length, bool fua) = 0;
  // Discards the range: it reads back as zeroes and its space is freed.
  virtual Status Trim(uint64_t offset, uint64_t length) = 0;
  virtual Status Flush() = 0;

  // Per-LUN I/O statistics the data path records into. Never null.
  virtual LunIoStats* io_stats() = 0;
};

// Who is connecting, as the export layer sees it.
struct ClientInfo {
  std::string peer_address;    // IP of the client, no port ("10.0.0.7", "::1")
  std::string portal_address;  // HOST:PORT of the portal the client reached
  // The identities of the client's verified TLS certificate, as access lists name
  // them: "CN=<subject common name>", "DNS:<SAN DNS name>", "URI:<SAN URI>". Empty
  // without TLS or without a client certificate.
  std::vector<std::string> identities = {};
};

struct ExportInfo {
  std::string name;
  std::string description;
  uint64_t size_bytes = 0;
};

// Resolves NBD export names to LUNs and enforces each LUN's access list (the
// logical network perimeter). Thread-safe.
class ExportCatalog {
 public:
  virtual ~ExportCatalog() = default;

  // The exports this client may see (NBD_OPT_LIST).
  virtual std::vector<ExportInfo> List(const ClientInfo& client) = 0;
  // NOT_FOUND for an unknown name, PERMISSION_DENIED when the client is not on
  // the LUN's access list, UNAVAILABLE when the LUN exists but cannot serve now.
  virtual Result<std::shared_ptr<Volume>> Open(std::string_view name, const ClientInfo& client) = 0;
};

}  // namespace strata::storage
