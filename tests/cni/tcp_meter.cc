// A minimal TCP throughput meter for the shaping tests (no iperf needed):
//   tcp_meter recv PORT SECONDS     accepts one connection, reads for SECONDS after the first
//                                   byte, prints {"bytes":N,"seconds":S,"bitsPerSecond":R}
//   tcp_meter send HOST PORT SECONDS
// Measuring at the receiver over a fixed window after the first byte keeps the tbf's initial
// burst from dominating short runs.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

int Recv(int port, double seconds) {
  int ls = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  if (::bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(ls, 1) != 0) {
    std::perror("bind/listen");
    return 1;
  }
  std::printf("listening\n");
  std::fflush(stdout);
  int s = ::accept(ls, nullptr, nullptr);
  if (s < 0) {
    std::perror("accept");
    return 1;
  }
  std::vector<char> buf(1 << 16);
  ssize_t n = ::read(s, buf.data(), buf.size());
  if (n <= 0) return 1;
  // Skip the first second: it holds the bucket's initial burst.
  auto warm_end = Clock::now() + std::chrono::milliseconds(1000);
  while (Clock::now() < warm_end && (n = ::read(s, buf.data(), buf.size())) > 0) {
  }
  auto start = Clock::now();
  auto end = start + std::chrono::duration<double>(seconds);
  uint64_t total = 0;
  while (Clock::now() < end && (n = ::read(s, buf.data(), buf.size())) > 0) total += n;
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("{\"bytes\":%llu,\"seconds\":%.3f,\"bitsPerSecond\":%.0f}\n",
              static_cast<unsigned long long>(total), secs, total * 8 / secs);
  ::close(s);
  ::close(ls);
  return 0;
}

int Send(const char* host, int port, double seconds) {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host, &a.sin_addr) != 1) return 2;
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    std::perror("connect");
    return 1;
  }
  std::vector<char> buf(1 << 16, 'x');
  auto end = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < end) {
    // The receiver stops first: EPIPE ends the loop (no SIGPIPE).
    if (::send(s, buf.data(), buf.size(), MSG_NOSIGNAL) < 0) break;
  }
  ::close(s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::strcmp(argv[1], "recv") == 0)
    return Recv(std::atoi(argv[2]), std::atof(argv[3]));
  if (argc == 5 && std::strcmp(argv[1], "send") == 0) {
    return Send(argv[2], std::atoi(argv[3]), std::atof(argv[4]));
  }
  std::fprintf(stderr, "usage: tcp_meter recv PORT SECONDS | send HOST PORT SECONDS\n");
  return 2;
}
