#include "connection.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <optional>
#include <span>
#include <system_error>

#include "commands.h"
#include "errors.h"
#include "strata/nbd/protocol.h"
#include "strata/storage/io_stats.h"

namespace strata::nbd {

namespace {

constexpr size_t kRxBufferSize = 128 << 10;
// At most this many places one receive of a write's payload fills (IncomingWrite::
// NextSpaces): 128 KiB of scattered 4 KiB slots is 32.
constexpr size_t kMaxRecvSpaces = 64;
// A payload at least this large makes the next header read lean (rx_lean_): below
// it, copying a payload out of rx_ costs less than the recv it saves.
constexpr size_t kLeanPayloadBytes = 32 << 10;
// A WRITE payload with at least this many bytes not yet arrived when its header is
// read is waited for (Transport::AwaitQueued) before the volume is asked, so that it
// may be received in place (docs/benchmarks.md, "Large writes received whole").
constexpr size_t kAwaitPayloadBytes = 512 << 10;
// The splice pipe's size: a device move's NBD_CMD_WRITE (1 MiB) in one step.
constexpr size_t kSplicePipeBytes = 1 << 20;

// An export name as logged: a name with '/' keeps only what precedes its last one, since
// the rest may be a capability (a device move's export, "move/<lun>/<token>"; LUN names
// never hold '/').
std::string LoggedExportName(const std::string& name) {
  const size_t slash = name.rfind('/');
  return slash == std::string::npos ? name : name.substr(0, slash + 1) + "...";
}

}  // namespace

Connection::Connection(const ServerContext& ctx, UniqueFd fd, storage::ClientInfo client)
    : ctx_(ctx),
      sock_(fd.Release()),
      client_(std::move(client)),
      io_(MakePlainTransport(sock_)),
      follow_(ctx.options->follow_client_cpu, ctx.options->follow_client_cpu_trial),
      handshake_deadline_(Clock::now() + ctx.options->handshake_timeout) {
  peer_ = client_.peer_address + " via " + client_.portal_address;
  last_activity_.store(Clock::now().time_since_epoch().count());
}

Connection::Expiry Connection::TakeExpired(Clock::time_point now, std::string* reason) {
  const NbdServerOptions& opt = *ctx_.options;
  if (expired_.load()) return Expiry::kNone;
  Expiry e = Expiry::kNone;
  Clock::rep sending = sending_since_.load();
  if (in_handshake_.load()) {
    if (now < handshake_deadline_) return Expiry::kNone;
    e = Expiry::kHandshake;
    *reason = "handshake not finished within " + std::to_string(opt.handshake_timeout.count()) +
              " ms (--nbd-handshake-timeout)";
  } else if (sending != 0) {
    if (now - Clock::time_point(Clock::duration(sending)) < opt.send_timeout) return Expiry::kNone;
    e = Expiry::kSend;
    *reason = "a reply not taken within " + std::to_string(opt.send_timeout.count()) +
              " ms (--nbd-send-timeout)";
  } else {
    if (opt.idle_timeout.count() <= 0 || inflight_.load() > 0) return Expiry::kNone;
    Clock::time_point last{Clock::duration(last_activity_.load())};
    if (now - last < opt.idle_timeout) return Expiry::kNone;
    e = Expiry::kIdle;
    *reason = "idle for " + std::to_string(opt.idle_timeout.count()) + " ms (--nbd-idle-timeout)";
  }
  return expired_.exchange(true) ? Expiry::kNone : e;
}

Connection::~Connection() {
  io_.reset();
  std::lock_guard lock(fd_mu_);
  if (!closed_) ::close(sock_);
}

void Connection::Shutdown(bool hard) {
  std::lock_guard lock(fd_mu_);
  if (!closed_) ::shutdown(sock_, hard ? SHUT_RDWR : SHUT_RD);
}

void Connection::Run() {
  const NbdServerOptions& opt = *ctx_.options;
  HandshakeConfig config;
  config.catalog = ctx_.catalog;
  config.max_option_bytes = opt.max_option_bytes;
  config.max_payload_bytes = opt.max_payload_bytes;
  config.deadline = Clock::now() + opt.handshake_timeout;
  config.stopping = ctx_.stopping;
  config.admission = ctx_.admission;
  config.tls_mode = opt.tls.mode;
  config.tls = ctx_.tls;
  config.send_timeout = opt.send_timeout;

  Status st = ConfigureConnection(sock_, opt.send_timeout);
  // A peer that vanished (node lost, cable pulled) is noticed in about two minutes
  // even on a connection that stays idle for the device's lifetime.
  if (st.ok()) st = EnableKeepalive(sock_, std::chrono::seconds(60), std::chrono::seconds(10), 6);
  if (st.ok()) st = SetReceiveTimeout(sock_, opt.handshake_timeout);
  if (st.ok()) {
    auto negotiated = RunHandshake(sock_, &io_, &client_, config);
    if (negotiated.ok()) {
      session_ = std::move(negotiated).value();
    } else {
      st = negotiated.status();
    }
  }
  // Idle NBD connections are normal (a kernel client keeps one open for as long
  // as the device exists): no receive timeout in transmission.
  if (st.ok()) st = io_->SetReceiveTimeout(std::chrono::milliseconds(0));
  last_activity_.store(Clock::now().time_since_epoch().count());
  in_handshake_.store(false);
  if (st.ok()) {
    stats_ = session_.volume->io_stats();
    spdlog::info("nbd: {}: export '{}' ({} bytes, flags {:#06x}{}, {})", peer_,
                 LoggedExportName(session_.export_name), session_.size_bytes,
                 session_.transmission_flags,
                 session_.structured_replies ? ", structured replies" : "", io_->Describe());
    rx_ = std::make_unique<char[]>(kRxBufferSize);
    ServeLoop(/*counted=*/false);
    // Reading has stopped; the helpers finish what they run, then exit.
    std::vector<std::thread> helpers;
    {
      std::lock_guard lock(threads_mu_);
      helpers.swap(helpers_);
    }
    for (auto& t : helpers) t.join();
  } else if (st.code() == StatusCode::kDeadlineExceeded) {
    if (!expired_.exchange(true)) {
      uint64_t n = ctx_.handshake_timeouts->fetch_add(1) + 1;
      if (n <= 10 || n % 1000 == 0) {
        spdlog::warn(
            "nbd: {}: handshake not finished within {} ms (--nbd-handshake-timeout; {} so far)",
            peer_, opt.handshake_timeout.count(), n);
      }
    }
  } else if (st.code() == StatusCode::kCancelled || st.code() == StatusCode::kUnavailable) {
    spdlog::debug("nbd: {}: handshake ended: {}", peer_, st.ToString());
  } else {
    spdlog::warn("nbd: {}: handshake failed: {}", peer_, st.ToString());
  }
  if (session_.holds_export_slot) ctx_.admission->ReleaseExport(session_.export_name);
  io_.reset();  // a TLS session says close_notify before the socket closes
  std::lock_guard lock(fd_mu_);
  ::close(sock_);
  closed_ = true;
}

bool Connection::Fill(size_t n) {
  if (rx_end_ - rx_begin_ >= n) return true;
  if (rx_begin_ > 0) {
    std::memmove(rx_.get(), rx_.get() + rx_begin_, rx_end_ - rx_begin_);
    rx_end_ -= rx_begin_;
    rx_begin_ = 0;
  }
  while (rx_end_ < n) {
    // Lean: only what was asked for, so a large payload behind it stays in the
    // socket for ReadPayload to receive in place.
    size_t want = rx_lean_ ? n - rx_end_ : kRxBufferSize - rx_end_;
    auto got = io_->RecvSome(rx_.get() + rx_end_, want);
    if (!got.ok()) {
      if (got.status().code() != StatusCode::kUnavailable || rx_end_ != 0) {
        spdlog::debug("nbd: {}: {}", peer_, got.status().ToString());
      }
      return false;
    }
    rx_end_ += *got;
  }
  return true;
}

Status Connection::ReadPayload(char* dst, size_t len) {
  if (len == 0) return Status::Ok();
  size_t buffered = std::min(len, rx_end_ - rx_begin_);
  std::memcpy(dst, rx_.get() + rx_begin_, buffered);
  rx_begin_ += buffered;
  // The rest goes straight from the socket into the payload buffer.
  return io_->RecvAll(dst + buffered, len - buffered);
}

Status Connection::Discard(size_t len) {
  while (len > 0) {
    if (rx_begin_ == rx_end_) {
      rx_begin_ = rx_end_ = 0;
      STRATA_ASSIGN_OR_RETURN(size_t got, io_->RecvSome(rx_.get(), kRxBufferSize));
      rx_end_ = got;
    }
    size_t take = std::min(len, rx_end_ - rx_begin_);
    rx_begin_ += take;
    len -= take;
  }
  return Status::Ok();
}

uint32_t Connection::Validate(const CommandSpec* spec, uint16_t type, uint16_t flags,
                              uint64_t offset, uint32_t length, std::string* message) const {
  RequestContext rc;
  rc.structured_replies = session_.structured_replies;
  rc.read_only = session_.volume->read_only();
  rc.size_bytes = session_.size_bytes;
  rc.max_payload_bytes = ctx_.options->max_payload_bytes;
  return ValidateRequest(spec, type, flags, offset, length, rc, message);
}

void Connection::SpawnHelperIfNeeded() {
  // Called with read_mu_ held, just before handing reading over: if no thread
  // is waiting to take over, add one (it blocks on read_mu_ until we let go).
  if (waiting_readers_.load() > 0) return;
  std::lock_guard lock(threads_mu_);
  if (threads_ >= ctx_.options->threads_per_connection) return;
  waiting_readers_.fetch_add(1);  // counted before it runs, so we spawn only one
  try {
    helpers_.emplace_back([this] { ServeLoop(/*counted=*/true); });
    ++threads_;
  } catch (const std::system_error& e) {
    // Out of threads: this connection goes on with the ones it has.
    waiting_readers_.fetch_sub(1);
    spdlog::warn("nbd: {}: cannot add a thread: {}", peer_, e.what());
  }
}

bool Connection::ReadRequest(Request* r) {
  const NbdServerOptions& opt = *ctx_.options;
  if (stop_reading_ || ctx_.stopping->load(std::memory_order_relaxed)) return false;
  if (!Fill(kRequestHeaderSize)) return false;
  const char* h = rx_.get() + rx_begin_;
  if (GetBe32(h) != kRequestMagic) {
    spdlog::warn("nbd: {}: request with bad magic {:#010x}: framing lost, dropping", peer_,
                 GetBe32(h));
    return false;
  }
  r->flags = GetBe16(h + 4);
  r->type = GetBe16(h + 6);
  r->handle = GetBe64(h + 8);
  r->offset = GetBe64(h + 16);
  r->length = GetBe32(h + 24);
  rx_begin_ += kRequestHeaderSize;
  r->received = Clock::now();
  r->message.clear();

  r->spec = FindCommand(r->type);
  if (r->type == kCmdDisc) {
    spdlog::debug("nbd: {}: client disconnected (NBD_CMD_DISC)", peer_);
    return false;
  }
  r->error = Validate(r->spec, r->type, r->flags, r->offset, r->length, &r->message);
  rx_lean_ = r->spec != nullptr && r->spec->payload_in && r->length >= kLeanPayloadBytes;
  if (r->spec == nullptr || !r->spec->payload_in) return true;
  if (r->length > opt.max_payload_bytes) {
    // The payload cannot be skipped without reading up to 4 GiB: answer, then drop.
    spdlog::warn("nbd: {}: {}; dropping the connection", peer_, r->message);
    SendReply(r->handle, r->type, r->error, r->message, nullptr, 0, 0);
    Record(r->type, r->length, r->received, false);
    return false;
  }
  if (r->error == 0 && r->length > 0) {
    if (r->type == kCmdWrite && r->length >= kLeanPayloadBytes) {
      Charge(r);
      if (r->error == 0) BeginIncoming(r);
    }
    if (r->error == 0 && r->incoming == nullptr) Borrow(r);
  }
  Status s = r->error != 0            ? Discard(r->length)
             : r->incoming != nullptr ? ReceiveIncoming(r)
                                      : ReadPayload(r->buf.data(), r->length);
  if (!s.ok()) {
    spdlog::debug("nbd: {}: reading a write payload: {}", peer_, s.ToString());
    return false;
  }
  return true;
}

void Connection::BeginIncoming(Request* r) {
  storage::IncomingPayload payload;
  const size_t buffered = rx_end_ - rx_begin_;
  if (buffered >= r->length) {
    payload.queued = true;
  } else {
    // Much of the rest still on its way: waited for here, holding nothing of the
    // volume's, so that a volume that stores in place may receive it while it holds
    // its locks (one copy, where the buffer path makes two). Worth a wake-up only
    // when the copy saved is large (kAwaitPayloadBytes).
    const size_t rest = r->length - buffered;
    std::optional<size_t> queued = io_->Queued();
    payload.queued =
        queued.has_value() &&
        (*queued >= rest || (rest - *queued >= kAwaitPayloadBytes && io_->AwaitQueued(rest)));
  }
  payload.to_file = CanSplice();
  r->incoming =
      session_.volume->BeginWrite(r->offset, r->length, (r->flags & kCmdFlagFua) != 0, payload);
}

bool Connection::CanSplice() {
  if (splice_.has_value()) return true;
  if (splice_broken_ || io_->splice_fd() < 0) return false;
  Result<SplicePipe> pipe = SplicePipe::Open(kSplicePipeBytes);
  if (!pipe.ok()) {
    splice_broken_ = true;
    spdlog::warn("nbd: {}: write payloads are received without splice: {}", peer_,
                 pipe.status().ToString());
    return false;
  }
  splice_.emplace(std::move(*pipe));
  return true;
}

Status Connection::SpliceIncoming(Request* r, size_t left) {
  while (left > 0) {
    const storage::IncomingWrite::FileSpace at = r->incoming->NextFileSpace();
    if (at.fd < 0 || at.length == 0) {
      return InternalError("the volume gave no file range for the write's payload");
    }
    const size_t take = std::min(at.length, left);
    size_t written = 0;
    Status file_error;
    STRATA_RETURN_IF_ERROR(
        splice_->Move(io_->splice_fd(), take, at.fd, at.offset, &written, &file_error));
    left -= take;
    if (!file_error.ok()) return AbandonIncoming(r, left, file_error);
    r->incoming->Received(take);
  }
  return Status::Ok();
}

Status Connection::AbandonIncoming(Request* r, size_t left, const Status& why) {
  r->incoming.reset();
  STRATA_RETURN_IF_ERROR(Discard(left));
  r->error = NbdErrorFromStatus(why);  // never 0: `why` is an error
  r->message = std::string(r->spec->name) + ": " + why.message();
  return Status::Ok();
}

Status Connection::ReceiveIncoming(Request* r) {
  size_t left = r->length;
  if (rx_begin_ < rx_end_) {
    const size_t got = std::min(left, rx_end_ - rx_begin_);
    Status landed = r->incoming->Land({rx_.get() + rx_begin_, got});
    rx_begin_ += got;
    left -= got;
    if (!landed.ok()) return AbandonIncoming(r, left, landed);
  }
  if (left > 0 && splice_.has_value() && r->incoming->NextFileSpace().fd >= 0) {
    return SpliceIncoming(r, left);
  }
  const bool whole = r->incoming->WholeReceives();
  while (left > 0) {
    // Several places at once (a dedup write's scattered slots): one receive for all.
    std::array<std::span<char>, kMaxRecvSpaces> spaces;
    const size_t k = r->incoming->NextSpaces(spaces.data(), spaces.size());
    if (k == 0 || spaces[0].empty()) {
      return InternalError("the volume gave no space for the write's payload");
    }
    std::array<iovec, kMaxRecvSpaces> iov;
    size_t total = 0;
    int n = 0;
    for (size_t i = 0; i < k && total < left; ++i, ++n) {
      const size_t len = std::min(spaces[i].size(), left - total);
      iov[i] = {spaces[i].data(), len};
      total += len;
    }
    size_t got = 0;
    if (whole) {
      STRATA_RETURN_IF_ERROR(io_->RecvAllV(iov.data(), n));
      got = total;
    } else if (n == 1) {
      STRATA_ASSIGN_OR_RETURN(got, io_->RecvSome(spaces[0].data(), total));
    } else {
      STRATA_ASSIGN_OR_RETURN(got, io_->RecvSomeV(iov.data(), n));
    }
    r->incoming->Received(got);
    left -= got;
  }
  return Status::Ok();
}

void Connection::Charge(Request* r) {
  // Memory held by requests in flight is bounded however many connections pipeline
  // maximum-size requests (slow readers hold theirs until the send timeout drops
  // them). A request charged once (a WRITE that asked BeginWrite first) is not
  // charged again.
  if (r->charged > 0) return;
  const uint64_t max = ctx_.options->max_inflight_bytes;
  uint64_t before = ctx_.inflight_bytes->fetch_add(r->length);
  if (max > 0 && before + r->length > max) {
    ctx_.inflight_bytes->fetch_sub(r->length);
    r->error = kEnomem;
    r->message = std::string(r->spec->name) + ": the server's in-flight request budget of " +
                 std::to_string(max) + " bytes is used up (--nbd-max-inflight-bytes)";
    return;
  }
  r->charged = r->length;
}

void Connection::Borrow(Request* r) {
  // The server-wide budget first.
  Charge(r);
  if (r->error != 0) return;
  r->buf = ctx_.buffers->Get(r->length);
  if (r->buf.data() == nullptr) {
    r->error = kEnomem;
    r->message = std::string(r->spec->name) + ": out of memory for the payload";
  }
}

void Connection::ReturnBuffer(Request* r) {
  r->incoming.reset();
  r->buf.Release();
  if (r->charged > 0) ctx_.inflight_bytes->fetch_sub(r->charged);
  r->charged = 0;
}

void Connection::ServeLoop(bool counted) {
  Request r;
  // Before sleeping on read_mu_: where a thread is woken is set by its affinity.
  follow_.AddThisThread();
  std::unique_lock lock(read_mu_);
  if (counted) waiting_readers_.fetch_sub(1);
  while (true) {
    if (!ReadRequest(&r)) {
      ReturnBuffer(&r);
      stop_reading_ = true;
      follow_.RemoveThisThread();
      break;
    }
    // Alone: every earlier request answered (a client waiting for each reply) and
    // nothing more received.
    const bool alone = answered_.load() == read_count_ && rx_begin_ == rx_end_;
    ++read_count_;
    const bool moves_data = r.spec != nullptr && (r.spec->payload_in || r.spec->payload_out);
    follow_.Observe(alone, moves_data ? r.length : 0, sock_);
    inflight_.fetch_add(1);
    if (r.error == 0 && r.spec->payload_out && r.length > 0) Borrow(&r);
    SpawnHelperIfNeeded();
    lock.unlock();  // the next thread reads while this one runs the request
    if (r.error != 0) {
      spdlog::debug("nbd: {}: {}", peer_, r.message);
      SendReply(r.handle, r.type, r.error, r.message, nullptr, 0, 0);
      Record(r.type, r.length, r.received, false);
    } else {
      Execute(&r);
    }
    // Back to the pool, whose budget bounds idle memory: a thread of an idle
    // connection holds no buffer.
    ReturnBuffer(&r);
    last_activity_.store(Clock::now().time_since_epoch().count());
    inflight_.fetch_sub(1);
    waiting_readers_.fetch_add(1);
    lock.lock();
    waiting_readers_.fetch_sub(1);
  }
}

void Connection::Execute(Request* r) {
  // Validate() let only rows with a handler through (DISC never gets here).
  if (r->spec->payload_out && r->length >= kLeanPayloadBytes && SendReadFromVolume(r)) {
    Record(r->type, r->length, r->received, true);
    return;
  }
  Status st;
  if (r->incoming != nullptr) {
    st = r->incoming->Commit();
  } else {
    CommandArgs args{r->flags, r->offset, r->length, r->buf.data()};
    st = r->spec->run(session_.volume.get(), args);
  }
  uint32_t error = NbdErrorFromStatus(st);
  if (error == 0 && r->spec->payload_out) {
    SendReply(r->handle, r->type, 0, {}, r->buf.data(), r->length, r->offset);
  } else {
    if (error != 0) {
      spdlog::debug("nbd: {}: {} {}+{}: {}", peer_, r->spec->name, r->offset, r->length,
                    st.ToString());
    }
    SendReply(r->handle, r->type, error, st.message(), nullptr, 0, 0);
  }
  Record(r->type, r->length, r->received, error == 0);
}

size_t Connection::ReadReplyHeader(const Request& r, char* hdr) const {
  if (!session_.structured_replies) {
    PutBe32(hdr, kSimpleReplyMagic);
    PutBe32(hdr + 4, 0);
    PutBe64(hdr + 8, r.handle);
    return kSimpleReplyHeaderSize;
  }
  // The whole read as one NBD_REPLY_TYPE_OFFSET_DATA chunk (NBD_CMD_FLAG_DF holds).
  PutBe32(hdr, kStructuredReplyMagic);
  PutBe16(hdr + 4, kReplyFlagDone);
  PutBe16(hdr + 6, kReplyTypeOffsetData);
  PutBe64(hdr + 8, r.handle);
  PutBe32(hdr + 16, 8 + r.length);
  PutBe64(hdr + 20, r.offset);
  return kStructuredReplyHeaderSize + 8;
}

bool Connection::SendReadFromVolume(Request* r) {
  // At most this many pieces of the volume's bytes in one reply (IOV_MAX is 1024).
  constexpr size_t kMaxSpans = 256;
  if (!io_->sends_now() || r->buf.data() == nullptr) return false;
  std::unique_ptr<storage::OutgoingRead> out = session_.volume->BeginRead(r->offset, r->length);
  if (out == nullptr) return false;
  // The volume's guard is never held while waiting for another reply's send (to a
  // client that may take its time): when one is under way, the guard is let go and
  // taken again once this thread holds send_mu_.
  std::unique_lock lock(send_mu_, std::try_to_lock);
  if (!lock.owns_lock()) {
    out.reset();
    lock.lock();
    if (send_failed_) return true;  // as SendReply: later replies are skipped
    out = session_.volume->BeginRead(r->offset, r->length);
    if (out == nullptr) return false;
  }
  if (send_failed_) return true;
  std::span<const std::span<const char>> spans = out->Spans();
  if (spans.size() > kMaxSpans) {
    size_t at = 0;
    for (const auto& sp : spans) {
      std::memcpy(r->buf.data() + at, sp.data(), sp.size());
      at += sp.size();
    }
    out.reset();
    lock.unlock();
    SendReply(r->handle, r->type, 0, {}, r->buf.data(), r->length, r->offset);
    return true;
  }
  char hdr[kStructuredReplyHeaderSize + 8];
  const size_t hdr_len = ReadReplyHeader(*r, hdr);
  answered_.fetch_add(1);
  iovec iov[kMaxSpans + 1];
  int n = 0;
  iov[n++] = {hdr, hdr_len};
  for (const auto& sp : spans) iov[n++] = {const_cast<char*>(sp.data()), sp.size()};
  sending_since_.store(Clock::now().time_since_epoch().count());
  iovec* next = iov;
  int left = n;
  Result<size_t> sent = io_->SendNow(&next, &left);
  Status s = sent.status();
  if (s.ok() && left > 0) {
    // The rest is copied out of the volume's bytes (into the request's own buffer, at
    // the same place in the reply), then sent with the guard let go.
    size_t at = 0;  // data bytes before spans[i]
    for (int i = 1; i < n; ++i) {
      const size_t len = spans[i - 1].size();
      if (&iov[i] >= next) {
        // Of this span, only its last iov[i].iov_len bytes are still to go.
        char* dst = r->buf.data() + at + (len - iov[i].iov_len);
        std::memcpy(dst, iov[i].iov_base, iov[i].iov_len);
        iov[i].iov_base = dst;
      }
      at += len;
    }
    out.reset();
    s = io_->SendAll(next, left);
  }
  sending_since_.store(0);
  if (!s.ok()) SendFailed(s);
  return true;
}

void Connection::SendFailed(const Status& s) {
  send_failed_ = true;
  if (s.code() == StatusCode::kDeadlineExceeded && !expired_.exchange(true)) {
    ctx_.send_timeouts->fetch_add(1);
    spdlog::warn("nbd: {}: a reply not taken within {} ms (--nbd-send-timeout); dropping", peer_,
                 ctx_.options->send_timeout.count());
  }
  spdlog::debug("nbd: {}: sending a reply: {}; dropping the connection", peer_, s.ToString());
  // Wakes the reader; later replies are skipped.
  Shutdown(true);
}

void Connection::SendReply(uint64_t handle, uint16_t type, uint32_t error, std::string_view message,
                           const char* data, size_t len, uint64_t offset) {
  char hdr[kStructuredReplyHeaderSize + 8];
  iovec iov[2];
  int n = 0;
  if (!session_.structured_replies || (type != kCmdRead && error == 0)) {
    // Simple reply (with structured replies on, allowed for anything but a read
    // when there is no payload).
    PutBe32(hdr, kSimpleReplyMagic);
    PutBe32(hdr + 4, error);
    PutBe64(hdr + 8, handle);
    iov[n++] = {hdr, kSimpleReplyHeaderSize};
    if (error == 0 && len > 0) iov[n++] = {const_cast<char*>(data), len};
  } else {
    PutBe32(hdr, kStructuredReplyMagic);
    PutBe16(hdr + 4, kReplyFlagDone);
    PutBe64(hdr + 8, handle);
    if (error != 0) {
      // One NBD_REPLY_TYPE_ERROR chunk carrying the message for the user.
      message = message.substr(0, kMaxStringBytes);
      PutBe16(hdr + 6, kReplyTypeError);
      PutBe32(hdr + 16, static_cast<uint32_t>(6 + message.size()));
      PutBe32(hdr + 20, error);
      PutBe16(hdr + 24, static_cast<uint16_t>(message.size()));
      iov[n++] = {hdr, kStructuredReplyHeaderSize + 6};
      if (!message.empty()) iov[n++] = {const_cast<char*>(message.data()), message.size()};
    } else if (len > 0) {
      // The whole read as one NBD_REPLY_TYPE_OFFSET_DATA chunk, so NBD_CMD_FLAG_DF
      // always holds.
      PutBe16(hdr + 6, kReplyTypeOffsetData);
      PutBe32(hdr + 16, static_cast<uint32_t>(8 + len));
      PutBe64(hdr + 20, offset);
      iov[n++] = {hdr, kStructuredReplyHeaderSize + 8};
      iov[n++] = {const_cast<char*>(data), len};
    } else {
      PutBe16(hdr + 6, kReplyTypeNone);
      PutBe32(hdr + 16, 0);
      iov[n++] = {hdr, kStructuredReplyHeaderSize};
    }
  }
  // Counted before the client can see it (and send its next request).
  answered_.fetch_add(1);
  if (error != 0 || len == 0) {
    QueueReply(iov, n);
    return;
  }
  std::lock_guard lock(send_mu_);
  if (send_failed_) return;
  SendAllLocked(iov, n);
}

void Connection::SendAllLocked(iovec* iov, int n) {
  sending_since_.store(Clock::now().time_since_epoch().count());
  Status s = io_->SendAll(iov, n);
  sending_since_.store(0);
  if (!s.ok()) SendFailed(s);
}

void Connection::QueueReply(const iovec* iov, int n) {
  {
    std::lock_guard lock(reply_mu_);
    for (int i = 0; i < n; ++i) {
      queued_replies_.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
    }
    if (draining_) return;  // the draining thread sends it with the next batch
    draining_ = true;
  }
  while (true) {
    {
      std::lock_guard lock(reply_mu_);
      if (queued_replies_.empty()) {
        draining_ = false;
        return;
      }
      drain_batch_.clear();
      drain_batch_.swap(queued_replies_);
    }
    std::lock_guard lock(send_mu_);
    if (send_failed_) continue;  // later replies are skipped, as SendReply's
    iovec batch{drain_batch_.data(), drain_batch_.size()};
    SendAllLocked(&batch, 1);
  }
}

void Connection::Record(uint16_t type, uint32_t length, Clock::time_point received, bool ok) {
  const CommandSpec* spec = FindCommand(type);
  if (spec == nullptr || !spec->io_kind) return;
  uint64_t bytes = spec->length == LengthRule::kZero ? 0 : length;
  stats_->Record(*spec->io_kind, bytes, Clock::now() - received, ok);
}

}  // namespace strata::nbd
