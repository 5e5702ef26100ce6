// The NBD server's handshake (option haggling) and transmission phase (request parsing,
// validation, replies), driven through the real per-connection code (Connection::Run, as the
// server's acceptor runs it) over a loopback TCP connection: the input is every byte a client
// sends, written as fast as the server reads, while the replies are read and dropped. In-memory
// exports: "" (1 MiB, 512-byte blocks), "ro" (read-only) and "private" (another client's IP
// only). One serving thread per connection, so a run is deterministic.
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>

#include "admission.h"
#include "buffer_pool.h"
#include "connection.h"
#include "strata/nbd/testing/mem_volume.h"
#include "strata/nbd/testing/static_export_catalog.h"

namespace {

using strata::nbd::MemVolume;

int listener = -1;
sockaddr_in listen_addr{};

void Die(const char* what) {
  std::perror(what);
  std::abort();
}

// A connected loopback pair: {client, server}.
void Connect(int* client, int* server) {
  *client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (*client < 0) Die("socket");
  // libFuzzer's -timeout alarm (SIGALRM) can interrupt connect; the connection then completes
  // in the background: wait for it and take its result.
  if (::connect(*client, reinterpret_cast<sockaddr*>(&listen_addr), sizeof(listen_addr)) != 0) {
    if (errno != EINTR) Die("connect");
    pollfd p{*client, POLLOUT, 0};
    while (::poll(&p, 1, -1) < 0) {
      if (errno != EINTR) Die("poll");
    }
    int err = 0;
    socklen_t len = sizeof(err);
    if (::getsockopt(*client, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      errno = err;
      Die("connect");
    }
  }
  while ((*server = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC)) < 0) {
    if (errno != EINTR) Die("accept4");
  }
}

// The client: sends `data` (then half-closes), reads replies until the server closes. Both at
// once, so a server that stops reading or a client that never reads cannot deadlock the run.
void Client(int fd, const uint8_t* data, size_t size) {
  size_t sent = 0;
  bool write_open = true;
  if (size == 0) {
    ::shutdown(fd, SHUT_WR);
    write_open = false;
  }
  char sink[64 << 10];
  while (true) {
    pollfd p{fd, static_cast<short>(POLLIN | (write_open ? POLLOUT : 0)), 0};
    if (::poll(&p, 1, -1) < 0) {
      if (errno == EINTR) continue;
      Die("poll");
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
      if (n == 0) break;
      if (n < 0 && errno != EAGAIN && errno != EINTR) break;  // reset by the server
    }
    if (write_open && (p.revents & POLLOUT)) {
      ssize_t n = ::send(fd, data + sent, size - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<size_t>(n);
      if (n < 0 && errno != EAGAIN && errno != EINTR) write_open = false;  // server gone
      if (sent == size) {
        ::shutdown(fd, SHUT_WR);
        write_open = false;
      }
    }
  }
  // Reset rather than linger: millions of runs must not fill the table with TIME_WAIT.
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  ::close(fd);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) Die("socket");
  listen_addr.sin_family = AF_INET;
  listen_addr.sin_addr.s_addr = htonl(0x7f000001u);  // 127.0.0.1
  listen_addr.sin_port = 0;
  if (::bind(listener, reinterpret_cast<sockaddr*>(&listen_addr), sizeof(listen_addr)) != 0) {
    Die("bind");
  }
  socklen_t len = sizeof(listen_addr);
  if (::getsockname(listener, reinterpret_cast<sockaddr*>(&listen_addr), &len) != 0) {
    Die("getsockname");
  }
  if (::listen(listener, 16) != 0) Die("listen");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  strata::nbd::StaticExportCatalog catalog;
  catalog.Add("", std::make_shared<MemVolume>(1 << 20, 512), {}, "the default export");
  catalog.Add("ro", std::make_shared<MemVolume>(64 << 10, 4096, /*read_only=*/true));
  catalog.Add("private", std::make_shared<MemVolume>(64 << 10), {"192.0.2.99"});

  strata::nbd::NbdServerOptions options;
  options.threads_per_connection = 1;
  options.max_payload_bytes = 64 << 10;
  options.max_option_bytes = 4 << 10;
  options.handshake_timeout = std::chrono::seconds(5);
  options.send_timeout = std::chrono::seconds(5);
  strata::nbd::BufferPool buffers(1 << 20);
  std::atomic<bool> stopping{false};
  strata::nbd::Admission admission(/*max_per_client=*/0, /*max_per_export=*/0);
  std::atomic<uint64_t> send_timeouts{0}, handshake_timeouts{0}, inflight_bytes{0};
  strata::nbd::ServerContext ctx;
  ctx.catalog = &catalog;
  ctx.admission = &admission;
  ctx.options = &options;
  ctx.buffers = &buffers;
  ctx.stopping = &stopping;
  ctx.send_timeouts = &send_timeouts;
  ctx.handshake_timeouts = &handshake_timeouts;
  ctx.inflight_bytes = &inflight_bytes;

  int client = -1, server = -1;
  Connect(&client, &server);
  std::thread peer(Client, client, data, size);
  {
    strata::nbd::Connection conn(ctx, strata::nbd::UniqueFd(server),
                                 {"192.0.2.1", "127.0.0.1:10809"});
    conn.Run();
  }
  peer.join();
  return 0;
}
