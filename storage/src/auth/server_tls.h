#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "auth/authorizer.h"
#include "strata/common/result.h"

namespace strata::storage::auth {

// strata-stored's management API security, from its flags: mutual TLS with required,
// verified client certificates (the normal case), or plaintext when --insecure says so.
struct ServerTls {
  bool insecure = false;
  std::string cert_file;       // --tls-cert (tls.crt)
  std::string key_file;        // --tls-key (tls.key)
  std::string client_ca_file;  // --tls-client-ca (ca.crt): client certificates must chain here
  std::string crl_file;        // --tls-crl: optional revocation lists
  std::string authz_file;      // --authz: optional access policy (auth/access_policy.h)
};

// The ServerTls the flags describe, or INVALID_ARGUMENT naming the flag: TLS (cert, key and
// client CA together) or --insecure must be chosen, not both, not neither; --tls-crl and
// --authz need TLS; every file must be readable.
Result<ServerTls> ServerTlsFromFlags(const ServerTls& flags);

// gRPC server credentials for `tls`: TLS 1.2+ requiring a client certificate that chains to
// the client CA; the certificate, key and CA files are re-read when they change
// (device::kCertRefreshSeconds), so rotated certificates apply to new connections without a
// restart. Plaintext for tls.insecure.
std::shared_ptr<grpc::ServerCredentials> NewServerCredentials(const ServerTls& tls);

// The Authorizer for `tls` (its CRL and policy loaded now: INVALID_ARGUMENT naming the flag
// when one is bad). REQUIRES: !tls.insecure.
Result<std::unique_ptr<Authorizer>> NewAuthorizer(const ServerTls& tls);

}  // namespace strata::storage::auth
