#include "strata/nbd/certificate_identities.h"

#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace strata::nbd {

std::vector<std::string> CertificateIdentities(X509* cert) {
  std::vector<std::string> out;
  if (cert == nullptr) return out;
  auto text = [](const ASN1_STRING* s) {
    return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                       static_cast<size_t>(ASN1_STRING_length(s)));
  };
  auto add = [&out](const std::string& prefix, const std::string& v) {
    if (!v.empty() && v.find('\0') == std::string::npos) out.push_back(prefix + v);
  };
  X509_NAME* subject = X509_get_subject_name(cert);
  for (int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) {
    ASN1_STRING* d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, d);
    if (n >= 0) {
      add("CN=", std::string(reinterpret_cast<char*>(utf8), static_cast<size_t>(n)));
      OPENSSL_free(utf8);
    }
  }
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
      if (g->type == GEN_DNS) add("DNS:", text(g->d.dNSName));
      if (g->type == GEN_URI) add("URI:", text(g->d.uniformResourceIdentifier));
    }
    GENERAL_NAMES_free(sans);
  }
  return out;
}

}  // namespace strata::nbd
