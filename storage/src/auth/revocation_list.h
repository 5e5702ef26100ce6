#pragma once

#include <openssl/x509.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "auth/file_signature.h"
#include "auth/peer_certificate.h"
#include "strata/common/status.h"

namespace strata::storage::auth {

// Certificate revocation lists from a PEM file (--tls-crl; one or more CRLs, as `openssl ca
// -gencrl` or cert-manager's trust tooling write them), each verified against the CA bundle
// (--tls-client-ca) before it is trusted. The file is checked on every lookup (one stat) and
// re-read when it changed, so a certificate revoked by rewriting the CRL is refused from the
// next call on, on new and existing connections alike, without a restart. A rewritten file
// that does not parse or verify is logged and ignored (the last good lists stay) and tried
// again at the next lookup. Thread-safe.
class RevocationList {
 public:
  // Loads the file now: INVALID_ARGUMENT naming --tls-crl when it cannot be read, parsed or
  // verified (a daemon refuses to start with a bad CRL rather than run without one).
  static Result<std::unique_ptr<RevocationList>> Open(std::string crl_file, std::string ca_file);

  // OK, or UNAUTHENTICATED naming the identity and serial when a current CRL of the
  // certificate's issuer lists it.
  Status Check(const PeerCertificate& cert);

 private:
  struct CrlFree {
    void operator()(X509_CRL* c) const { X509_CRL_free(c); }
  };
  using CrlPtr = std::unique_ptr<X509_CRL, CrlFree>;

  RevocationList(std::string crl_file, std::string ca_file)
      : crl_file_(std::move(crl_file)), ca_file_(std::move(ca_file)) {}
  // Reads and verifies the file; on success replaces crls_. REQUIRES: mu_ held.
  Status ReloadLocked(const FileSignature& sig);

  const std::string crl_file_;
  const std::string ca_file_;
  std::mutex mu_;
  FileSignature loaded_;      // guarded by mu_
  std::vector<CrlPtr> crls_;  // guarded by mu_
};

}  // namespace strata::storage::auth
