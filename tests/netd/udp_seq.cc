// A UDP sequence counter for the uplink failover test (packet loss and outage length, no iperf):
//   udp_seq recv ADDR PORT_FILE REPORT    binds ADDR:0 (the port goes to PORT_FILE, written
//                                         atomically), counts until SIGTERM/SIGINT, then writes
//                                         REPORT (JSON): received, highest sequence, and every
//                                         loss (a hole in the sequence) as {lastSentUs,
//                                         resumeSentUs, resumeRecvUs (CLOCK_REALTIME), ms, lost}
//   udp_seq send ADDR PORT INTERVAL_US    sends datagrams {sequence, send time} every
//                                         INTERVAL_US until SIGTERM/SIGINT; prints {"sent":N}
// A loss is what a failover costs: the datagrams sent while no path carried them. Its times are
// the SENDER's (each datagram carries its send time; both ends share one clock in the test), so
// the receiver's scheduling delays (large under TCG) do not count as outage: `ms` is the time
// between the last datagram sent before the hole and the first sent after it that arrived.
// Times are CLOCK_REALTIME microseconds so a shell script can place them against its own
// EPOCHREALTIME stamps.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

int64_t NowUs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

bool WriteAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << text;
    if (!out.flush()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

struct Datagram {
  uint64_t sequence;
  int64_t sent_us;
};

struct Loss {
  int64_t last_sent_us, resume_sent_us, resume_recv_us;
  uint64_t lost;
};

int Recv(const char* addr, const std::string& port_file, const std::string& report) {
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  if (::inet_pton(AF_INET, addr, &a.sin_addr) != 1) {
    std::fprintf(stderr, "udp_seq: bad address %s\n", addr);
    return 2;
  }
  // A receiver descheduled for a while (TCG) must not drop what arrived meanwhile: that would
  // count as path loss. SO_RCVBUFFORCE (root) beyond rmem_max, else the capped SO_RCVBUF.
  int rcvbuf = 16 << 20;
  if (::setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) != 0) {
    ::setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  }
  socklen_t len = sizeof(a);
  if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    std::perror("udp_seq: bind");
    return 1;
  }
  if (!WriteAtomically(port_file, std::to_string(ntohs(a.sin_port)) + "\n")) {
    std::perror("udp_seq: port file");
    return 1;
  }
  uint64_t received = 0, highest = 0;
  bool any = false;
  int64_t last_sent_us = 0;
  uint64_t last_seq = 0;
  std::vector<Loss> losses;
  while (!g_stop) {
    pollfd p{s, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    Datagram d{};
    ssize_t n = ::recv(s, &d, sizeof(d), 0);
    if (n != static_cast<ssize_t>(sizeof(d))) continue;
    const int64_t now = NowUs();
    received++;
    if (any && d.sequence > last_seq + 1) {
      losses.push_back({last_sent_us, d.sent_us, now, d.sequence - last_seq - 1});
    }
    if (!any || d.sequence > highest) highest = d.sequence;
    any = true;
    if (d.sequence >= last_seq) {  // a reordered late datagram does not move the mark back
      last_sent_us = d.sent_us;
      last_seq = d.sequence;
    }
  }
  std::string j = "{\"received\":" + std::to_string(received) +
                  ",\"highestSequence\":" + std::to_string(highest) + ",\"losses\":[";
  for (size_t i = 0; i < losses.size(); ++i) {
    const Loss& l = losses[i];
    j += (i ? "," : "") + std::string("{\"lastSentUs\":") + std::to_string(l.last_sent_us) +
         ",\"resumeSentUs\":" + std::to_string(l.resume_sent_us) +
         ",\"resumeRecvUs\":" + std::to_string(l.resume_recv_us) +
         ",\"ms\":" + std::to_string((l.resume_sent_us - l.last_sent_us) / 1000.0) +
         ",\"lost\":" + std::to_string(l.lost) + "}";
  }
  j += "]}\n";
  return WriteAtomically(report, j) ? 0 : 1;
}

int Send(const char* addr, int port, int interval_us) {
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, addr, &a.sin_addr) != 1) {
    std::fprintf(stderr, "udp_seq: bad address %s\n", addr);
    return 2;
  }
  uint64_t sent = 0;
  timespec next{};
  clock_gettime(CLOCK_MONOTONIC, &next);
  while (!g_stop) {
    Datagram d{sent, NowUs()};
    // A send may fail while no path exists (ENETUNREACH, ENOBUFS): the datagram counts as sent
    // (and lost), as it would on a wire.
    (void)::sendto(s, &d, sizeof(d), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    sent++;
    next.tv_nsec += static_cast<long>(interval_us) * 1000;
    while (next.tv_nsec >= 1000000000) {
      next.tv_nsec -= 1000000000;
      next.tv_sec++;
    }
    // Behind schedule (the sender was descheduled): start again from now instead of a burst of
    // catch-up datagrams, which would overflow queues and count as path loss.
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > next.tv_sec || (now.tv_sec == next.tv_sec && now.tv_nsec > next.tv_nsec)) {
      next = now;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, nullptr) == EINTR && !g_stop) {
    }
  }
  std::printf("{\"sent\":%llu}\n", static_cast<unsigned long long>(sent));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  if (argc == 5 && std::strcmp(argv[1], "recv") == 0) return Recv(argv[2], argv[3], argv[4]);
  if (argc == 5 && std::strcmp(argv[1], "send") == 0) {
    return Send(argv[2], std::atoi(argv[3]), std::atoi(argv[4]));
  }
  std::fprintf(stderr,
               "usage: udp_seq recv ADDR PORT_FILE REPORT | udp_seq send ADDR PORT INTERVAL_US\n");
  return 2;
}
