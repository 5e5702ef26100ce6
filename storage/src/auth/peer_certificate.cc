#include "auth/peer_certificate.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "strata/nbd/certificate_identities.h"

namespace strata::storage::auth {

Result<PeerCertificate> PeerCertificate::FromPem(std::string_view pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  if (!bio) return InternalError("peer certificate: out of memory");
  X509* raw = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
  if (raw == nullptr) return InvalidArgumentError("peer certificate: not a PEM certificate");
  PeerCertificate c;
  c.x509_.reset(raw, X509Free());

  if (X509_NAME* subject = X509_get_subject_name(raw)) {
    int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (i >= 0) {
      ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
      unsigned char* utf8 = nullptr;
      int n = ASN1_STRING_to_UTF8(&utf8, data);
      if (n >= 0) c.common_name_.assign(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
      OPENSSL_free(utf8);
    }
  }
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(raw, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
      if (gn->type != GEN_URI) continue;
      const ASN1_IA5STRING* uri = gn->d.uniformResourceIdentifier;
      c.uris_.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                           static_cast<size_t>(ASN1_STRING_length(uri)));
    }
    GENERAL_NAMES_free(sans);
  }
  c.identity_ = !c.uris_.empty() ? c.uris_.front() : c.common_name_;
  c.names_ = nbd::CertificateIdentities(c.x509_.get());
  if (c.identity_.empty()) {
    return InvalidArgumentError("peer certificate: names no identity (no URI SAN, no CN)");
  }

  std::unique_ptr<BIGNUM, decltype(&BN_free)> serial(
      ASN1_INTEGER_to_BN(X509_get0_serialNumber(raw), nullptr), BN_free);
  if (serial) {
    char* hex = BN_bn2hex(serial.get());
    if (hex != nullptr) c.serial_hex_ = hex;
    OPENSSL_free(hex);
  }
  return c;
}

}  // namespace strata::storage::auth
