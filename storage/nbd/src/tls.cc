#include "tls.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <poll.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>

#include "strata/common/openssl_errors.h"
#include "strata/nbd/certificate_identities.h"

namespace strata::nbd {

Result<NbdTlsMode> ParseNbdTlsMode(std::string_view text, std::string_view field) {
  if (text == "off") return NbdTlsMode::kOff;
  if (text == "allow") return NbdTlsMode::kAllow;
  if (text == "require") return NbdTlsMode::kRequire;
  return InvalidArgumentError(std::string(field) + ": '" + std::string(text) +
                              "' is not one of off, allow, require");
}

namespace {

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};

}  // namespace

std::vector<std::string> TlsCredentials::Files() const {
  std::vector<std::string> files = {options_.cert_file, options_.key_file};
  if (!options_.client_ca_file.empty()) files.push_back(options_.client_ca_file);
  if (!options_.crl_file.empty()) files.push_back(options_.crl_file);
  return files;
}

std::vector<TlsCredentials::Stamp> TlsCredentials::StampFiles() const {
  std::vector<Stamp> out;
  for (const std::string& f : Files()) {
    struct stat st {};
    Stamp s;
    if (::stat(f.c_str(), &st) == 0) {
      s.dev = st.st_dev;
      s.ino = st.st_ino;
      s.size = st.st_size;
      s.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
    }
    out.push_back(s);
  }
  return out;
}

Result<std::shared_ptr<SSL_CTX>> TlsCredentials::Build() const {
  ERR_clear_error();
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()), SslCtxFree());
  if (!ctx) return InternalError("SSL_CTX_new: " + OpenSslErrors());
  SSL_CTX* c = ctx.get();
  // The NBD spec: TLS 1.2 at least. No renegotiation; no session resumption
  // (tickets or cache), so every connection verifies the client's certificate
  // against the current CA and CRL.
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(c, 0);
  SSL_CTX_set_mode(c, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_certificate_chain_file(c, options_.cert_file.c_str()) != 1) {
    return InvalidArgumentError("--nbd-tls-cert '" + options_.cert_file + "': " + OpenSslErrors());
  }
  if (SSL_CTX_use_PrivateKey_file(c, options_.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return InvalidArgumentError("--nbd-tls-key '" + options_.key_file + "': " + OpenSslErrors());
  }
  if (SSL_CTX_check_private_key(c) != 1) {
    return InvalidArgumentError("--nbd-tls-key '" + options_.key_file +
                                "' does not match --nbd-tls-cert: " + OpenSslErrors());
  }
  if (!options_.client_ca_file.empty()) {
    const char* ca = options_.client_ca_file.c_str();
    if (SSL_CTX_load_verify_locations(c, ca, nullptr) != 1) {
      return InvalidArgumentError("--nbd-tls-client-ca '" + options_.client_ca_file +
                                  "': " + OpenSslErrors());
    }
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca);
    if (names == nullptr) {
      return InvalidArgumentError("--nbd-tls-client-ca '" + options_.client_ca_file +
                                  "': no certificate in it");
    }
    SSL_CTX_set_client_CA_list(c, names);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    if (!options_.crl_file.empty()) {
      X509_STORE* store = SSL_CTX_get_cert_store(c);
      X509_LOOKUP* lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
      if (lookup == nullptr ||
          X509_load_crl_file(lookup, options_.crl_file.c_str(), X509_FILETYPE_PEM) < 1) {
        return InvalidArgumentError("--nbd-tls-crl '" + options_.crl_file +
                                    "': " + OpenSslErrors());
      }
      // The leaf's issuer must have a CRL in the file (a missing one fails closed).
      X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    }
  }
  return ctx;
}

Result<std::unique_ptr<TlsCredentials>> TlsCredentials::Load(const NbdTlsOptions& options) {
  if (options.cert_file.empty()) return InvalidArgumentError("--nbd-tls-cert: required with TLS");
  if (options.key_file.empty()) return InvalidArgumentError("--nbd-tls-key: required with TLS");
  if (!options.crl_file.empty() && options.client_ca_file.empty()) {
    return InvalidArgumentError(
        "--nbd-tls-crl: needs --nbd-tls-client-ca (revocation is of client certificates)");
  }
  std::unique_ptr<TlsCredentials> creds(new TlsCredentials(options));
  creds->stamps_ = creds->StampFiles();
  STRATA_ASSIGN_OR_RETURN(creds->ctx_, creds->Build());
  return creds;
}

std::shared_ptr<SSL_CTX> TlsCredentials::Current() {
  std::lock_guard lock(mu_);
  std::vector<Stamp> now = StampFiles();
  if (now != stamps_) {
    auto rebuilt = Build();
    if (rebuilt.ok()) {
      ctx_ = std::move(rebuilt).value();
      stamps_ = std::move(now);
      spdlog::info("nbd: TLS credentials reloaded");
    } else {
      spdlog::warn("nbd: TLS credentials changed but do not load, keeping the previous ones: {}",
                   rebuilt.status().ToString());
    }
  }
  return ctx_;
}

namespace {

// The poll timeout for a wait ending at `deadline` (none: -1), or 0 once past.
int PollTimeout(std::chrono::steady_clock::time_point deadline) {
  if (deadline == std::chrono::steady_clock::time_point::max()) return -1;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left.count(), 1 << 30));
}

std::chrono::steady_clock::time_point DeadlineAfter(std::chrono::milliseconds timeout) {
  if (timeout.count() <= 0) return std::chrono::steady_clock::time_point::max();
  return std::chrono::steady_clock::now() + timeout;
}

