#include "strata/nbd/server.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cerrno>
#include <condition_variable>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>

#include "admission.h"
#include "buffer_pool.h"
#include "connection.h"
#include "socket_util.h"

namespace strata::nbd {

// Owns the listeners, the acceptor thread, the connections (each with its threads)
// and the buffer pool. Lock order: stop_mu_ -> mu_ -> (a Connection's locks).
class NbdServer::Impl {
 public:
  Impl(storage::ExportCatalog* catalog, Options options)
      : catalog_(catalog),
        options_(options),
        buffers_(options.buffer_cache_bytes),
        admission_(options.max_connections_per_client, options.max_connections_per_export) {}

  ~Impl() { Stop(); }

  Status Listen(const std::vector<HostPort>& portals);
  void StartAcceptor() {
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }
  std::vector<HostPort> bound_portals() const { return bound_; }
  int connection_count() const {
    std::lock_guard lock(mu_);
    return live_;
  }
  NbdServerCounters counters() const {
    NbdServerCounters c;
    c.refused_server_full = refused_server_full_.load();
    c.refused_client_limit = refused_client_limit_.load();
    c.refused_export_limit = admission_.refused_exports();
    c.handshake_timeouts = handshake_timeouts_.load();
    c.idle_timeouts = idle_timeouts_.load();
    c.send_timeouts = send_timeouts_.load();
    return c;
  }
  void Stop();

 private:
  struct ConnEntry {
    std::unique_ptr<Connection> conn;
    std::thread thread;
  };

  void AcceptLoop();
  void AcceptFrom(size_t listener);
  void ReapFinished();
  void Wake();
  // Shuts down connections whose handshake or idle timeout ran out.
  void ExpireConnections();
  // How long the acceptor may sleep before the next timeout check (-1: no timeouts).
  int TimeoutTickMs() const;

  storage::ExportCatalog* const catalog_;
  const Options options_;
  BufferPool buffers_;
  Admission admission_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> refused_server_full_{0};
  std::atomic<uint64_t> refused_client_limit_{0};
  std::atomic<uint64_t> handshake_timeouts_{0};
  std::atomic<uint64_t> idle_timeouts_{0};
  std::atomic<uint64_t> send_timeouts_{0};
  std::atomic<uint64_t> inflight_bytes_{0};  // payload held by requests in flight

  std::vector<Listener> listeners_;  // fixed after Listen(); closed by Stop()
  std::vector<HostPort> bound_;      // fixed after Listen()
  UniqueFd wake_fd_;                 // eventfd: Stop() and finished connections
  std::thread acceptor_;

  std::mutex stop_mu_;    // serialises Stop()
  bool stopped_ = false;  // guarded by stop_mu_

  mutable std::mutex mu_;
  std::condition_variable cv_;           // signalled when a connection finishes
  std::map<uint64_t, ConnEntry> conns_;  // guarded by mu_
  std::vector<uint64_t> finished_;       // guarded by mu_; threads done, not joined
  int live_ = 0;                         // guarded by mu_; threads not yet done
  uint64_t next_id_ = 1;                 // guarded by mu_
};

Status NbdServer::Impl::Listen(const std::vector<HostPort>& portals) {
  wake_fd_.Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd_.valid()) return ErrnoError("eventfd", errno);
  for (const HostPort& p : portals) {
    STRATA_ASSIGN_OR_RETURN(Listener l, ListenTcp(p, /*backlog=*/128));
    bound_.push_back(l.bound);
    listeners_.push_back(std::move(l));
  }
  return Status::Ok();
}

void NbdServer::Impl::Wake() {
  uint64_t one = 1;
  ssize_t n = ::write(wake_fd_.get(), &one, sizeof(one));
  (void)n;  // EAGAIN only when the counter is saturated: a wake-up is pending anyway
}

namespace {

// A flood of refused connections must not flood the log: the first ten refusals
// of a kind, then every thousandth (the counters have them all).
bool WorthLogging(uint64_t n) { return n <= 10 || n % 1000 == 0; }

}  // namespace

