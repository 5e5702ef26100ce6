#include "strata/tls/revocation_list.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>

namespace strata::tls {
namespace {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};

Result<std::string> ReadAll(const std::string& path, std::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgumentError(std::string(flag) + ": cannot read '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The serial number in upper-case hex (as `openssl x509 -serial` prints it).
std::string SerialHex(const X509* x) {
  std::string out;
  std::unique_ptr<BIGNUM, decltype(&BN_free)> serial(
      ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr), BN_free);
  if (serial) {
    char* hex = BN_bn2hex(serial.get());
    if (hex != nullptr) out = hex;
    OPENSSL_free(hex);
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<RevocationList>> RevocationList::Open(std::string crl_file,
                                                             std::string ca_file,
                                                             std::string ca_flag) {
  std::unique_ptr<RevocationList> list(
      new RevocationList(std::move(crl_file), std::move(ca_file), std::move(ca_flag)));
  std::lock_guard lock(list->mu_);
  STRATA_RETURN_IF_ERROR(list->ReloadLocked(FileSignature::Of(list->crl_file_)));
  return list;
}

Status RevocationList::ReloadLocked(const FileSignature& sig) {
  STRATA_ASSIGN_OR_RETURN(std::string crl_pem, ReadAll(crl_file_, "--tls-crl"));
  STRATA_ASSIGN_OR_RETURN(std::string ca_pem, ReadAll(ca_file_, ca_flag_));

  std::vector<std::unique_ptr<X509, X509Free>> cas;
  {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(
        BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size())), BIO_free);
    while (X509* ca = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) cas.emplace_back(ca);
  }
  if (cas.empty()) {
    return InvalidArgumentError(ca_flag_ + ": '" + ca_file_ + "' holds no PEM certificate");
  }
  std::vector<CrlPtr> crls;
  {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(
        BIO_new_mem_buf(crl_pem.data(), static_cast<int>(crl_pem.size())), BIO_free);
    while (X509_CRL* crl = PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr)) {
      crls.emplace_back(crl);
    }
  }
  if (crls.empty()) {
    return InvalidArgumentError("--tls-crl: '" + crl_file_ + "' holds no PEM X509 CRL");
  }
  for (size_t i = 0; i < crls.size(); ++i) {
    X509_CRL* crl = crls[i].get();
    bool verified = false;
    for (const auto& ca : cas) {
      if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca.get())) != 0) continue;
      EVP_PKEY* key = X509_get0_pubkey(ca.get());
      if (key != nullptr && X509_CRL_verify(crl, key) == 1) verified = true;
    }
    if (!verified) {
      return InvalidArgumentError("--tls-crl: CRL " + std::to_string(i) + " of '" + crl_file_ +
                                  "' is not signed by a CA of " + ca_flag_ + " '" + ca_file_ + "'");
    }
  }
  crls_ = std::move(crls);
  loaded_ = sig;
  return Status::Ok();
}

Status RevocationList::Check(const X509* cert, std::string_view who) {
  std::lock_guard lock(mu_);
  FileSignature now = FileSignature::Of(crl_file_);
  if (now != loaded_) {
    if (Status s = ReloadLocked(now); !s.ok()) {
      // Keep the last good lists: a CRL caught half-written must not open the door, and
      // neither may a deleted one. Retried on the next call.
      spdlog::warn("keeping the previous certificate revocation list: {}", s.message());
    } else {
      spdlog::info("certificate revocation list {} reloaded ({} list(s))", crl_file_, crls_.size());
    }
  }
  X509* x = const_cast<X509*>(cert);
  for (const CrlPtr& crl : crls_) {
    if (X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_issuer_name(x)) != 0) continue;
    X509_REVOKED* revoked = nullptr;
    if (X509_CRL_get0_by_cert(crl.get(), &revoked, x) == 1) {
      return Status(StatusCode::kUnauthenticated,
                    std::string(who) + " (serial " + SerialHex(x) + ") is revoked (--tls-crl)");
    }
  }
  return Status::Ok();
}

}  // namespace strata::tls
