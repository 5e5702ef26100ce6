#include "commands.h"

#include <array>
#include <cstdio>

#include "strata/nbd/protocol.h"

namespace strata::nbd {

namespace {

using storage::IoKind;

Status RunRead(storage::Volume* v, const CommandArgs& a) {
  return v->Read(a.offset, std::span<char>(a.data, a.length));
}

Status RunWrite(storage::Volume* v, const CommandArgs& a) {
  return v->Write(a.offset, std::span<const char>(a.data, a.length), (a.flags & kCmdFlagFua) != 0);
}

Status RunFlush(storage::Volume* v, const CommandArgs&) { return v->Flush(); }

Status RunTrim(storage::Volume* v, const CommandArgs& a) {
  Status st = v->Trim(a.offset, a.length);
  // Volume::Trim has no FUA; a flush makes the discard durable before the reply.
  if (st.ok() && (a.flags & kCmdFlagFua) != 0) st = v->Flush();
  return st;
}

Status RunWriteZeroes(storage::Volume* v, const CommandArgs& a) {
  // NBD_CMD_FLAG_NO_HOLE is accepted: the Volume interface has no way to ask for
  // provisioned zeroes, and zeroes that read back as zeroes are what it asks.
  return v->WriteZeroes(a.offset, a.length, (a.flags & kCmdFlagFua) != 0);
}

// The spec: FUA is valid (if ignorable) on every command.
constexpr uint16_t kAny = kCmdFlagFua;

// clang-format off
constexpr std::array<CommandSpec, 6> kCommands{{
  // type             name                    flags                    structured  length                payload in/out  writes past end  io kind                handler
  {kCmdRead,        "NBD_CMD_READ",         kAny,                    kCmdFlagDf, LengthRule::kPayload, false, true,  false, kEinval,  IoKind::kRead,        &RunRead},
  {kCmdWrite,       "NBD_CMD_WRITE",        kAny,                    0,          LengthRule::kPayload, true,  false, true,  kEnospc,  IoKind::kWrite,       &RunWrite},
  {kCmdDisc,        "NBD_CMD_DISC",         kAny,                    0,          LengthRule::kNone,    false, false, false, kEinval,  std::nullopt,          nullptr},
  {kCmdFlush,       "NBD_CMD_FLUSH",        kAny,                    0,          LengthRule::kZero,    false, false, false, kEinval,  IoKind::kFlush,       &RunFlush},
  {kCmdTrim,        "NBD_CMD_TRIM",         kAny,                    0,          LengthRule::kRange,   false, false, true,  kEinval,  IoKind::kTrim,        &RunTrim},
  {kCmdWriteZeroes, "NBD_CMD_WRITE_ZEROES", kAny | kCmdFlagNoHole,   0,          LengthRule::kRange,   false, false, true,  kEnospc,  IoKind::kWriteZeroes, &RunWriteZeroes},
}};
// clang-format on

}  // namespace

const CommandSpec* FindCommand(uint16_t type) {
  for (const CommandSpec& c : kCommands) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

std::span<const CommandSpec> AllCommands() { return kCommands; }

std::string CommandName(uint16_t type) {
  const CommandSpec* c = FindCommand(type);
  return c != nullptr ? std::string(c->name) : "command " + std::to_string(type);
}

uint32_t ValidateRequest(const CommandSpec* spec, uint16_t type, uint16_t flags, uint64_t offset,
                         uint32_t length, const RequestContext& ctx, std::string* message) {
  if (spec == nullptr) {
    *message = "unknown command " + std::to_string(type);
    return kEinval;
  }
  uint16_t allowed = spec->flags | (ctx.structured_replies ? spec->structured_flags : 0);
  if ((flags & ~allowed) != 0) {
    char buf[80];
    std::snprintf(buf, sizeof(buf), "command flags 0x%04x are not valid for ", flags);
    *message = buf + std::string(spec->name);
    return kEinval;
  }
  switch (spec->length) {
    case LengthRule::kNone:
      return 0;
    case LengthRule::kZero:
      if (offset != 0 || length != 0) {
        *message = std::string(spec->name) + ": offset and length must be zero";
        return kEinval;
      }
      return 0;
    case LengthRule::kPayload:
      if (length > ctx.max_payload_bytes) {
        *message = std::string(spec->name) + ": length " + std::to_string(length) +
                   " exceeds the maximum block size " + std::to_string(ctx.max_payload_bytes);
        return kEinval;
      }
      break;
    case LengthRule::kRange:
      break;
  }
  if (ctx.read_only && spec->writes) {
    *message = std::string(spec->name) + ": export is read-only";
    return kEperm;
  }
  uint64_t size = ctx.size_bytes;
  if (length > size || offset > size - length) {
    *message = std::string(spec->name) + ": range " + std::to_string(offset) + "+" +
               std::to_string(length) + " is past the end of the export (" + std::to_string(size) +
               " bytes)";
    return spec->past_end_error;
  }
  return 0;
}

}  // namespace strata::nbd
