#pragma once

// The TLS half of the node plugin's kernel NBD attach (#14): after NBD_OPT_STARTTLS, a
// TLS 1.2 AES-GCM client session with SSL_OP_ENABLE_KTLS, so that OpenSSL moves the keys
// into the kernel (kTLS) in both directions. The kernel nbd driver then reads and writes
// the socket itself: every byte it sends is encrypted by the kernel, every record it
// receives decrypted. TLS 1.2 because Debian's OpenSSL 3.0 offloads TLS 1.3 receive to
// the kernel on no kernel (tests/vm/ktls_test.sh); AES-GCM because kTLS takes it.
//
// What the kernel could not pass through must never arrive after the handoff: the client
// offers no session tickets and refuses renegotiation; strata-stored (storage/nbd/src/
// tls.cc) sends no tickets, refuses renegotiation, and TLS 1.2 has no key update.
// A close_notify from the device (it shuts down) is a non-data record: the kernel's
// receive fails with EIO and the nbd driver treats the socket as dead, as it should.

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "strata/common/result.h"
#include "strata/common/status.h"
#include "strata/csi/node_host.h"

namespace strata::csi {

// A byte stream of the NBD handshake: the plain socket, or TLS over it.
class NbdStream {
 public:
  virtual ~NbdStream() = default;
  virtual Status SendAll(const void* buf, size_t n) = 0;
  virtual Status RecvAll(void* buf, size_t n) = 0;
};

// INVALID_ARGUMENT naming the flag (--nbd-tls-cert/-key/-ca/-crl) when the files are
// missing, unreadable, or the key does not match the certificate.
Status CheckNbdClientTls(const NbdClientTls& tls);

class NbdTlsClient final : public NbdStream {
 public:
  // The TLS handshake on `fd` (blocking, with its send/receive timeouts), right after
  // the device's NBD_REP_ACK to NBD_OPT_STARTTLS. `host` (the portal's host: an IP or a
  // DNS name) must match the device's certificate. FAILED_PRECONDITION when the device's
  // certificate does not verify or the device refuses ours (a configuration problem a
  // redial does not fix); UNAVAILABLE when the connection breaks.
  static Result<std::unique_ptr<NbdTlsClient>> Connect(int fd, const std::string& host,
                                                       const NbdClientTls& tls);
  // Frees the session without a close_notify: the socket lives on in the kernel.
  ~NbdTlsClient() override;

  Status SendAll(const void* buf, size_t n) override;
  Status RecvAll(void* buf, size_t n) override;

  // OK when the socket can go to the kernel nbd driver: kTLS on for sending and for
  // receiving, and nothing received but unread in OpenSSL's buffers. Else
  // FAILED_PRECONDITION naming what is missing (no plaintext fallback).
  Status ReadyForKernel() const;

  // "TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256".
  std::string Describe() const;

 private:
  explicit NbdTlsClient(SSL* ssl) : ssl_(ssl) {}
  SSL* const ssl_;
};

}  // namespace strata::csi
