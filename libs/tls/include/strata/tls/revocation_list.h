#pragma once

#include <openssl/x509.h>

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "strata/common/result.h"
#include "strata/common/status.h"
#include "strata/tls/file_signature.h"

namespace strata::tls {

// Certificate revocation lists from a PEM file (--tls-crl; one or more CRLs, as `openssl ca
// -gencrl` or cert-manager's trust tooling write them), each verified against a CA bundle before
// it is trusted. The file is checked on every lookup (one stat) and re-read when it changed, so a
// certificate revoked by rewriting the CRL is refused from the next lookup on, without a restart.
// A rewritten file that does not parse or verify is logged and ignored (the last good lists
// stay) and tried again at the next lookup. Shared by strata-stored's management API (client
// certificates, per call) and every client of it (the device's server certificate, per
// connection: libs/device). Thread-safe.
class RevocationList {
 public:
  // Loads the file now: INVALID_ARGUMENT naming --tls-crl (or `ca_flag`, the flag that named
  // `ca_file`) when it cannot be read, parsed or verified (a binary refuses to start with a bad
  // CRL rather than run without one).
  static Result<std::unique_ptr<RevocationList>> Open(std::string crl_file, std::string ca_file,
                                                      std::string ca_flag = "--tls-client-ca");

  // OK, or UNAUTHENTICATED naming `who` (e.g. "client certificate of 'spiffe://...'") and the
  // serial when a current CRL of the certificate's issuer lists it.
  Status Check(const X509* cert, std::string_view who);

 private:
  struct CrlFree {
    void operator()(X509_CRL* c) const { X509_CRL_free(c); }
  };
  using CrlPtr = std::unique_ptr<X509_CRL, CrlFree>;

  RevocationList(std::string crl_file, std::string ca_file, std::string ca_flag)
      : crl_file_(std::move(crl_file)),
        ca_file_(std::move(ca_file)),
        ca_flag_(std::move(ca_flag)) {}
  // Reads and verifies the file; on success replaces crls_. REQUIRES: mu_ held.
  Status ReloadLocked(const FileSignature& sig);

  const std::string crl_file_;
  const std::string ca_file_;
  const std::string ca_flag_;
  std::mutex mu_;
  FileSignature loaded_;      // guarded by mu_
  std::vector<CrlPtr> crls_;  // guarded by mu_
};

}  // namespace strata::tls
