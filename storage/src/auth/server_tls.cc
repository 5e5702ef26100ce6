#include "auth/server_tls.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <unistd.h>

#include "strata/device/channel.h"

namespace strata::storage::auth {
namespace {

Status CheckReadable(const std::string& path, std::string_view flag) {
  if (access(path.c_str(), R_OK) != 0) {
    return InvalidArgumentError(std::string(flag) + ": cannot read '" + path + "'");
  }
  return Status::Ok();
}

}  // namespace

Result<ServerTls> ServerTlsFromFlags(const ServerTls& f) {
  const bool any_tls = !f.cert_file.empty() || !f.key_file.empty() || !f.client_ca_file.empty() ||
                       !f.crl_file.empty() || !f.authz_file.empty();
  if (f.insecure) {
    if (any_tls) {
      return InvalidArgumentError(
          "--insecure: cannot be combined with --tls-cert, --tls-key, --tls-client-ca, "
          "--tls-crl or --authz");
    }
    return f;
  }
  if (!any_tls) {
    return InvalidArgumentError(
        "--tls-cert, --tls-key and --tls-client-ca are required: the management API serves "
        "mutual TLS; plaintext only with an explicit --insecure");
  }
  if (f.cert_file.empty()) return InvalidArgumentError("--tls-cert: is required for TLS");
  if (f.key_file.empty()) return InvalidArgumentError("--tls-key: is required for TLS");
  if (f.client_ca_file.empty()) {
    return InvalidArgumentError(
        "--tls-client-ca: is required for TLS (client certificates are verified against it)");
  }
  STRATA_RETURN_IF_ERROR(CheckReadable(f.cert_file, "--tls-cert"));
  STRATA_RETURN_IF_ERROR(CheckReadable(f.key_file, "--tls-key"));
  STRATA_RETURN_IF_ERROR(CheckReadable(f.client_ca_file, "--tls-client-ca"));
  if (!f.crl_file.empty()) STRATA_RETURN_IF_ERROR(CheckReadable(f.crl_file, "--tls-crl"));
  if (!f.authz_file.empty()) STRATA_RETURN_IF_ERROR(CheckReadable(f.authz_file, "--authz"));
  return f;
}

std::shared_ptr<grpc::ServerCredentials> NewServerCredentials(const ServerTls& tls) {
  if (tls.insecure) return grpc::InsecureServerCredentials();
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      tls.key_file, tls.cert_file, tls.client_ca_file, device::kCertRefreshSeconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  return grpc::experimental::TlsServerCredentials(options);
}

Result<std::unique_ptr<Authorizer>> NewAuthorizer(const ServerTls& tls) {
  std::unique_ptr<AccessPolicyFile> policy;
  if (!tls.authz_file.empty()) {
    STRATA_ASSIGN_OR_RETURN(policy, AccessPolicyFile::Open(tls.authz_file));
  }
  std::unique_ptr<tls::RevocationList> crl;
  if (!tls.crl_file.empty()) {
    STRATA_ASSIGN_OR_RETURN(crl, tls::RevocationList::Open(tls.crl_file, tls.client_ca_file));
  }
  return std::make_unique<Authorizer>(std::move(policy), std::move(crl));
}

}  // namespace strata::storage::auth
