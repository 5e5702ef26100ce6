#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "strata/common/net_address.h"
#include "strata/common/result.h"
#include "strata/storage/volume.h"

namespace strata::nbd {

// TLS per the NBD protocol's NBD_OPT_STARTTLS (its "TLS support" section):
//   kOff      NOTLS: NBD_OPT_STARTTLS gets NBD_REP_ERR_POLICY.
//   kAllow    SELECTIVETLS: a client may upgrade, or stay in plaintext. An export
//             whose access list names certificate identities is TLS-only in effect
//             (a plaintext client has no identity).
//   kRequire  FORCEDTLS: every option but NBD_OPT_STARTTLS and NBD_OPT_ABORT gets
//             NBD_REP_ERR_TLS_REQD until TLS is up; NBD_OPT_EXPORT_NAME before it
//             ends the session (that option cannot be answered with an error).
enum class NbdTlsMode { kOff, kAllow, kRequire };

// "off", "allow", "require"; INVALID_ARGUMENT naming `field` otherwise.
Result<NbdTlsMode> ParseNbdTlsMode(std::string_view text, std::string_view field);

struct NbdTlsOptions {
  NbdTlsMode mode = NbdTlsMode::kOff;
  // PEM files. cert_file may hold the chain after the leaf. Required unless kOff.
  std::string cert_file;
  std::string key_file;
  // Set: clients must present a certificate that chains to one of these CAs
  // (TLS 1.2+, no session resumption, so every connection is verified afresh); its
  // subject CN and SAN DNS names/URIs are the identities export access lists name.
  // Empty: server-authenticated TLS only (encryption, no client identities).
  std::string client_ca_file;
  // Set (needs client_ca_file): certificate revocation lists (PEM) checked for the
  // client's certificate; a revoked certificate fails the TLS handshake.
  std::string crl_file;
  // Every file is re-read when it changes (inode, size or mtime): new connections
  // use the new credentials, established ones keep theirs. A change that does not
  // load (e.g. a key not yet matching its new certificate) keeps the old
  // credentials and is retried on the next connection.
};

struct NbdServerOptions {
  // Most threads serving one connection, each running one request at a time:
  // pipelined requests of a connection run in parallel up to this many. Threads
  // are added on demand; an idle connection has one. This is the connection's queue
  // depth: with every thread busy nobody reads the socket, so a client pipelining
  // more is held back by TCP (back-pressure), never buffered. Memory bound per
  // connection: threads_per_connection x max_payload_bytes.
  int threads_per_connection = 16;
  // A connection whose client sends one small request at a time (waiting for
  // each reply) is served on the CPU its requests arrive on (SO_INCOMING_CPU), so
  // neither the request's wake-up nor the reply's crosses CPUs; its threads run
  // anywhere again at its first pipelined or large request (nbd/src/cpu_follower.h).
  bool follow_client_cpu = true;
  // Keep following a connection only when its requests came faster on trial
  // (FollowPolicy); false is for tests of the mechanism, whose timing is not theirs.
  bool follow_client_cpu_trial = true;
  // Largest READ/WRITE payload accepted (advertised as the maximum block size).
  // A WRITE announcing more gets EINVAL and the connection is dropped, because its
  // payload cannot be skipped without reading it; a READ asking for more gets EINVAL.
  uint32_t max_payload_bytes = 32u << 20;
  // Largest option payload during the handshake; more gets NBD_REP_ERR_TOO_BIG and
  // the connection is dropped (the spec lets a server drop a client it deems abusive).
  uint32_t max_option_bytes = 64u << 10;
  // Connections beyond this are accepted and closed at once.
  int max_connections = 1024;
  // Connections from one client address (0: no limit); beyond it a new connection is
  // accepted and closed at once, before the greeting (as qemu-nbd --shared does), so
  // one client cannot take every slot of max_connections. A node's kernel client
  // opens a few connections per attached LUN and path: 256 leaves room for ~60 LUNs
  // with 4 connections each.
  int max_connections_per_client = 256;
  // Connections that picked one export (0: no limit); NBD_OPT_GO beyond it gets
  // NBD_REP_ERR_POLICY with a message, NBD_OPT_EXPORT_NAME a disconnect.
  int max_connections_per_export = 128;
  // A client must finish option haggling within this time (the whole handshake, not
  // each read: a client trickling bytes is cut off too).
  std::chrono::milliseconds handshake_timeout{30'000};
  // A connection in transmission with no request in flight and none received for
  // this long is closed (0: never, the default). The kernel nbd client keeps its
  // connections for the device's lifetime and sends nothing while the device is
  // idle (no NBD-level keepalive), and a closed socket fails its next I/O: a finite
  // default would break every idle attached volume. TCP keepalive (on every
  // connection) reaps peers that are gone; this is for deployments whose clients
  // reconnect (qemu with reconnect-delay, nbd-client -persist).
  std::chrono::milliseconds idle_timeout{0};
  // A reply that cannot be sent within this time (a client that stopped reading,
  // or takes a byte now and then) drops the connection, so a stuck client cannot
  // hold threads for ever. The whole reply counts, not each send call.
  std::chrono::milliseconds send_timeout{30'000};
  // Stop() lets in-flight requests finish and their replies go out for this long
  // before it drops the remaining connections hard.
  std::chrono::milliseconds stop_grace{5'000};
  // Payload bytes held by requests in flight, server-wide (0: no limit). A READ or
  // WRITE that would go over gets ENOMEM (a WRITE's payload is read and dropped),
  // so memory stays bounded whatever the number of connections x queue depth x
  // request size; clients that never read their replies hold their share only until
  // send_timeout drops them.
  uint64_t max_inflight_bytes = 1ull << 30;
  // Bytes of idle I/O buffers kept for reuse across requests (server-wide).
  size_t buffer_cache_bytes = 64u << 20;
  NbdTlsOptions tls;
};

// Connections the server refused or closed because of a limit, since Start().
struct NbdServerCounters {
  uint64_t refused_server_full = 0;   // max_connections
  uint64_t refused_client_limit = 0;  // max_connections_per_client
  uint64_t refused_export_limit = 0;  // max_connections_per_export
  uint64_t handshake_timeouts = 0;    // handshake_timeout
  uint64_t idle_timeouts = 0;         // idle_timeout
  uint64_t send_timeouts = 0;         // send_timeout (a client not taking its replies)
};

// An NBD server (fixed newstyle handshake only, simple and structured replies)
// serving the exports of an ExportCatalog on one or more portals (listening TCP
// sockets, IPv4 or IPv6).
//
// Threads: one acceptor for all portals; per connection, one thread for the
// handshake, then up to options.threads_per_connection threads that take turns
// reading requests and each run the request it read (Volume call, then reply under
// a per-connection send lock). Every request is recorded into its Volume's
// io_stats().
//
// Thread-safe. The catalog must outlive the server.
class NbdServer {
 public:
  using Options = NbdServerOptions;

  // Binds every portal (port 0: any free port) and starts serving. Fails, with
  // nothing left listening, when a portal cannot be bound or the TLS files (when
  // TLS is on) do not load.
  // REQUIRES: catalog != nullptr, !portals.empty().
  static Result<std::unique_ptr<NbdServer>> Start(storage::ExportCatalog* catalog,
                                                  std::vector<HostPort> portals,
                                                  Options options = {});

  // Stops (see Stop()).
  ~NbdServer();
  NbdServer(const NbdServer&) = delete;
  NbdServer& operator=(const NbdServer&) = delete;

  // The portals as bound, in the order given, with the actual port for port 0.
  std::vector<HostPort> bound_portals() const;

  // Connections currently open (handshake or transmission).
  int connection_count() const;

  NbdServerCounters counters() const;

  // Closes the listeners, stops reading from every connection, lets in-flight
  // requests finish for up to options.stop_grace, drops the connections and joins
  // every thread. Idempotent; blocks until done. Volume calls already running are
  // waited for (they cannot be cancelled).
  void Stop();

  class Impl;

 private:
  explicit NbdServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::nbd
