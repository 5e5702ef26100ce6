#pragma once

// The NBD transmission commands this server serves, as one table: a command is one
// row (wire type, name, flags it takes, how its offset and length are checked,
// whether it carries a payload either way, whether it writes, its I/O kind for the
// per-LUN stats, and the Volume call that runs it). Connection dispatches through
// it; ValidateRequest() checks a request header against it, and is what the
// limits and the fuzzer check against too.
//
// Spec: NetworkBlockDevice/nbd doc/proto.md, "Request types" and "Error values".

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "strata/common/result.h"
#include "strata/storage/io_stats.h"
#include "strata/storage/volume.h"

namespace strata::nbd {

// How a command's offset and length fields are checked.
enum class LengthRule {
  kNone,     // NBD_CMD_DISC: ignored
  kZero,     // offset and length must both be zero (NBD_CMD_FLUSH)
  kPayload,  // a range inside the export, length at most max_payload_bytes
  kRange,    // a range inside the export, any length (no data moves on the wire)
};

// What a handler gets: the request's fields and, for commands with a payload, its
// buffer of `length` bytes (the WRITE data, or room for the READ reply).
struct CommandArgs {
  uint16_t flags = 0;
  uint64_t offset = 0;
  uint32_t length = 0;
  char* data = nullptr;
};

using CommandHandler = Status (*)(storage::Volume* volume, const CommandArgs& args);

struct CommandSpec {
  uint16_t type;
  std::string_view name;
  // Flags valid on this command; structured_flags only once structured replies are
  // negotiated (NBD_CMD_FLAG_DF).
  uint16_t flags;
  uint16_t structured_flags;
  LengthRule length;
  bool payload_in;   // `length` bytes follow the request header (WRITE)
  bool payload_out;  // `length` bytes come back with a successful reply (READ)
  bool writes;       // refused with EPERM on a read-only export
  // The error for a range past the end (the spec: ENOSPC for writes, EINVAL else).
  uint32_t past_end_error;
  std::optional<storage::IoKind> io_kind;  // none: not recorded in the LUN's stats
  CommandHandler run;                      // nullptr: handled by the connection (DISC)
};

// The row for `type`, or nullptr for a command this server does not serve.
const CommandSpec* FindCommand(uint16_t type);
// Every row, for tests and tools that walk the table.
std::span<const CommandSpec> AllCommands();
// The spec's name ("NBD_CMD_READ"), or "command N" for one not in the table.
std::string CommandName(uint16_t type);

// What a request header is validated against: the negotiated session and the
// server's limits.
struct RequestContext {
  bool structured_replies = false;
  bool read_only = false;
  uint64_t size_bytes = 0;
  uint32_t max_payload_bytes = 0;
};

// 0 when the request may run; otherwise the NBD error value (kEinval, kEperm,
// kEnospc) and *message says which field is wrong and why. `spec` is
// FindCommand(type) (nullptr: unknown command, EINVAL).
uint32_t ValidateRequest(const CommandSpec* spec, uint16_t type, uint16_t flags, uint64_t offset,
                         uint32_t length, const RequestContext& ctx, std::string* message);

}  // namespace strata::nbd
