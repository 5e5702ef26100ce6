// strata-ktls-probe: does this kernel, with Debian's OpenSSL and SSL_OP_ENABLE_KTLS, move a TLS
// session into the kernel (kTLS) in both directions? The question strata-csi's kernel nbd path
// over TLS depends on: the nbd driver reads and writes the socket itself, so the socket it is
// handed must encrypt and decrypt in the kernel.
//
// Over loopback TCP, for TLS 1.2 and TLS 1.3 (AES-GCM), a server and a client session with
// SSL_OP_ENABLE_KTLS; prints, per version, whether OpenSSL offloaded send and receive on each
// side, and whether a plain write(2) on the server's socket after the handshake (what the kernel
// nbd driver does) reaches the client's SSL_read as the same bytes.
//
// Usage: strata-ktls-probe CERT_DIR   (CERT_DIR as tests/lib/test_ca.sh makes: ca.crt,
//        srv/tls.crt, srv/tls.key). Exit 0 when TLS 1.2 is offloaded both ways on both sides
//        and the plain write arrives; 1 otherwise; 2 on bad usage or a failed handshake.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

namespace {

struct Result {
  bool handshake = false;
  bool client_tx = false, client_rx = false, server_tx = false, server_rx = false;
  bool plain_write_arrives = false;
  std::string version;
};

SSL_CTX* MakeCtx(bool server, int version, const std::string& dir) {
  SSL_CTX* c = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  SSL_CTX_set_options(c, SSL_OP_ENABLE_KTLS);
  SSL_CTX_set_min_proto_version(c, version);
  SSL_CTX_set_max_proto_version(c, version);
  if (server) {
    SSL_CTX_use_certificate_chain_file(c, (dir + "/srv/tls.crt").c_str());
    SSL_CTX_use_PrivateKey_file(c, (dir + "/srv/tls.key").c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_set_num_tickets(c, 0);  // as strata-stored: no post-handshake records
  } else {
    SSL_CTX_load_verify_locations(c, (dir + "/ca.crt").c_str(), nullptr);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
  }
  return c;
}

Result Probe(int version, const std::string& dir) {
  Result r;
  int l = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t n = sizeof(a);
  int c = -1, s = -1;
  if (bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 && listen(l, 1) == 0 &&
      getsockname(l, reinterpret_cast<sockaddr*>(&a), &n) == 0) {
    c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0)
      s = accept(l, nullptr, nullptr);
  }
  if (s < 0) {
    std::perror("loopback connection");
    return r;
  }
  SSL_CTX* sc = MakeCtx(true, version, dir);
  SSL_CTX* cc = MakeCtx(false, version, dir);
  SSL* ss = SSL_new(sc);
  SSL* cs = SSL_new(cc);
  SSL_set_fd(ss, s);
  SSL_set_fd(cs, c);
  bool server_ok = false;
  std::thread t([&] { server_ok = SSL_accept(ss) == 1; });
  bool client_ok = SSL_connect(cs) == 1;
  t.join();
  r.handshake = server_ok && client_ok;
  if (!r.handshake) {
    ERR_print_errors_fp(stderr);
  } else {
    r.version = std::string(SSL_get_version(cs)) + " " + SSL_get_cipher_name(cs);
    r.client_tx = BIO_get_ktls_send(SSL_get_wbio(cs)) != 0;
    r.client_rx = BIO_get_ktls_recv(SSL_get_rbio(cs)) != 0;
    r.server_tx = BIO_get_ktls_send(SSL_get_wbio(ss)) != 0;
    r.server_rx = BIO_get_ktls_recv(SSL_get_rbio(ss)) != 0;
    if (r.server_tx) {
      // What the kernel nbd driver does with the socket: plain writes, encrypted by the kernel.
      char got[8] = {};
      if (write(s, "nbd!", 4) == 4 && SSL_read(cs, got, 4) == 4) {
        r.plain_write_arrives = std::memcmp(got, "nbd!", 4) == 0;
      }
    }
  }
  SSL_free(cs);
  SSL_free(ss);
  SSL_CTX_free(cc);
  SSL_CTX_free(sc);
  close(c);
  close(s);
  close(l);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: strata-ktls-probe CERT_DIR\n");
    return 2;
  }
  std::printf("%s\n", OpenSSL_version(OPENSSL_VERSION));
  int rc = 0;
  for (int v : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    Result r = Probe(v, argv[1]);
    if (!r.handshake) return 2;
    std::printf("%s: client ktls tx=%d rx=%d, server ktls tx=%d rx=%d, plain write(2) arrives=%d\n",
                r.version.c_str(), r.client_tx, r.client_rx, r.server_tx, r.server_rx,
                r.plain_write_arrives);
    if (v == TLS1_2_VERSION &&
        !(r.client_tx && r.client_rx && r.server_tx && r.server_rx && r.plain_write_arrives)) {
      rc = 1;
    }
  }
  return rc;
}