// Waits until fd is ready for what OpenSSL asked (SSL_ERROR_WANT_READ/WRITE).
Status WaitFor(int fd, int ssl_error, std::chrono::steady_clock::time_point deadline,
               const char* what) {
  pollfd p{fd, static_cast<short>(ssl_error == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN), 0};
  while (true) {
    int rc = ::poll(&p, 1, PollTimeout(deadline));
    if (rc > 0) return Status::Ok();
    if (rc == 0) return Status(StatusCode::kDeadlineExceeded, std::string(what) + ": timed out");
    if (errno != EINTR) return ErrnoError(std::string(what) + ": poll", errno);
  }
}

class TlsTransport final : public Transport {
 public:
  TlsTransport(int fd, SSL* ssl, std::chrono::milliseconds send_timeout)
      : fd_(fd), ssl_(ssl), send_timeout_(send_timeout) {}
  ~TlsTransport() override {
    // A close_notify when it can go out at once (the spec: shut TLS down before
    // the TCP session); never wait for the peer's.
    SSL_shutdown(ssl_);
    SSL_free(ssl_);
  }

  Result<size_t> RecvSome(char* buf, size_t len) override {
    auto deadline = DeadlineAfter(recv_timeout_);
    std::unique_lock lock(mu_);
    while (true) {
      ERR_clear_error();
      int n = SSL_read(ssl_, buf, static_cast<int>(std::min<size_t>(len, 1 << 30)));
      if (n > 0) return static_cast<size_t>(n);
      int err = SSL_get_error(ssl_, n);
      int saved_errno = errno;
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        lock.unlock();
        STRATA_RETURN_IF_ERROR(WaitFor(fd_, err, deadline, "TLS receive"));
        lock.lock();
        continue;
      }
      if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && saved_errno == 0)) {
        return UnavailableError("connection closed by peer");
      }
      if (err == SSL_ERROR_SYSCALL) return ErrnoError("TLS receive", saved_errno);
      return UnavailableError("TLS receive: " + OpenSslErrors());
    }
  }

  Status SendAll(struct iovec* iov, int iovcnt) override {
    // Small pieces go out as one TLS record; large ones each as their own writes.
    size_t total = 0;
    for (int i = 0; i < iovcnt; ++i) total += iov[i].iov_len;
    auto deadline = DeadlineAfter(send_timeout_);
    if (total <= sizeof(small_)) {
      size_t off = 0;
      for (int i = 0; i < iovcnt; ++i) {
        std::memcpy(small_ + off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
      }
      return Write(small_, total, deadline);
    }
    for (int i = 0; i < iovcnt; ++i) {
      STRATA_RETURN_IF_ERROR(
          Write(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len, deadline));
    }
    return Status::Ok();
  }

  Status SetReceiveTimeout(std::chrono::milliseconds timeout) override {
    recv_timeout_ = timeout;
    return Status::Ok();
  }

  std::string Describe() const override {
    return std::string(SSL_get_version(ssl_)) + " " + SSL_get_cipher_name(ssl_);
  }

 private:
  Status Write(const char* data, size_t len, std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mu_);
    while (len > 0) {
      ERR_clear_error();
      size_t written = 0;
      int rc = SSL_write_ex(ssl_, data, len, &written);
      if (rc == 1) {
        data += written;
        len -= written;
        continue;
      }
      int err = SSL_get_error(ssl_, rc);
      int saved_errno = errno;
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        lock.unlock();
        STRATA_RETURN_IF_ERROR(WaitFor(fd_, err, deadline, "TLS send"));
        lock.lock();
        continue;
      }
      if (err == SSL_ERROR_SYSCALL && saved_errno != 0) return ErrnoError("TLS send", saved_errno);
      return UnavailableError("TLS send: " + OpenSslErrors());
    }
    return Status::Ok();
  }

  const int fd_;
  SSL* const ssl_;
  const std::chrono::milliseconds send_timeout_;
  std::chrono::milliseconds recv_timeout_{0};  // set by the reader only
  std::mutex mu_;         // OpenSSL's SSL object is used by one thread at a time
  char small_[16 << 10];  // used by the one writer at a time (Connection's send lock)
};

}  // namespace

Result<std::unique_ptr<Transport>> AcceptTls(int fd, std::shared_ptr<SSL_CTX> ctx,
                                             std::chrono::steady_clock::time_point deadline,
                                             std::chrono::milliseconds send_timeout,
                                             std::vector<std::string>* identities) {
  int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return ErrnoError("fcntl", errno);
  ERR_clear_error();
  SSL* ssl = SSL_new(ctx.get());
  if (ssl == nullptr) return InternalError("SSL_new: " + OpenSslErrors());
  if (SSL_set_fd(ssl, fd) != 1) {
    SSL_free(ssl);
    return InternalError("SSL_set_fd: " + OpenSslErrors());
  }
  while (true) {
    ERR_clear_error();
    int rc = SSL_accept(ssl);
    if (rc == 1) break;
    int err = SSL_get_error(ssl, rc);
    int saved_errno = errno;
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      Status s = WaitFor(fd, err, deadline, "TLS handshake");
      if (!s.ok()) {
        SSL_free(ssl);
        return s;
      }
      continue;
    }
    std::string why;
    long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
      why = std::string("client certificate: ") + X509_verify_cert_error_string(verify);
    } else if (err == SSL_ERROR_SYSCALL) {
      why = saved_errno == 0 ? "connection closed by peer" : std::strerror(saved_errno);
    } else {
      why = OpenSslErrors();
    }
    SSL_free(ssl);
    return PermissionDeniedError("TLS handshake failed: " + why);
  }
  X509* peer = SSL_get0_peer_certificate(ssl);
  *identities = CertificateIdentities(peer);
  return std::unique_ptr<Transport>(std::make_unique<TlsTransport>(fd, ssl, send_timeout));
}

}  // namespace strata::nbd