int NbdServer::Impl::TimeoutTickMs() const {
  // A tenth of the shortest timeout, between 50 ms and 1 s: a connection is cut
  // off at most 10% (or 1 s) late.
  int64_t shortest = std::min(options_.handshake_timeout.count(), options_.send_timeout.count());
  if (options_.idle_timeout.count() > 0)
    shortest = std::min<int64_t>(shortest, options_.idle_timeout.count());
  if (shortest <= 0) return -1;
  return static_cast<int>(std::clamp<int64_t>(shortest / 10, 50, 1000));
}

void NbdServer::Impl::ExpireConnections() {
  auto now = Connection::Clock::now();
  std::lock_guard lock(mu_);
  for (auto& [id, e] : conns_) {
    std::string reason;
    Connection::Expiry why = e.conn->TakeExpired(now, &reason);
    if (why == Connection::Expiry::kNone) continue;
    std::atomic<uint64_t>& counter = why == Connection::Expiry::kHandshake ? handshake_timeouts_
                                     : why == Connection::Expiry::kSend    ? send_timeouts_
                                                                           : idle_timeouts_;
    uint64_t n = counter.fetch_add(1) + 1;
    if (WorthLogging(n)) {
      spdlog::warn("nbd: {} via {}: closing: {} ({} so far)", e.conn->client().peer_address,
                   e.conn->client().portal_address, reason, n);
    }
    e.conn->Shutdown(/*hard=*/true);
  }
}

void NbdServer::Impl::AcceptLoop() {
  std::vector<pollfd> fds(listeners_.size() + 1);
  fds[0] = {wake_fd_.get(), POLLIN, 0};
  for (size_t i = 0; i < listeners_.size(); ++i) fds[i + 1] = {listeners_[i].fd.get(), POLLIN, 0};
  bool backoff = false;
  const int tick = TimeoutTickMs();
  auto next_check = std::chrono::steady_clock::now();
  while (!stopping_.load()) {
    // After a failed accept (out of descriptors or memory) the listeners stay
    // readable; wait a little before trying them again rather than spin.
    int wait = backoff ? 100 : tick;
    int rc = ::poll(fds.data(), backoff ? 1 : fds.size(), wait);
    backoff = false;
    if (tick > 0 && std::chrono::steady_clock::now() >= next_check) {
      ExpireConnections();
      next_check = std::chrono::steady_clock::now() + std::chrono::milliseconds(tick);
    }
    if (rc < 0) {
      if (errno == EINTR) continue;
      spdlog::error("nbd: poll: {}", std::strerror(errno));
      backoff = true;
      continue;
    }
    if (fds[0].revents != 0) {
      uint64_t v;
      ssize_t n = ::read(wake_fd_.get(), &v, sizeof(v));
      (void)n;
      ReapFinished();
    }
    for (size_t i = 0; i < listeners_.size(); ++i) {
      if (rc > 0 && fds[i + 1].revents != 0) {
        int fd;
        while (!stopping_.load() &&
               (fd = ::accept4(listeners_[i].fd.get(), nullptr, nullptr, SOCK_CLOEXEC)) >= 0) {
          UniqueFd client(fd);
          storage::ClientInfo info;
          info.peer_address = PeerAddress(fd);
          info.portal_address = listeners_[i].bound.ToString();
          std::lock_guard lock(mu_);
          if (stopping_.load()) break;
          if (live_ >= options_.max_connections) {
            uint64_t n = refused_server_full_.fetch_add(1) + 1;
            if (WorthLogging(n)) {
              spdlog::warn(
                  "nbd: {} via {}: refused, {} connections open (--nbd-max-connections; {} "
                  "refused so far)",
                  info.peer_address, info.portal_address, live_, n);
            }
            continue;
          }
          std::string why;
          if (!admission_.AdmitClient(info.peer_address, &why)) {
            uint64_t n = refused_client_limit_.fetch_add(1) + 1;
            if (WorthLogging(n)) {
              spdlog::warn("nbd: {} via {}: refused: {} ({} refused so far)", info.peer_address,
                           info.portal_address, why, n);
            }
            continue;
          }
          uint64_t id = next_id_++;
          ConnEntry& e = conns_[id];
          ServerContext ctx;
          ctx.catalog = catalog_;
          ctx.admission = &admission_;
          ctx.options = &options_;
          ctx.buffers = &buffers_;
          ctx.stopping = &stopping_;
          ctx.send_timeouts = &send_timeouts_;
          ctx.handshake_timeouts = &handshake_timeouts_;
          ctx.inflight_bytes = &inflight_bytes_;
          e.conn = std::make_unique<Connection>(ctx, std::move(client), std::move(info));
          ++live_;
          Connection* conn = e.conn.get();
          try {
            e.thread = std::thread([this, conn, id] {
              conn->Run();
              admission_.ReleaseClient(conn->client().peer_address);
              std::lock_guard done_lock(mu_);
              --live_;
              finished_.push_back(id);
              cv_.notify_all();
              Wake();
            });
          } catch (const std::system_error& err) {
            spdlog::warn("nbd: {}: refused, cannot start a thread: {}", conn->client().peer_address,
                         err.what());
            --live_;
            admission_.ReleaseClient(conn->client().peer_address);
            conns_.erase(id);  // closes the socket
          }
        }
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          spdlog::warn("nbd: accept on {}: {}", listeners_[i].bound.ToString(),
                       std::strerror(errno));
          backoff = true;
        }
      }
    }
  }
}

