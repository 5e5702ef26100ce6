#include "auth/authorizer.h"

#include <grpc/grpc_security_constants.h>

#include "auth/peer_certificate.h"

namespace strata::storage::auth {

Result<Grant> Authorizer::Authenticate(const grpc::ServerContext& ctx) {
  std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  if (!auth || !auth->IsPeerAuthenticated()) {
    return Status(StatusCode::kUnauthenticated,
                  "the management API requires a client certificate signed by --tls-client-ca");
  }
  std::vector<grpc::string_ref> pem = auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (pem.empty()) {
    return Status(StatusCode::kUnauthenticated, "the TLS session carries no client certificate");
  }
  auto cert = PeerCertificate::FromPem(std::string_view(pem.front().data(), pem.front().size()));
  if (!cert.ok()) return Status(StatusCode::kUnauthenticated, cert.status().message());
  if (crl_) {
    STRATA_RETURN_IF_ERROR(
        crl_->Check(cert->x509(), "client certificate of '" + cert->identity() + "'"));
  }
  if (!policy_) {
    Grant g;
    g.identity = cert->identity();
    g.role = Role::kAdmin;
    return g;
  }
  STRATA_ASSIGN_OR_RETURN(std::optional<Grant> g, policy_->Lookup(cert->identity(), cert->names()));
  if (!g) {
    return Status(StatusCode::kPermissionDenied,
                  "identity '" + cert->identity() + "' is not in the device's access policy");
  }
  return *g;
}

}  // namespace strata::storage::auth
