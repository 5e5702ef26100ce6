#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>

#include "auth/access_policy.h"
#include "strata/common/result.h"
#include "strata/tls/revocation_list.h"

namespace strata::storage::auth {

// Who is calling the management API, from the client certificate the TLS handshake verified
// (the server requires one and checks it chains to --tls-client-ca), checked against the
// revocation list and the access policy at every call. Thread-safe.
class Authorizer {
 public:
  // policy: the --authz file, or null (every verified identity is an admin).
  // crl: the --tls-crl lists, or null (no revocation checks).
  Authorizer(std::unique_ptr<AccessPolicyFile> policy, std::unique_ptr<tls::RevocationList> crl)
      : policy_(std::move(policy)), crl_(std::move(crl)) {}

  // The caller's grant. UNAUTHENTICATED when the call carries no verified client certificate
  // or its certificate is revoked; PERMISSION_DENIED naming the identity when the policy
  // does not list it.
  Result<Grant> Authenticate(const grpc::ServerContext& ctx);

 private:
  const std::unique_ptr<AccessPolicyFile> policy_;
  const std::unique_ptr<tls::RevocationList> crl_;
};

}  // namespace strata::storage::auth