void NbdServer::Impl::ReapFinished() {
  std::vector<ConnEntry> done;
  {
    std::lock_guard lock(mu_);
    for (uint64_t id : finished_) {
      auto it = conns_.find(id);
      done.push_back(std::move(it->second));
      conns_.erase(it);
    }
    finished_.clear();
  }
  for (ConnEntry& e : done) e.thread.join();
}

void NbdServer::Impl::Stop() {
  std::lock_guard stop_lock(stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  {
    std::lock_guard lock(mu_);
    stopping_.store(true);
  }
  if (acceptor_.joinable()) {
    Wake();
    acceptor_.join();
  }
  listeners_.clear();  // closes the listening sockets
  {
    std::unique_lock lock(mu_);
    // Stop reading: in-flight requests finish and their replies go out.
    for (auto& [id, e] : conns_) e.conn->Shutdown(/*hard=*/false);
    cv_.wait_for(lock, options_.stop_grace, [this] { return live_ == 0; });
    // Whoever is left (a client not reading its replies) is dropped.
    for (auto& [id, e] : conns_) e.conn->Shutdown(/*hard=*/true);
  }
  std::map<uint64_t, ConnEntry> conns;
  {
    std::lock_guard lock(mu_);
    conns.swap(conns_);
    finished_.clear();
  }
  for (auto& [id, e] : conns) e.thread.join();
}

NbdServer::NbdServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

NbdServer::~NbdServer() { Stop(); }

Result<std::unique_ptr<NbdServer>> NbdServer::Start(storage::ExportCatalog* catalog,
                                                    std::vector<HostPort> portals,
                                                    Options options) {
  assert(catalog != nullptr);
  if (portals.empty()) return InvalidArgumentError("nbd server: no portal to listen on");
  if (options.threads_per_connection < 1) {
    return InvalidArgumentError("nbd server: threads_per_connection must be at least 1");
  }
  if (options.max_payload_bytes < 4096 || options.max_payload_bytes > (1u << 31)) {
    return InvalidArgumentError("nbd server: max_payload_bytes must be in [4096, 2^31]");
  }
  if (options.max_connections < 1 || options.max_connections_per_client < 0 ||
      options.max_connections_per_export < 0) {
    return InvalidArgumentError(
        "nbd server: max_connections must be at least 1, the per-client and per-export "
        "limits at least 0 (0: no limit)");
  }
  if (options.handshake_timeout.count() <= 0 || options.idle_timeout.count() < 0) {
    return InvalidArgumentError(
        "nbd server: handshake_timeout must be positive, idle_timeout at least 0 (0: never)");
  }
  auto impl = std::make_unique<Impl>(catalog, options);
  STRATA_RETURN_IF_ERROR(impl->Listen(portals));
  impl->StartAcceptor();
  for (const HostPort& p : impl->bound_portals()) {
    spdlog::info("nbd: serving on portal {}", p.ToString());
  }
  return std::unique_ptr<NbdServer>(new NbdServer(std::move(impl)));
}

std::vector<HostPort> NbdServer::bound_portals() const { return impl_->bound_portals(); }

int NbdServer::connection_count() const { return impl_->connection_count(); }

NbdServerCounters NbdServer::counters() const { return impl_->counters(); }

void NbdServer::Stop() { impl_->Stop(); }

}  // namespace strata::nbd
