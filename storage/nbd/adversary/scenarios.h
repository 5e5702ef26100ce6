#pragma once

// Adversarial NBD clients, one function per attack, for the adversarial tests and
// the bench in bench/storage. Each speaks the wire protocol byte by byte (through
// the raw-socket test client) and reports what the server did as one JSON line on
// stdout; a non-OK Status means the server broke the protocol (a wrong errno, a
// reply where none is allowed, no reply where one is owed).

#include <cstdint>
#include <string>

#include "strata/common/net_address.h"
#include "strata/common/result.h"

namespace strata::nbd::adversary {

struct Target {
  HostPort portal;
  std::string export_name;
  std::string source;  // local IP to connect from; empty: any
};

// Out-of-range offsets, lengths past the export, unknown commands and flags, a
// FLUSH with a length, a READ over the maximum block size: each gets the error the
// spec names (EINVAL, ENOSPC for writes past the end) and the connection goes on;
// then a WRITE announcing 2 GiB gets EINVAL and the connection is closed.
Status BadRequests(const Target& t);

// A request sent after NBD_CMD_DISC gets no reply; the server closes the socket.
Status RequestsAfterDisconnect(const Target& t);

// `count` clients that each announce a 1 MiB WRITE, send half of it and vanish.
Status DisconnectMidWrite(const Target& t, int count);

// Opens `count` connections (every other one through the handshake, the rest raw
// TCP that never sends a byte), prints a "ready" line, holds them for
// hold_seconds, then reports how many the server accepted, refused and closed.
Status IdleConnections(const Target& t, int count, int hold_seconds);

// `count` clients that pipeline `depth` maximum-size READs each and never read the
// replies; held for hold_seconds (after a "ready" line), then reported as above.
Status SlowReaders(const Target& t, int count, int depth, int hold_seconds);

// A well-behaved client: `ops` 4 KiB READs one after another; reports the latency
// percentiles (microseconds). Fails when any read fails.
Status Probe(const Target& t, int ops);

// Raises RLIMIT_NOFILE's soft limit to the hard limit (10,000 connections need it).
Status RaiseFileLimit();

}  // namespace strata::nbd::adversary
