#pragma once

#include <openssl/types.h>

#include <string>
#include <vector>

namespace strata::nbd {

// The names a verified X.509 certificate answers to, in the one spelling Strata's access
// lists use on both the data path (NBD export access lists) and the management API
// (--authz entries): "CN=<subject common name>", "DNS:<dNSName SAN>", "URI:<URI SAN>",
// in that order (subject CNs, then SANs as listed). Names holding a NUL byte are skipped
// (they could never be compared honestly). Empty for a null certificate.
std::vector<std::string> CertificateIdentities(X509* cert);

}  // namespace strata::nbd
