#pragma once

// TLS for NBD connections (OpenSSL): the server's credentials, reloaded when their
// files change, and the TLS session a connection switches to after NBD_OPT_STARTTLS.

#include <openssl/ssl.h>
#include <sys/stat.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "strata/common/result.h"
#include "strata/nbd/server.h"
#include "transport.h"

namespace strata::nbd {

// The server's SSL_CTX, built from NbdTlsOptions' files. Thread-safe.
class TlsCredentials {
 public:
  // Loads every file once; INVALID_ARGUMENT naming the file and OpenSSL's reason.
  static Result<std::unique_ptr<TlsCredentials>> Load(const NbdTlsOptions& options);

  // The context for a new session: rebuilt first when a file changed since the
  // last load. A rebuild that fails is logged and the previous context is kept.
  std::shared_ptr<SSL_CTX> Current();

  bool verifies_clients() const { return !options_.client_ca_file.empty(); }

 private:
  struct Stamp {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const Stamp&) const = default;
  };
  explicit TlsCredentials(NbdTlsOptions options) : options_(std::move(options)) {}
  std::vector<std::string> Files() const;
  std::vector<Stamp> StampFiles() const;
  Result<std::shared_ptr<SSL_CTX>> Build() const;

  const NbdTlsOptions options_;
  std::mutex mu_;
  std::vector<Stamp> stamps_;     // guarded by mu_; of the files ctx_ was built from
  std::shared_ptr<SSL_CTX> ctx_;  // guarded by mu_
};

// Runs the server side of the TLS handshake on `fd` (the NBD_REP_ACK to
// NBD_OPT_STARTTLS already sent) before `deadline`. The socket is switched to
// non-blocking; the transport waits with poll, so one thread can read while
// another writes. Sends time out after `send_timeout`. *identities: the verified
// client certificate's identities ("CN=...", "DNS:...", "URI:..."), if any.
Result<std::unique_ptr<Transport>> AcceptTls(int fd, std::shared_ptr<SSL_CTX> ctx,
                                             std::chrono::steady_clock::time_point deadline,
                                             std::chrono::milliseconds send_timeout,
                                             std::vector<std::string>* identities);

}  // namespace strata::nbd
