// What hashing a dedup write's blocks as they arrive saves (issue #16, rxhash): the
// receiving thread's CPU per MiB of 1 MiB messages over loopback TCP, received into
// rotating 1 MiB buffers (as the NBD server's pool hands them out) and then
// optionally written to a file (as the engine's pwrite of new slots does), with
//   none:   no hash (the floor: what receiving costs at that recv size);
//   after:  XXH3-128 of each 4 KiB block once the whole message landed (the engine
//           today: its first look at the bytes after the receive);
//   piece:  each block hashed right after the recv that completed it, while the
//           bytes are still in cache;
// with one receiving thread or several taking turns (--threads, as the NBD
// connection's), for each cap on one recv's size (whole: up to the rest of the message, as
// Transport::RecvAll asks). Modes run interleaved, rounds after rounds, so load on
// the host hits them alike; prints each cell's median and the goal figure: what
// `piece` saves against `after` at the same cap, in ms per MiB.
//
//   strata-bench-rxhash [--mib 512] [--rounds 5] [--caps whole,256,128,64]
//                       [--threads 1] [--sink none|FILE]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/dedup_index.h"

namespace {

constexpr size_t kMessage = 1 << 20;
constexpr size_t kBlock = 4096;
constexpr int kBuffers = 8;  // QD8's buffers, reused in turn

double ThreadCpuSeconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}
double WallSeconds() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "strata-bench-rxhash: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

// A connected loopback TCP pair: {sender, receiver}.
std::pair<int, int> LoopbackPair() {
  int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (lfd < 0) Die("socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&a), len) != 0) Die("bind");
  if (::listen(lfd, 1) != 0) Die("listen");
  if (::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len) != 0) Die("getsockname");
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0 || ::connect(s, reinterpret_cast<sockaddr*>(&a), len) != 0) Die("connect");
  int r = ::accept(lfd, nullptr, nullptr);
  if (r < 0) Die("accept");
  ::close(lfd);
  int one = 1;
  ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return {s, r};
}

enum class Hash { kNone, kAfter, kPiece };

struct Cell {
  Hash hash;
  size_t cap;  // 0: whole (the rest of the message)
  std::string Name() const {
    const char* h = hash == Hash::kNone ? "none" : hash == Hash::kAfter ? "after" : "piece";
    return std::string(h) + "/" + (cap == 0 ? std::string("whole") : std::to_string(cap >> 10));
  }
};

