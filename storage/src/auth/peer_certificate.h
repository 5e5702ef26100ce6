#pragma once

#include <openssl/x509.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "strata/common/result.h"

namespace strata::storage::auth {

// A client's X.509 certificate as the management API sees it after the TLS handshake verified
// it (gRPC's auth context property x509_pem_cert). Immutable; thread-compatible.
class PeerCertificate {
 public:
  // Parses one PEM certificate; INVALID_ARGUMENT when it is not one.
  static Result<PeerCertificate> FromPem(std::string_view pem);

  // Who the caller is, for access policies and error messages: the first URI
  // subjectAltName when the certificate has one (a SPIFFE ID such as
  // spiffe://cluster/ns/strata/sa/strata-operator, as cert-manager's csi-driver-spiffe or
  // a Certificate's `uris` write), else the subject's common name. One name per
  // certificate, so a policy entry can never match two ways.
  const std::string& identity() const { return identity_; }
  const std::string& common_name() const { return common_name_; }
  const std::vector<std::string>& uris() const { return uris_; }
  // Every name, spelled as access lists write them: "CN=...", "DNS:...", "URI:...".
  const std::vector<std::string>& names() const { return names_; }
  // The serial number in upper-case hex (as `openssl x509 -serial` prints it).
  const std::string& serial_hex() const { return serial_hex_; }
  const X509* x509() const { return x509_.get(); }

 private:
  struct X509Free {
    void operator()(X509* x) const { X509_free(x); }
  };
  std::shared_ptr<X509> x509_;
  std::string identity_;
  std::string common_name_;
  std::vector<std::string> uris_;
  std::vector<std::string> names_;
  std::string serial_hex_;
};

}  // namespace strata::storage::auth
