#include "strata/device/channel.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/pem.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <mutex>
#include <optional>

#include "strata/tls/revocation_list.h"

namespace strata::device {
namespace {

// The process's ClientTls (SetClientTls) and the credentials made from it on first use: making
// credentials starts gRPC's threads, which must not happen before a daemon has blocked its stop
// signals (they would inherit an open mask and take SIGTERM's default action).
struct ProcessTls {
  std::mutex mu;
  std::optional<ClientTls> tls;                     // guarded by mu
  std::shared_ptr<grpc::ChannelCredentials> creds;  // guarded by mu
};

ProcessTls& Process() {
  static ProcessTls* p = new ProcessTls();  // never destroyed: channels may outlive main()
  return *p;
}

// gRPC's host name check (the server certificate names the host dialled), then the revocation
// lists. Synchronous: both are a few lookups in memory (and one stat of the CRL file).
class CrlCheckingVerifier : public grpc::experimental::ExternalCertificateVerifier {
 public:
  // `crl` null: every certificate is refused (the CRL file could not be loaded when the
  // credentials were made: fail closed, never open).
  explicit CrlCheckingVerifier(std::shared_ptr<tls::RevocationList> crl) : crl_(std::move(crl)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)>, grpc::Status* sync_status) override {
    const std::string target(request->target_name().data(), request->target_name().size());
    grpc::Status host;
    if (!host_name_.Verify(
            request, [](grpc::Status) {}, &host)) {
      *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                  "device " + target + ": host name check did not complete");
      return true;
    }
    if (!host.ok()) {
      *sync_status = host;
      return true;
    }
    *sync_status = Check(target, request->peer_cert());
    if (!sync_status->ok()) spdlog::warn("{}", sync_status->error_message());
    return true;
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  grpc::Status Check(const std::string& target, grpc::string_ref pem) {
    if (!crl_) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "device " + target + ": --tls-crl could not be loaded: refusing");
    }
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(
        BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
    std::unique_ptr<X509, decltype(&X509_free)> cert(
        bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr, X509_free);
    if (!cert) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "device " + target + ": server certificate is not PEM");
    }
    Status s = crl_->Check(cert.get(), "device " + target + ": server certificate");
    if (s.ok()) return grpc::Status::OK;
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, s.message());
  }

  grpc::experimental::HostNameCertificateVerifier host_name_;
  const std::shared_ptr<tls::RevocationList> crl_;
};

std::shared_ptr<grpc::ChannelCredentials> MakeCredentials(const ClientTls& tls) {
  if (tls.insecure) return grpc::InsecureChannelCredentials();
  // One provider for the process: it keeps a thread that re-reads the files every
  // kCertRefreshSeconds and hands changed contents to every channel made from it.
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      tls.key_file, tls.cert_file, tls.ca_file, kCertRefreshSeconds);
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(provider);
  options.watch_root_certs();
  if (!tls.cert_file.empty()) options.watch_identity_key_cert_pairs();
  // The server certificate must chain to ca_file and name the host we dialled (gRPC's
  // default hostname verifier for TLS credentials).
  options.set_verify_server_certs(true);
  if (!tls.crl_file.empty()) {
    // A custom verifier replaces gRPC's default host name verifier: CrlCheckingVerifier runs
    // that one first.
    std::shared_ptr<tls::RevocationList> crl;
    auto opened = tls::RevocationList::Open(tls.crl_file, tls.ca_file, "--tls-ca");
    if (opened.ok()) {
      crl = std::move(*opened);
    } else {
      spdlog::error("device connections refused: {}", opened.status().message());
    }
    options.set_certificate_verifier(
        grpc::experimental::ExternalCertificateVerifier::Create<CrlCheckingVerifier>(
            std::move(crl)));
  }
  return grpc::experimental::TlsCredentials(options);
}

Status CheckReadable(const std::string& path, std::string_view flag) {
  if (access(path.c_str(), R_OK) != 0) {
    return InvalidArgumentError(std::string(flag) + ": cannot read '" + path + "'");
  }
  return Status::Ok();
}

}  // namespace

Result<ClientTls> ClientTlsFromFlags(const std::string& cert, const std::string& key,
                                     const std::string& ca, bool insecure, const std::string& crl) {
  ClientTls tls;
  const bool any_tls = !cert.empty() || !key.empty() || !ca.empty() || !crl.empty();
  if (insecure) {
    if (any_tls) {
      return InvalidArgumentError(
          "--insecure: cannot be combined with --tls-cert, --tls-key, --tls-ca or --tls-crl");
    }
    tls.insecure = true;
    return tls;
  }
  if (!any_tls) {
    return InvalidArgumentError(
        "--tls-ca: is required (with --tls-cert and --tls-key for mutual TLS); plaintext to the "
        "management API only with an explicit --insecure");
  }
  if (ca.empty()) {
    return InvalidArgumentError("--tls-ca: is required with --tls-cert/--tls-key/--tls-crl");
  }
  if (cert.empty() != key.empty()) {
    return InvalidArgumentError(cert.empty() ? "--tls-cert: is required with --tls-key"
                                             : "--tls-key: is required with --tls-cert");
  }
  STRATA_RETURN_IF_ERROR(CheckReadable(ca, "--tls-ca"));
  if (!cert.empty()) {
    STRATA_RETURN_IF_ERROR(CheckReadable(cert, "--tls-cert"));
    STRATA_RETURN_IF_ERROR(CheckReadable(key, "--tls-key"));
  }
  if (!crl.empty()) {
    // Loaded once now so a bad CRL stops the binary at start, not at its first connection.
    STRATA_RETURN_IF_ERROR(tls::RevocationList::Open(crl, ca, "--tls-ca").status());
  }
  tls.cert_file = cert;
  tls.key_file = key;
  tls.ca_file = ca;
  tls.crl_file = crl;
  return tls;
}

void SetClientTls(const ClientTls& tls) {
  ProcessTls& p = Process();
  std::lock_guard lock(p.mu);
  p.tls = tls;
  p.creds = nullptr;
}

std::shared_ptr<grpc::Channel> NewDeviceChannel(const std::string& address) {
  grpc::ChannelArguments args;
  // gRPC's defaults (1 s growing by 1.6x up to 120 s) leave a restarted device unused for
  // minutes. A device is a handful of long-lived peers, not a fleet: retrying often is cheap.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 250);
  // gRPC reads this one as the minimum time a connection attempt may take (its
  // MIN_CONNECT_TIMEOUT), not as a backoff: at 250 ms a TLS handshake with a busy device timed
  // out ("timed out before receiving SETTINGS frame"). A device that is down refuses at once,
  // so a longer bound does not slow reconnecting to one that comes back.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, kMinConnectTimeoutMs);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, kMaxReconnectBackoffMs);
  std::shared_ptr<grpc::ChannelCredentials> creds;
  {
    ProcessTls& p = Process();
    std::lock_guard lock(p.mu);
    if (!p.creds) p.creds = p.tls ? MakeCredentials(*p.tls) : grpc::InsecureChannelCredentials();
    creds = p.creds;
  }
  return grpc::CreateCustomChannel(address, creds, args);
}

Status FromGrpc(const grpc::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  return Status(static_cast<StatusCode>(s.error_code()),
                std::string(what) + ": " + s.error_message());
}

}  // namespace strata::device