// Receives `mib` messages from `fd` as `cell` says, with `threads` receiving threads
// that take turns on the socket under one lock as the NBD connection's threads do
// (one receives a whole message, lets go, then runs it while another receives);
// returns the receiving threads' CPU seconds (summed) and the wall seconds.
std::pair<double, double> Receive(int fd, const Cell& cell, size_t mib, int threads,
                                  std::vector<std::vector<char>>& bufs, int sink,
                                  std::atomic<uint64_t>* checksum) {
  std::mutex read_mu;
  size_t next = 0;
  std::atomic<double> cpu_total{0};
  auto run = [&] {
    const double c0 = ThreadCpuSeconds();
    uint64_t sum = 0;
    while (true) {
      std::unique_lock lock(read_mu);
      if (next == mib) break;
      const size_t m = next++;
      char* buf = bufs[m % bufs.size()].data();
      size_t got = 0, hashed = 0;
      while (got < kMessage) {
        size_t want = kMessage - got;
        if (cell.cap != 0) want = std::min(want, cell.cap);
        ssize_t n = ::recv(fd, buf + got, want, 0);
        if (n <= 0) Die("recv");
        got += static_cast<size_t>(n);
        if (cell.hash == Hash::kPiece) {
          for (; hashed + kBlock <= got; hashed += kBlock) {
            sum += strata::storage::engine::FingerprintOf(buf + hashed, kBlock).lo;
          }
        }
      }
      lock.unlock();
      if (cell.hash == Hash::kAfter) {
        for (size_t at = 0; at < kMessage; at += kBlock) {
          sum += strata::storage::engine::FingerprintOf(buf + at, kBlock).lo;
        }
      }
      if (sink >= 0) {
        const off_t off = static_cast<off_t>((m % 64) * kMessage);
        if (::pwrite(sink, buf, kMessage, off) != static_cast<ssize_t>(kMessage)) Die("pwrite");
      }
    }
    checksum->fetch_add(sum);
    double c = cpu_total.load();
    while (!cpu_total.compare_exchange_weak(c, c + ThreadCpuSeconds() - c0)) {
    }
  };
  const double w0 = WallSeconds();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(run);
  for (auto& t : pool) t.join();
  return {cpu_total.load(), WallSeconds() - w0};
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  size_t mib = 512;
  int rounds = 5;
  std::vector<size_t> caps = {0, 256 << 10, 128 << 10, 64 << 10};
  std::string sink_path = "none";
  int threads = 1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s: needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--mib") {
      mib = std::stoul(next());
    } else if (a == "--rounds") {
      rounds = std::stoi(next());
    } else if (a == "--caps") {
      caps.clear();
      std::stringstream ss(next());
      for (std::string c; std::getline(ss, c, ',');) {
        caps.push_back(c == "whole" ? 0 : std::stoul(c) << 10);
      }
    } else if (a == "--threads") {
      threads = std::stoi(next());
    } else if (a == "--sink") {
      sink_path = next();
    } else {
      std::fprintf(stderr,
                   "usage: strata-bench-rxhash [--mib N] [--rounds R] [--caps whole,256,128,64] "
                   "[--threads N] [--sink none|FILE]\n");
      return 2;
    }
  }
  int sink = -1;
  if (sink_path != "none") {
    sink = ::open(sink_path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (sink < 0) Die("open " + sink_path);
    std::vector<char> zeros(kMessage, 1);
    for (int m = 0; m < 64; ++m) {  // overwrites existing pages, as an in-place write
      if (::pwrite(sink, zeros.data(), kMessage, static_cast<off_t>(m) * kMessage) < 0) {
        Die("pwrite");
      }
    }
  }
  std::vector<Cell> cells;
  for (size_t cap : caps) {
    for (Hash h : {Hash::kNone, Hash::kAfter, Hash::kPiece}) cells.push_back({h, cap});
  }
  // Distinct bytes for every message the sender sends (64 MiB, cycled).
  std::vector<char> source(64 * kMessage);
  std::mt19937_64 rng(16);
  for (size_t i = 0; i + 8 <= source.size(); i += 8) {
    uint64_t x = rng();
    std::memcpy(source.data() + i, &x, 8);
  }
  std::vector<std::vector<char>> bufs(kBuffers, std::vector<char>(kMessage, 0));
  std::map<std::string, std::vector<double>> cpu_ms, gbs;
  std::atomic<uint64_t> checksum{0};
  for (int r = 0; r < rounds; ++r) {
    for (const Cell& cell : cells) {
      auto [s, fd] = LoopbackPair();
      std::thread sender([&, s = s] {
        for (size_t m = 0; m < mib; ++m) {
          const char* p = source.data() + (m % 64) * kMessage;
          for (size_t sent = 0; sent < kMessage;) {
            ssize_t n = ::send(s, p + sent, kMessage - sent, MSG_NOSIGNAL);
            if (n <= 0) Die("send");
            sent += static_cast<size_t>(n);
          }
        }
      });
      auto [cpu, wall] = Receive(fd, cell, mib, threads, bufs, sink, &checksum);
      sender.join();
      ::close(s);
      ::close(fd);
      cpu_ms[cell.Name()].push_back(cpu * 1e3 / static_cast<double>(mib));
      gbs[cell.Name()].push_back(static_cast<double>(mib * kMessage) / wall / 1e9);
    }
  }
  std::printf(
      "1 MiB messages over loopback TCP, %zu MiB a cell, %d interleaved rounds, %d receiving "
      "thread(s), sink %s\n",
      mib, rounds, threads, sink_path.c_str());
  std::printf("%-12s %14s %10s   (receiving thread's CPU per MiB, medians; rounds: ms/MiB)\n",
              "hash/cap", "ms/MiB", "GB/s");
  for (const Cell& cell : cells) {
    const std::string n = cell.Name();
    std::printf("%-12s %14.3f %10.2f  ", n.c_str(), Median(cpu_ms[n]), Median(gbs[n]));
    for (double v : cpu_ms[n]) std::printf(" %.3f", v);
    std::printf("\n");
  }
  const double today = Median(cpu_ms["after/whole"]);
  std::printf(
      "goal: hashing each block as it lands, against hashing after the message (today's "
      "after/whole = %.3f ms/MiB):\n",
      today);
  for (size_t cap : caps) {
    Cell none{Hash::kNone, cap}, piece{Hash::kPiece, cap}, after{Hash::kAfter, cap};
    const double p = Median(cpu_ms[piece.Name()]);
    std::printf(
        "  cap %-6s hash cost after %.3f, piece %.3f ms/MiB; piece saves %.3f ms/MiB "
        "against after/whole\n",
        cap == 0 ? "whole" : (std::to_string(cap >> 10) + "K").c_str(),
        Median(cpu_ms[after.Name()]) - Median(cpu_ms[none.Name()]), p - Median(cpu_ms[none.Name()]),
        today - p);
  }
  std::fprintf(stderr, "(checksum %llx)\n", static_cast<unsigned long long>(checksum.load()));
  if (sink >= 0) ::close(sink);
  return 0;
}
