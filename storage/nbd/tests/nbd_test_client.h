#pragma once

// A raw-socket NBD client for the server's unit tests: every byte on the wire is
// built here from the spec's constants, so the tests check the server against the
// protocol rather than against a client library. Blocking I/O with a 10 s timeout,
// so a misbehaving server fails a test instead of hanging it.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "strata/common/net_address.h"
#include "strata/common/result.h"
#include "strata/nbd/protocol.h"

namespace strata::nbd::test {

struct OptionReply {
  uint32_t option = 0;
  uint32_t type = 0;
  std::string data;
};

// The replies to one NBD_OPT_INFO / NBD_OPT_GO.
struct InfoResult {
  uint32_t final_type = 0;  // kRepAck or an error
  std::string error_message;
  bool have_export = false;
  uint64_t size = 0;
  uint16_t flags = 0;
  bool have_block_size = false;
  uint32_t min_block = 0, preferred_block = 0, max_block = 0;
  std::string name, description;
};

struct Reply {
  uint64_t handle = 0;
  uint32_t error = 0;
  std::string data;     // read payload (simple, or reassembled structured chunks)
  std::string message;  // structured error message
  bool structured = false;
};

class TestClient {
 public:
  // source: the local IP to connect from (empty: the kernel picks one), so a test
  // can play several clients on loopback (127.0.0.2, ...).
  static Result<std::unique_ptr<TestClient>> Connect(const HostPort& portal,
                                                     const std::string& source = {});
  ~TestClient();

  int fd() const { return fd_; }
  void Close();
  // Half-closes nothing; just shuts the socket for writing (the server sees EOF).
  void ShutdownWrite();

  // --- raw bytes
  Status SendRaw(std::string_view bytes);
  Result<std::string> RecvExactly(size_t n);
  // True when the server closes the connection (EOF or reset) within `timeout`,
  // discarding anything it still sends first.
  bool WaitClosed(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // --- handshake
  // Reads the 18-byte greeting and checks both magics; returns the handshake flags.
  Result<uint16_t> ReadGreeting();
  Status SendClientFlags(uint32_t flags);
  // Greeting + client flags (fixed newstyle, no zeroes by default).
  Status Greet(uint32_t client_flags = kClientFlagFixedNewstyle | kClientFlagNoZeroes);
  Status SendOption(uint32_t option, std::string_view data);
  Result<OptionReply> ReadOptionReply();
  // Sends NBD_OPT_INFO or NBD_OPT_GO and collects replies up to the final one.
  Result<InfoResult> InfoOrGo(uint32_t option, std::string_view name,
                              const std::vector<uint16_t>& requests = {});
  // Greet + (optionally NBD_OPT_STRUCTURED_REPLY) + NBD_OPT_GO, requiring success.
  Status Handshake(std::string_view export_name, bool structured_replies = false);
  static std::string GoData(std::string_view name, const std::vector<uint16_t>& requests);

  // --- transmission
  // Sends a request; the client remembers its type and length to parse the reply.
  Status SendRequest(uint16_t type, uint16_t flags, uint64_t handle, uint64_t offset,
                     uint32_t length, std::string_view payload = {});
  // Requests without payloads (reads), all in one send: they reach the server's socket
  // together, so it sees them pipelined however fast it answers.
  struct RequestHeader {
    uint16_t type;
    uint64_t handle;
    uint64_t offset;
    uint32_t length;
  };
  Status SendRequestsAtOnce(const std::vector<RequestHeader>& requests);
  // Reads the next reply (simple or structured, by its magic).
  Result<Reply> ReadReply();
  // Send + ReadReply with a fresh handle.
  Result<Reply> Call(uint16_t type, uint16_t flags, uint64_t offset, uint32_t length,
                     std::string_view payload = {});
  Result<Reply> Read(uint64_t offset, uint32_t length, uint16_t flags = 0) {
    return Call(kCmdRead, flags, offset, length);
  }
  Result<Reply> Write(uint64_t offset, std::string_view data, uint16_t flags = 0) {
    return Call(kCmdWrite, flags, offset, static_cast<uint32_t>(data.size()), data);
  }

 private:
  explicit TestClient(int fd) : fd_(fd) {}
  struct Pending {
    uint16_t type;
    uint32_t length;
    uint64_t offset;
  };
  int fd_;
  uint64_t next_handle_ = 1;
  std::map<uint64_t, Pending> pending_;
};

// Repeatable test data: `n` bytes derived from `seed`.
std::string Pattern(size_t n, uint32_t seed);

}  // namespace strata::nbd::test
