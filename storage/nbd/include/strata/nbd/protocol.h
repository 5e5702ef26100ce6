#pragma once

// Wire constants of the NBD protocol (NetworkBlockDevice/nbd doc/proto.md), shared by
// the server and by the raw-socket clients in tests. Every multi-byte field on the
// wire is big-endian. Names follow the spec's, in kConstant form.

#include <cstdint>
#include <cstring>
#include <string>

namespace strata::nbd {

// Handshake.
inline constexpr uint64_t kNbdMagic = 0x4e42444d41474943ull;     // "NBDMAGIC"
inline constexpr uint64_t kOptsMagic = 0x49484156454F5054ull;    // "IHAVEOPT"
inline constexpr uint64_t kOldstyleMagic = 0x00420281861253ull;  // never sent by us
inline constexpr uint64_t kOptReplyMagic = 0x3e889045565a9ull;

// Handshake flags (server, 16 bits).
inline constexpr uint16_t kFlagFixedNewstyle = 1 << 0;
inline constexpr uint16_t kFlagNoZeroes = 1 << 1;
// Client flags (32 bits).
inline constexpr uint32_t kClientFlagFixedNewstyle = 1 << 0;
inline constexpr uint32_t kClientFlagNoZeroes = 1 << 1;

// Options.
inline constexpr uint32_t kOptExportName = 1;
inline constexpr uint32_t kOptAbort = 2;
inline constexpr uint32_t kOptList = 3;
inline constexpr uint32_t kOptPeekExport = 4;
inline constexpr uint32_t kOptStartTls = 5;
inline constexpr uint32_t kOptInfo = 6;
inline constexpr uint32_t kOptGo = 7;
inline constexpr uint32_t kOptStructuredReply = 8;
inline constexpr uint32_t kOptListMetaContext = 9;
inline constexpr uint32_t kOptSetMetaContext = 10;

// Option reply types; errors have bit 31 set.
inline constexpr uint32_t kRepAck = 1;
inline constexpr uint32_t kRepServer = 2;
inline constexpr uint32_t kRepInfo = 3;
inline constexpr uint32_t kRepMetaContext = 4;
inline constexpr uint32_t kRepErrBit = 1u << 31;
inline constexpr uint32_t kRepErrUnsup = kRepErrBit + 1;
inline constexpr uint32_t kRepErrPolicy = kRepErrBit + 2;
inline constexpr uint32_t kRepErrInvalid = kRepErrBit + 3;
inline constexpr uint32_t kRepErrPlatform = kRepErrBit + 4;
inline constexpr uint32_t kRepErrTlsReqd = kRepErrBit + 5;
inline constexpr uint32_t kRepErrUnknown = kRepErrBit + 6;
inline constexpr uint32_t kRepErrShutdown = kRepErrBit + 7;
inline constexpr uint32_t kRepErrBlockSizeReqd = kRepErrBit + 8;
inline constexpr uint32_t kRepErrTooBig = kRepErrBit + 9;

// NBD_REP_INFO information types.
inline constexpr uint16_t kInfoExport = 0;
inline constexpr uint16_t kInfoName = 1;
inline constexpr uint16_t kInfoDescription = 2;
inline constexpr uint16_t kInfoBlockSize = 3;

// Transmission flags (16 bits).
inline constexpr uint16_t kFlagHasFlags = 1 << 0;
inline constexpr uint16_t kFlagReadOnly = 1 << 1;
inline constexpr uint16_t kFlagSendFlush = 1 << 2;
inline constexpr uint16_t kFlagSendFua = 1 << 3;
inline constexpr uint16_t kFlagRotational = 1 << 4;
inline constexpr uint16_t kFlagSendTrim = 1 << 5;
inline constexpr uint16_t kFlagSendWriteZeroes = 1 << 6;
inline constexpr uint16_t kFlagSendDf = 1 << 7;
inline constexpr uint16_t kFlagCanMultiConn = 1 << 8;
inline constexpr uint16_t kFlagSendResize = 1 << 9;
inline constexpr uint16_t kFlagSendCache = 1 << 10;
inline constexpr uint16_t kFlagSendFastZero = 1 << 11;

// Transmission: requests and replies.
inline constexpr uint32_t kRequestMagic = 0x25609513;
inline constexpr uint32_t kSimpleReplyMagic = 0x67446698;
inline constexpr uint32_t kStructuredReplyMagic = 0x668e33ef;
inline constexpr size_t kRequestHeaderSize = 28;  // magic, flags, type, handle, offset, length
inline constexpr size_t kSimpleReplyHeaderSize = 16;
inline constexpr size_t kStructuredReplyHeaderSize = 20;

// Commands.
inline constexpr uint16_t kCmdRead = 0;
inline constexpr uint16_t kCmdWrite = 1;
inline constexpr uint16_t kCmdDisc = 2;
inline constexpr uint16_t kCmdFlush = 3;
inline constexpr uint16_t kCmdTrim = 4;
inline constexpr uint16_t kCmdCache = 5;
inline constexpr uint16_t kCmdWriteZeroes = 6;
inline constexpr uint16_t kCmdBlockStatus = 7;

// Command flags.
inline constexpr uint16_t kCmdFlagFua = 1 << 0;
inline constexpr uint16_t kCmdFlagNoHole = 1 << 1;
inline constexpr uint16_t kCmdFlagDf = 1 << 2;
inline constexpr uint16_t kCmdFlagReqOne = 1 << 3;
inline constexpr uint16_t kCmdFlagFastZero = 1 << 4;

// Structured reply flags and chunk types.
inline constexpr uint16_t kReplyFlagDone = 1 << 0;
inline constexpr uint16_t kReplyTypeNone = 0;
inline constexpr uint16_t kReplyTypeOffsetData = 1;
inline constexpr uint16_t kReplyTypeOffsetHole = 2;
inline constexpr uint16_t kReplyTypeError = (1 << 15) + 1;
inline constexpr uint16_t kReplyTypeErrorOffset = (1 << 15) + 2;

// Error values (not the host's errno: the spec fixes them).
inline constexpr uint32_t kEperm = 1;
inline constexpr uint32_t kEio = 5;
inline constexpr uint32_t kEnomem = 12;
inline constexpr uint32_t kEinval = 22;
inline constexpr uint32_t kEnospc = 28;
inline constexpr uint32_t kEoverflow = 75;
inline constexpr uint32_t kEnotsup = 95;
inline constexpr uint32_t kEshutdown = 108;

// The spec's name of an error value ("EIO", "ENOSPC", ...; "OK" for 0), or nullptr for a value
// the spec does not name.
constexpr const char* ErrorValueName(uint32_t error) {
  switch (error) {
    case 0:
      return "OK";
    case kEperm:
      return "EPERM";
    case kEio:
      return "EIO";
    case kEnomem:
      return "ENOMEM";
    case kEinval:
      return "EINVAL";
    case kEnospc:
      return "ENOSPC";
    case kEoverflow:
      return "EOVERFLOW";
    case kEnotsup:
      return "ENOTSUP";
    case kEshutdown:
      return "ESHUTDOWN";
    default:
      return nullptr;
  }
}

// Limits. Strings (export names, messages) MUST be no longer than 4096 bytes.
inline constexpr size_t kMaxStringBytes = 4096;
// The spec's interoperable maximum payload: lengths below 2^25 must not be treated as
// a denial of service.
inline constexpr uint32_t kMaxPayloadBytes = 32u << 20;

// Big-endian encoding helpers over raw bytes.
inline void PutBe16(char* p, uint16_t v) {
  p[0] = static_cast<char>(v >> 8);
  p[1] = static_cast<char>(v);
}
inline void PutBe32(char* p, uint32_t v) {
  for (int i = 3; i >= 0; --i, v >>= 8) p[i] = static_cast<char>(v);
}
inline void PutBe64(char* p, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<char>(v);
}
inline uint16_t GetBe16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>((u[0] << 8) | u[1]);
}
inline uint32_t GetBe32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}
inline uint64_t GetBe64(const char* p) { return (uint64_t{GetBe32(p)} << 32) | GetBe32(p + 4); }
// The same as strings, for building a message by appending its fields.
inline std::string Be16(uint16_t v) {
  std::string s(2, '\0');
  PutBe16(s.data(), v);
  return s;
}
inline std::string Be32(uint32_t v) {
  std::string s(4, '\0');
  PutBe32(s.data(), v);
  return s;
}
inline std::string Be64(uint64_t v) {
  std::string s(8, '\0');
  PutBe64(s.data(), v);
  return s;
}

}  // namespace strata::nbd
