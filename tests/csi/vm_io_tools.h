// Shared by the VM-tier node tests: small helpers (Run, Contains, PortOf), a TCP forwarder standing
// for one network path (stop it and the path dies), a continuous verified writer, and a polling
// wait with a deadline.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace strata::csi::vmtest {

// Runs a shell command, echoed; whether it exited 0.
inline bool Run(const std::string& cmd) {
  std::cout << "$ " << cmd << std::endl;
  return std::system(cmd.c_str()) == 0;
}

// Whether any of `v` contains `part`.
inline bool Contains(const std::vector<std::string>& v, const std::string& part) {
  for (const auto& s : v) {
    if (s.find(part) != std::string::npos) return true;
  }
  return false;
}

// The port of a HOST:PORT portal.
inline uint16_t PortOf(const std::string& portal) {
  return static_cast<uint16_t>(std::stoi(portal.substr(portal.rfind(':') + 1)));
}

// Polls `cond` every 50 ms until it holds or `limit` passes.
inline bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return cond();
}

// A TCP forwarder standing for one network path: Stop() closes the listener and every
// forwarded connection (the client sees the connection die), Start() listens again.
class Forwarder {
 public:
  explicit Forwarder(uint16_t target_port) : target_port_(target_port) {}
  ~Forwarder() { Stop(); }

  // Listens on 127.0.0.1:port (0: any free port); returns the port.
  uint16_t Start(uint16_t port) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        listen(listen_fd_, 16) != 0) {
      std::cout << "forwarder: bind/listen: " << std::strerror(errno) << std::endl;
      return 0;
    }
    socklen_t len = sizeof a;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    stop_ = false;
    accept_thread_ = std::thread([this] { AcceptLoop(); });
    return ntohs(a.sin_port);
  }

  void Stop() {
    if (listen_fd_ < 0) return;
    stop_ = true;
    shutdown(listen_fd_, SHUT_RDWR);
    accept_thread_.join();
    close(listen_fd_);
    listen_fd_ = -1;
    {
      std::lock_guard<std::mutex> l(mu_);
      for (int fd : conns_) shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : pumps_) t.join();
    pumps_.clear();
    std::lock_guard<std::mutex> l(mu_);
    for (int fd : conns_) close(fd);
    conns_.clear();
  }

 private:
  void AcceptLoop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      int c = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(target_port_);
      if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        close(c);
        close(s);
        continue;
      }
      std::lock_guard<std::mutex> l(mu_);
      conns_.push_back(c);
      conns_.push_back(s);
      pumps_.emplace_back([c, s] { Pump(c, s); });
      pumps_.emplace_back([c, s] { Pump(s, c); });
    }
  }
  static void Pump(int from, int to) {
    char buf[65536];
    for (;;) {
      ssize_t n = read(from, buf, sizeof buf);
      if (n <= 0) break;
      for (ssize_t off = 0; off < n;) {
        // The other side may have been shut down by Stop(): EPIPE, not SIGPIPE.
        ssize_t w = send(to, buf + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
        if (w <= 0) {
          shutdown(from, SHUT_RDWR);
          return;
        }
        off += w;
      }
    }
    shutdown(to, SHUT_RDWR);
  }

  const uint16_t target_port_;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<int> conns_;
  std::vector<std::thread> pumps_;
};

// Continuous verified I/O: 64 KiB O_DIRECT writes of a per-round pattern over the first
// `span` bytes of `dev`, each read back and compared.
class Writer {
 public:
  Writer(std::string dev, uint64_t span) : dev_(std::move(dev)), span_(span) {}
  void Start() {
    stop_ = false;
    thread_ = std::thread([this] { Loop(); });
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  uint64_t ops() const { return ops_; }
  uint64_t errors() const { return errors_; }
  std::string first_error() {
    std::lock_guard<std::mutex> l(mu_);
    return first_error_;
  }
  // The byte pattern last written at block `i` (0 = never written).
  char Expected(uint64_t i) {
    std::lock_guard<std::mutex> l(mu_);
    return i < last_.size() ? last_[i] : 0;
  }
  uint64_t blocks() const { return span_ / kBlock; }

  static constexpr size_t kBlock = 65536;

 private:
  void Fail(const std::string& what) {
    ++errors_;
    std::lock_guard<std::mutex> l(mu_);
    if (first_error_.empty()) first_error_ = what;
  }
  void Loop() {
    int fd = open(dev_.c_str(), O_RDWR | O_DIRECT);
    if (fd < 0) {
      Fail("open " + dev_ + ": " + std::strerror(errno));
      return;
    }
    void* w = nullptr;
    void* r = nullptr;
    if (posix_memalign(&w, 4096, kBlock) != 0 || posix_memalign(&r, 4096, kBlock) != 0) return;
    last_.assign(blocks(), 0);
    uint64_t n = 0;
    while (!stop_) {
      const uint64_t i = n % blocks();
      const char fill = static_cast<char>('A' + (n / blocks()) % 26);
      std::memset(w, fill, kBlock);
      const off_t off = static_cast<off_t>(i * kBlock);
      if (pwrite(fd, w, kBlock, off) != static_cast<ssize_t>(kBlock)) {
        Fail("write at " + std::to_string(off) + ": " + std::strerror(errno));
      } else {
        {
          std::lock_guard<std::mutex> l(mu_);
          last_[i] = fill;
        }
        if (pread(fd, r, kBlock, off) != static_cast<ssize_t>(kBlock)) {
          Fail("read at " + std::to_string(off) + ": " + std::strerror(errno));
        } else if (std::memcmp(w, r, kBlock) != 0) {
          Fail("read back differs at " + std::to_string(off));
        }
      }
      ++ops_;
      ++n;
    }
    free(w);
    free(r);
    close(fd);
  }

  const std::string dev_;
  const uint64_t span_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> ops_{0}, errors_{0};
  std::thread thread_;
  std::mutex mu_;
  std::vector<char> last_;
  std::string first_error_;
};

// Every block the writer wrote still holds its last pattern (read through `dev`).
inline bool VerifyWriter(Writer& w, const std::string& dev) {
  int fd = open(dev.c_str(), O_RDONLY | O_DIRECT);
  if (fd < 0) return false;
  void* r = nullptr;
  if (posix_memalign(&r, 4096, Writer::kBlock) != 0) return false;
  bool ok = true;
  for (uint64_t i = 0; i < w.blocks() && ok; ++i) {
    const char want = w.Expected(i);
    if (want == 0) continue;
    ok = pread(fd, r, Writer::kBlock, static_cast<off_t>(i * Writer::kBlock)) ==
         static_cast<ssize_t>(Writer::kBlock);
    const char* b = static_cast<const char*>(r);
    for (size_t k = 0; ok && k < Writer::kBlock; k += 4096) ok = b[k] == want;
    if (!ok) std::cout << "block " << i << " does not hold '" << want << "'" << std::endl;
  }
  free(r);
  close(fd);
  return ok;
}

}  // namespace strata::csi::vmtest
