#pragma once

#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "admission.h"
#include "buffer_pool.h"
#include "commands.h"
#include "cpu_follower.h"
#include "handshake.h"
#include "socket_util.h"
#include "splice_pipe.h"
#include "strata/nbd/server.h"
#include "strata/storage/volume.h"
#include "transport.h"

namespace strata::nbd {

// What a connection borrows from its server; everything outlives the connection.
struct ServerContext {
  storage::ExportCatalog* catalog = nullptr;
  Admission* admission = nullptr;
  const NbdServerOptions* options = nullptr;
  BufferPool* buffers = nullptr;
  const std::atomic<bool>* stopping = nullptr;
  // Timeouts the connection notices itself (SO_SNDTIMEO, SO_RCVTIMEO in the
  // handshake), counted with the ones the server's watchdog enforces.
  std::atomic<uint64_t>* send_timeouts = nullptr;
  std::atomic<uint64_t>* handshake_timeouts = nullptr;
  // Payload bytes held by requests in flight, server-wide (max_inflight_bytes).
  std::atomic<uint64_t>* inflight_bytes = nullptr;
  class TlsCredentials* tls = nullptr;  // null when TLS is off
};

// One client session. Run() runs the handshake, then serves requests on a small
// set of threads that take turns reading the socket (leader/follower, as nbdkit
// does): the thread holding read_mu_ parses the next request (a buffered reader, so
// pipelined headers cost one recv) and reads a WRITE payload straight into its own
// buffer, then releases read_mu_ to the next thread and runs the request itself —
// the Volume call and the reply (header and data in one sendmsg, under send_mu_).
// No request changes threads, so none waits for a wake-up on its way; threads are
// added on demand, up to options.threads_per_connection, when no spare one is
// waiting to read. Run() returns, socket closed, once every thread is done.
//
// Framing: a request with a bad magic, or a WRITE whose payload is over the limit
// (it cannot be skipped safely), stops reading and drops the connection once the
// requests in flight are answered; anything else wrong with a request gets an error
// reply and the connection goes on.
//
// Thread-safety: Run() on one thread; Shutdown() from any thread, any time.
class Connection {
 public:
  using Clock = std::chrono::steady_clock;

  Connection(const ServerContext& ctx, UniqueFd fd, storage::ClientInfo client);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void Run();

  // hard=false stops reading (requests in flight still get their replies);
  // hard=true also fails pending and future sends.
  void Shutdown(bool hard);

  const storage::ClientInfo& client() const { return client_; }

  // Which timeout ran out (TakeExpired).
  enum class Expiry { kNone, kHandshake, kIdle, kSend };
  // Whether a timeout has run out at `now`: the handshake (handshake_timeout from
  // the start), a reply not taken by the client within send_timeout (as a whole:
  // SO_SNDTIMEO alone restarts with every byte the client trickles out), or, in
  // transmission, idle_timeout with no request in flight. Not kNone once per
  // connection (the caller shuts it down); *reason says why. Thread-safe.
  Expiry TakeExpired(Clock::time_point now, std::string* reason);

 private:
  struct Request {
    uint16_t type = 0;
    uint16_t flags = 0;
    uint64_t handle = 0;
    uint64_t offset = 0;
    uint32_t length = 0;
    Clock::time_point received;
    const CommandSpec* spec = nullptr;  // the command's row; nullptr when unknown
    uint32_t error = 0;                 // set when the request was refused before running
    std::string message;
    BufferPool::Handle buf;  // payload or reply data; back to the pool when done
    // A WRITE whose payload was received where the volume wanted it (BeginWrite):
    // Execute commits it instead of calling Write with buf.
    std::unique_ptr<storage::IncomingWrite> incoming;
    uint64_t charged = 0;  // bytes of ServerContext::inflight_bytes this request holds
  };

