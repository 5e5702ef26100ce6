#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "strata/common/net_address.h"
#include "strata/common/result.h"

namespace strata::nbd {

struct NbdClientOptions {
  // Requests sent and not yet answered, at most: a request beyond it waits for a reply.
  int max_in_flight = 8;
  // TCP connect plus the whole handshake.
  std::chrono::milliseconds connect_timeout{10'000};
  // A request that cannot be sent, or a reply that does not come, within this time
  // fails the connection (DEADLINE_EXCEEDED): a stuck server does not hang the caller.
  std::chrono::milliseconds io_timeout{60'000};
};

// What the server told the client about the export (NBD_OPT_GO's NBD_INFO_EXPORT and
// NBD_INFO_BLOCK_SIZE).
struct NbdExportDetails {
  uint64_t size_bytes = 0;
  uint16_t transmission_flags = 0;
  uint32_t min_block_size = 1;
  uint32_t preferred_block_size = 4096;
  // The largest payload the server takes in one request (32 MiB when it does not say).
  uint32_t max_payload_bytes = 32u << 20;
};

// Memory a write's payload may be read from only while pinned (NbdClient::WriteGuarded):
// e.g. a storage tier's shared mapping, whose slots may be reused once freed.
class PayloadGuard {
 public:
  virtual ~PayloadGuard() = default;
  // True: the payload may be read until Unpin. False: it must not be read at all.
  virtual bool Pin() = 0;
  virtual void Unpin() = 0;
  // The whole payload, read another way (`out` is its size), when a Pin fails.
  virtual Status Fallback(std::span<char> out) = 0;
};

// A production NBD client for writing into one export over one TCP connection: the
// fixed newstyle handshake with NBD_OPT_GO (plaintext only), then pipelined
// NBD_CMD_WRITE, NBD_CMD_WRITE_ZEROES and NBD_CMD_FLUSH with simple replies, at most
// options.max_in_flight unanswered, read by a thread of its own (NetworkBlockDevice/nbd
// doc/proto.md).
//
// Requests are asynchronous: a call returns once its request is on the wire (or with
// the connection's error); its reply comes later. The first failed reply (the NBD
// error named, e.g. "NBD_CMD_WRITE at 4096+1048576: ENOSPC") or connection error is
// kept: every later call returns it, and the connection stops sending. Wait() blocks
// until every request sent has its reply.
//
// Thread-compatible for the sending side (one thread calls Write/WriteZeroes/Flush/
// Wait/Close at a time); the reply reader is internal.
class NbdClient {
 public:
  // Connects to `portal` (a name or an address) and selects `export_name`.
  // NOT_FOUND for an unknown export (NBD_REP_ERR_UNKNOWN), PERMISSION_DENIED when
  // refused (NBD_REP_ERR_POLICY), FAILED_PRECONDITION when the server requires TLS
  // (NBD_REP_ERR_TLS_REQD) or is not fixed-newstyle, UNAVAILABLE when unreachable,
  // DEADLINE_EXCEEDED past options.connect_timeout.
  static Result<std::unique_ptr<NbdClient>> Connect(const HostPort& portal,
                                                    std::string_view export_name,
                                                    NbdClientOptions options = {});

  // Sends NBD_CMD_DISC when the connection is healthy, then closes it; replies not
  // yet read are dropped (call Wait first to have them).
  ~NbdClient();
  NbdClient(const NbdClient&) = delete;
  NbdClient& operator=(const NbdClient&) = delete;

  const NbdExportDetails& details() const;

  // NBD_CMD_WRITE of `data` at `offset`. `hold` (may be null) is kept until the reply
  // arrives: the owner of `data`, which must stay valid until then.
  // REQUIRES: 0 < data.size() <= details().max_payload_bytes.
  Status Write(uint64_t offset, std::span<const char> data, std::shared_ptr<const void> hold);
  // NBD_CMD_WRITE at `offset` of the pieces' bytes one after another, read from them
  // only while `guard` is pinned: what the socket takes goes out with a non-blocking
  // send under a pin of its own, and the pin is released before any wait for room on
  // the socket (so a slow server never keeps it held). A failed pin sends the rest of
  // the payload from guard.Fallback's bytes instead (what was sent stays as it was).
  // Nothing of the pieces is referenced after the call returns.
  // REQUIRES: 0 < total size <= details().max_payload_bytes.
  Status WriteGuarded(uint64_t offset, std::span<const std::span<const char>> pieces,
                      PayloadGuard& guard);
  // NBD_CMD_WRITE_ZEROES over [offset, offset+length), in requests of at most 1 GiB;
  // servers without it (no NBD_FLAG_SEND_WRITE_ZEROES) get NBD_CMD_WRITE of zeroes.
  Status WriteZeroes(uint64_t offset, uint64_t length);
  // NBD_CMD_FLUSH (needs NBD_FLAG_SEND_FLUSH: else FAILED_PRECONDITION), then waits
  // for every reply, its own included.
  Status Flush();
  // Blocks until every request sent has its reply; the first error of any.
  Status Wait();
  // Wait(), then NBD_CMD_DISC and close. Idempotent; the first error of the session.
  Status Close();

  class Impl;

 private:
  explicit NbdClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// "EIO", "ENOSPC", ... for an NBD error value; "error N" for one the spec does not name.
std::string NbdErrorName(uint32_t error);

}  // namespace strata::nbd
