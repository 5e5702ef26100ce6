#include "nbd_tls_client.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstring>

#include "strata/common/openssl_errors.h"

namespace strata::csi {
namespace {

// TLS 1.2 suites whose keys the kernel's TLS takes (AES-GCM), forward secret.
constexpr char kKtlsCiphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384";

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

Result<CtxPtr> BuildContext(const NbdClientTls& tls) {
  if (tls.cert_file.empty()) return InvalidArgumentError("--nbd-tls-cert: required with TLS");
  if (tls.key_file.empty()) return InvalidArgumentError("--nbd-tls-key: required with TLS");
  if (tls.ca_file.empty()) return InvalidArgumentError("--nbd-tls-ca: required with TLS");
  ERR_clear_error();
  CtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return InternalError("SSL_CTX_new: " + OpenSslErrors());
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(c, TLS1_2_VERSION);
  if (SSL_CTX_set_cipher_list(c, kKtlsCiphers) != 1) {
    return InternalError("SSL_CTX_set_cipher_list: " + OpenSslErrors());
  }
  // No ticket, no renegotiation, no compression: after the handshake only application
  // data records, which the kernel passes through.
  SSL_CTX_set_options(
      c, SSL_OP_ENABLE_KTLS | SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  if (SSL_CTX_use_certificate_chain_file(c, tls.cert_file.c_str()) != 1) {
    return InvalidArgumentError("--nbd-tls-cert '" + tls.cert_file + "': " + OpenSslErrors());
  }
  if (SSL_CTX_use_PrivateKey_file(c, tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return InvalidArgumentError("--nbd-tls-key '" + tls.key_file + "': " + OpenSslErrors());
  }
  if (SSL_CTX_check_private_key(c) != 1) {
    return InvalidArgumentError("--nbd-tls-key '" + tls.key_file +
                                "' does not match --nbd-tls-cert: " + OpenSslErrors());
  }
  if (SSL_CTX_load_verify_locations(c, tls.ca_file.c_str(), nullptr) != 1) {
    return InvalidArgumentError("--nbd-tls-ca '" + tls.ca_file + "': " + OpenSslErrors());
  }
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
  if (!tls.crl_file.empty()) {
    X509_STORE* store = SSL_CTX_get_cert_store(c);
    X509_LOOKUP* lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
    if (lookup == nullptr ||
        X509_load_crl_file(lookup, tls.crl_file.c_str(), X509_FILETYPE_PEM) < 1) {
      return InvalidArgumentError("--nbd-tls-crl '" + tls.crl_file + "': " + OpenSslErrors());
    }
    // The device certificate's issuer must have a CRL in the file (fails closed).
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
  }
  return ctx;
}

bool IsIpLiteral(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// An SSL_read/SSL_write failure as a Status.
Status IoError(SSL* ssl, int rc, const char* what) {
  const int err = SSL_get_error(ssl, rc);
  const int saved_errno = errno;
  if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && saved_errno == 0)) {
    return UnavailableError(std::string("nbd handshake: ") + what +
                            ": the device closed the connection");
  }
  if (err == SSL_ERROR_SYSCALL)
    return ErrnoError(std::string("nbd handshake: ") + what, saved_errno);
  return UnavailableError(std::string("nbd handshake: ") + what + ": " + OpenSslErrors());
}

}  // namespace

Status CheckNbdClientTls(const NbdClientTls& tls) { return BuildContext(tls).status(); }

Result<std::unique_ptr<NbdTlsClient>> NbdTlsClient::Connect(int fd, const std::string& host,
                                                            const NbdClientTls& tls) {
  // Built at every dial: a rotated certificate, CA or CRL takes effect at the next path.
  auto ctx = BuildContext(tls);
  if (!ctx.ok()) return ctx.status();
  SSL* ssl = SSL_new(ctx->get());  // holds its own reference to the context
  if (ssl == nullptr) return InternalError("SSL_new: " + OpenSslErrors());
  std::unique_ptr<NbdTlsClient> client(new NbdTlsClient(ssl));
  if (SSL_set_fd(ssl, fd) != 1) return InternalError("SSL_set_fd: " + OpenSslErrors());
  if (IsIpLiteral(host)) {
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) != 1) {
      return InternalError("TLS: cannot check IP " + host + ": " + OpenSslErrors());
    }
  } else if (SSL_set1_host(ssl, host.c_str()) != 1 ||
             // SSL_set_tlsext_host_name (SNI), without the macro's C cast.
             SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                      const_cast<char*>(host.c_str())) != 1) {
    return InternalError("TLS: cannot check host " + host + ": " + OpenSslErrors());
  }
  ERR_clear_error();
  const int rc = SSL_connect(ssl);
  if (rc != 1) {
    const int err = SSL_get_error(ssl, rc);
    const int saved_errno = errno;
    const long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
      return FailedPreconditionError(
          "TLS handshake: the device's certificate (checked against "
          "--nbd-tls-ca, host " +
          host + "): " + X509_verify_cert_error_string(verify));
    }
    if (err == SSL_ERROR_SSL) {
      return FailedPreconditionError("TLS handshake refused: " + OpenSslErrors() +
                                     " (is this node's --nbd-tls-cert issued by the CA the "
                                     "device trusts, and not revoked?)");
    }
    // The device refusing this node's certificate can look like this too (TLS 1.2: it
    // checks it after the client's last flight and may reset before its alert is read).
    const std::string hint =
        " (did the device refuse this node's --nbd-tls-cert? its log says why)";
    if (err == SSL_ERROR_SYSCALL && saved_errno != 0) {
      return UnavailableError(std::string("TLS handshake: ") + std::strerror(saved_errno) + hint);
    }
    return UnavailableError("TLS handshake: the device closed the connection" + hint);
  }
  return client;
}

NbdTlsClient::~NbdTlsClient() { SSL_free(ssl_); }

Status NbdTlsClient::SendAll(const void* buf, size_t n) {
  const char* p = static_cast<const char*>(buf);
  while (n > 0) {
    ERR_clear_error();
    size_t written = 0;
    const int rc = SSL_write_ex(ssl_, p, n, &written);
    if (rc != 1) return IoError(ssl_, rc, "TLS send");
    p += written;
    n -= written;
  }
  return Status::Ok();
}

Status NbdTlsClient::RecvAll(void* buf, size_t n) {
  char* p = static_cast<char*>(buf);
  while (n > 0) {
    ERR_clear_error();
    size_t got = 0;
    const int rc = SSL_read_ex(ssl_, p, n, &got);
    if (rc != 1) return IoError(ssl_, rc, "TLS receive");
    p += got;
    n -= got;
  }
  return Status::Ok();
}

Status NbdTlsClient::ReadyForKernel() const {
  const bool tx = BIO_get_ktls_send(SSL_get_wbio(ssl_)) != 0;
  const bool rx = BIO_get_ktls_recv(SSL_get_rbio(ssl_)) != 0;
  if (!tx || !rx) {
    std::string off = !tx && !rx ? "sending and receiving" : !tx ? "sending" : "receiving";
    return FailedPreconditionError(
        "kernel TLS is off for " + off + " on " + Describe() +
        ": the kernel nbd driver cannot use this socket (is the 'tls' kernel module "
        "loaded? modprobe tls); not falling back to plaintext");
  }
  if (SSL_has_pending(ssl_)) {
    return FailedPreconditionError(
        "TLS: the device sent more than the NBD handshake before the transmission phase");
  }
  return Status::Ok();
}

std::string NbdTlsClient::Describe() const {
  return std::string(SSL_get_version(ssl_)) + " " + SSL_get_cipher_name(ssl_);
}

}  // namespace strata::csi