  // One serving thread: read a request (under read_mu_), run it, repeat.
  // counted: the thread was counted in waiting_readers_ when it was spawned.
  void ServeLoop(bool counted);
  // Reads the next request into *r. False when reading must stop for good.
  // REQUIRES: read_mu_ held.
  bool ReadRequest(Request* r);
  void SpawnHelperIfNeeded();
  // Makes at least n bytes available in rx_; false on EOF, error or shutdown.
  bool Fill(size_t n);
  Status ReadPayload(char* dst, size_t len);
  // Asks the volume where a large WRITE's payload should land (Volume::BeginWrite),
  // telling it whether the whole payload is already queued; r->incoming stays null
  // when the volume wants the buffer path. REQUIRES: read_mu_ held, r charged.
  void BeginIncoming(Request* r);
  // Receives r's payload through r->incoming (the bytes already in rx_ first).
  Status ReceiveIncoming(Request* r);
  // ReceiveIncoming's spliced way: the `left` bytes still in the socket into the
  // files NextFileSpace names; a file that does not take them (ENOSPC) abandons the
  // write (AbandonIncoming). REQUIRES: read_mu_ held, splice_.
  Status SpliceIncoming(Request* r, size_t left);
  // The volume could not take r's payload (`why`): r->incoming is abandoned (what it
  // holds goes back), the `left` bytes still in the socket are read past, so the
  // stream stays framed, and r is answered with the error. REQUIRES: read_mu_ held.
  Status AbandonIncoming(Request* r, size_t left, const Status& why);
  // Whether payloads may be spliced on this connection (the plain socket, a pipe
  // made). REQUIRES: read_mu_ held.
  bool CanSplice();
  // A buffer of r->length bytes for r, charged to the server's in-flight budget;
  // on failure r->error = ENOMEM and r->message says which limit.
  void Borrow(Request* r);
  // Charges r->length bytes to the server's in-flight budget (Borrow's first half).
  void Charge(Request* r);
  // Gives r's buffer and its charge back, and abandons an uncommitted incoming write.
  void ReturnBuffer(Request* r);
  Status Discard(size_t len);
  // 0 when the request may run; otherwise the NBD error and a message.
  uint32_t Validate(const CommandSpec* spec, uint16_t type, uint16_t flags, uint64_t offset,
                    uint32_t length, std::string* message) const;
  void Execute(Request* r);
  // Sends a large READ's reply straight from the volume's bytes (Volume::BeginRead):
  // under send_mu_, what the socket takes at once goes from them, the rest is copied
  // into r->buf and sent after the volume's guard is let go. The guard is never held
  // while waiting, on the network or for send_mu_ (another reply's send): when that
  // is taken, the guard is let go and asked for again once it is ours. False (nothing
  // sent) when the volume or the transport cannot.
  bool SendReadFromVolume(Request* r);
  // The reply header of a successful read of r (simple, or one OFFSET_DATA chunk);
  // its size.
  size_t ReadReplyHeader(const Request& r, char* hdr) const;
  // A send failed (under send_mu_): no more replies, the connection is dropped.
  void SendFailed(const Status& s);
  // Sends a reply: one with data (a read's) under send_mu_ at once; any other is
  // queued (QueueReply).
  void SendReply(uint64_t handle, uint16_t type, uint32_t error, std::string_view message,
                 const char* data, size_t len, uint64_t offset);
  // Queues a reply without data for sending and returns; the first thread to queue
  // one while no thread drains becomes the drainer: it sends everything queued, batch
  // after batch (one send each, under send_mu_), until the queue is empty, so no
  // queued reply is left behind and no replier waits for another's send.
  void QueueReply(const iovec* iov, int n);
  // Sends all of iov under send_mu_ (held), marked in sending_since_ for the stall
  // check; a failure ends the connection (SendFailed).
  void SendAllLocked(iovec* iov, int n);
  void Record(uint16_t type, uint32_t length, Clock::time_point received, bool ok);

  const ServerContext ctx_;
  const int sock_;
  // The identities are set by the handshake (NBD_OPT_STARTTLS), the rest is fixed.
  storage::ClientInfo client_;
  // Plain on sock_, or TLS after NBD_OPT_STARTTLS (set by the handshake, before
  // any other thread runs); destroyed before sock_ is closed.
  std::unique_ptr<Transport> io_;
  std::string peer_;  // "ip via portal", for logs

  std::mutex fd_mu_;
  bool closed_ = false;  // guarded by fd_mu_; sock_ is closed once set

  // Set once the handshake succeeded; read-only afterwards.
  Negotiated session_;
  storage::LunIoStats* stats_ = nullptr;

  // Reading the socket: one thread at a time.
  std::mutex read_mu_;
  std::unique_ptr<char[]> rx_;  // guarded by read_mu_
  size_t rx_begin_ = 0;         // guarded by read_mu_
  size_t rx_end_ = 0;           // guarded by read_mu_
  bool stop_reading_ = false;   // guarded by read_mu_
  // The last request carried a large payload (a bulk write stream): the next
  // header is read on its own, so the next payload goes from the socket straight
  // into its buffer rather than through rx_ (one more recv instead of a copy of
  // up to kRxBufferSize). Guarded by read_mu_.
  bool rx_lean_ = false;
  // Large WRITE payloads the volume takes into a file (IncomingWrite::NextFileSpace)
  // go there from the plain socket through this pipe, made at the first such write
  // (an idle connection holds none); splice_broken_ once it could not be made.
  // Guarded by read_mu_.
  std::optional<SplicePipe> splice_;
  bool splice_broken_ = false;
  // Requests read (guarded by read_mu_) and replies sent or queued: equal when the
  // client has every reply it asked for (CpuFollower's "alone").
  uint64_t read_count_ = 0;
  std::atomic<uint64_t> answered_{0};
  CpuFollower follow_;
  // Threads waiting for read_mu_ (spares ready to take over reading).
  std::atomic<int> waiting_readers_{0};

  std::mutex threads_mu_;
  std::vector<std::thread> helpers_;  // guarded by threads_mu_
  int threads_ = 1;                   // guarded by threads_mu_; Run()'s thread included

  // For the server's timeouts (TakeExpired).
  const Clock::time_point handshake_deadline_;
  std::atomic<bool> in_handshake_{true};
  std::atomic<bool> expired_{false};
  std::atomic<int> inflight_{0};              // requests read and not yet answered
  std::atomic<Clock::rep> last_activity_{0};  // a request read or answered
  std::atomic<Clock::rep> sending_since_{0};  // a reply's send began; 0: none under way

  std::mutex send_mu_;
  bool send_failed_ = false;  // guarded by send_mu_

  // Replies without data wait here for the draining thread (QueueReply): a thread
  // that finds send_mu_ taken by another reply's send would otherwise sleep on it,
  // and on a loaded host that send's thread is often preempted right after its
  // sendmsg wakes the client, so a convoy of repliers forms behind it.
  std::mutex reply_mu_;
  std::string queued_replies_;  // guarded by reply_mu_: the wire bytes of the replies
  bool draining_ = false;       // guarded by reply_mu_: a thread is in QueueReply's loop
  std::string drain_batch_;     // the draining thread's (one at a time): what it sends
};

}  // namespace strata::nbd
