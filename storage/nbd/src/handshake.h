#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "strata/common/result.h"
#include "strata/storage/volume.h"

namespace strata::nbd {

class Admission;

struct HandshakeConfig {
  storage::ExportCatalog* catalog = nullptr;
  uint32_t max_option_bytes = 0;
  uint32_t max_payload_bytes = 0;  // advertised as the maximum block size
  std::chrono::steady_clock::time_point deadline;
  const std::atomic<bool>* stopping = nullptr;  // options get ERR_SHUTDOWN once true
  // Per-export connection limit, checked when the client picks an export
  // (NBD_OPT_GO: NBD_REP_ERR_POLICY when over; NBD_OPT_EXPORT_NAME: disconnect).
  // nullptr: no limit.
  Admission* admission = nullptr;
};

// What option haggling agreed on; the client is in the transmission phase.
struct Negotiated {
  std::shared_ptr<storage::Volume> volume;
  std::string export_name;
  uint64_t size_bytes = 0;
  uint16_t transmission_flags = 0;
  bool structured_replies = false;
  // The connection holds a slot of config.admission for export_name; it gives it
  // back with Admission::ReleaseExport when it ends.
  bool holds_export_slot = false;
};

// Runs the fixed newstyle handshake on a connected blocking socket: greeting,
// client flags, then options until NBD_OPT_GO or NBD_OPT_EXPORT_NAME succeeds.
// Never reads past the last option, so transmission requests the client pipelines
// right after GO stay in the socket. A non-OK result ends the session; its Status
// says why for the log (CANCELLED for a client's NBD_OPT_ABORT).
Result<Negotiated> RunHandshake(int fd, const storage::ClientInfo& client,
                                const HandshakeConfig& config);

// The transmission flags for a volume: flush, FUA, trim, write-zeroes and multi-conn
// (Volume::Flush covers writes from every connection), READ_ONLY instead of the
// write-side flags for a read-only volume, and DF when structured replies are on
// (every read reply is a single chunk).
uint16_t TransmissionFlags(const storage::Volume& volume, bool structured_replies);

}  // namespace strata::nbd
