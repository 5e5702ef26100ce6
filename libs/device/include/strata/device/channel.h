#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "strata/common/result.h"
#include "strata/common/status.h"

namespace grpc {
class Channel;
class Status;
}  // namespace grpc

namespace strata::device {

// How soon a channel to a strata-stored management endpoint tries again after the device went
// away: every client of the management API (CSI driver, operator, strata-admin, device-to-device
// moves) reconnects within this much of a device coming back, instead of after gRPC's default
// backoff of up to two minutes. Calls made meanwhile fail at once with UNAVAILABLE.
inline constexpr int kMaxReconnectBackoffMs = 1000;
// How long one connection attempt (TCP, TLS handshake, HTTP/2 settings) may take.
inline constexpr int kMinConnectTimeoutMs = 5000;

// How a client reaches the management API: mutual TLS (the normal case) or plaintext, which a
// binary only uses when its operator said --insecure. The files are PEM, named like a
// kubernetes.io/tls Secret as cert-manager writes it (tls.crt, tls.key, ca.crt); they are
// re-read when they change (gRPC's file watcher, kCertRefreshSeconds), so a renewed client
// certificate or CA bundle is used without a restart.
struct ClientTls {
  bool insecure = false;
  std::string cert_file;  // --tls-cert: this client's certificate chain (optional with ca_file)
  std::string key_file;   // --tls-key: its private key (with cert_file)
  std::string ca_file;    // --tls-ca: the CA bundle the device's server certificate must chain to
  // --tls-crl: revocation lists (PEM, signed by a CA of ca_file) a device's server certificate is
  // checked against at every handshake, re-read when the file changes (strata::tls::
  // RevocationList); a revoked certificate fails the connection (UNAVAILABLE, and a log line
  // naming the serial). Connections made before the revocation stay until they are re-made.
  std::string crl_file;
};

// How often certificate files are checked for changes (client and server side).
inline constexpr unsigned kCertRefreshSeconds = 1;

// The ClientTls the flags --tls-cert, --tls-key, --tls-ca, --tls-crl and --insecure describe, or
// INVALID_ARGUMENT naming the flag: TLS or --insecure must be chosen (never plaintext by
// default), cert and key come together, TLS needs a CA, the files must be readable, a CRL must
// parse and be signed by a CA of --tls-ca.
Result<ClientTls> ClientTlsFromFlags(const std::string& cert, const std::string& key,
                                     const std::string& ca, bool insecure,
                                     const std::string& crl = "");

// Sets how NewDeviceChannel connects, for the whole process: call it from main() before any
// channel is made. Cheap and safe before a daemon blocks its signals (the credentials, and
// gRPC's threads, are made on the first NewDeviceChannel). Until it is called channels are
// plaintext: only unit tests rely on that; every binary calls it with what its flags chose.
// Thread-safe.
void SetClientTls(const ClientTls& tls);

// A channel to the management API at `address` (HOST:PORT or unix:PATH) with the reconnect
// policy above and the process's ClientTls (SetClientTls). With TLS the device's server
// certificate must name the address's host (a DNS or IP subjectAltName). Thread-safe; share
// one per address.
std::shared_ptr<grpc::Channel> NewDeviceChannel(const std::string& address);

// A gRPC status as a Status: the codes are numbered alike (strata/common/status.h); `what`
// (the call and the device) prefixes the message.
Status FromGrpc(const grpc::Status& s, std::string_view what);

}  // namespace strata::device
