#include "connection.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <span>
#include <system_error>

#include "errors.h"
#include "strata/nbd/protocol.h"
#include "strata/storage/io_stats.h"

namespace strata::nbd {

namespace {

constexpr size_t kRxBufferSize = 128 << 10;

std::string_view CommandName(uint16_t type) {
  switch (type) {
    case kCmdRead:
      return "NBD_CMD_READ";
    case kCmdWrite:
      return "NBD_CMD_WRITE";
    case kCmdDisc:
      return "NBD_CMD_DISC";
    case kCmdFlush:
      return "NBD_CMD_FLUSH";
    case kCmdTrim:
      return "NBD_CMD_TRIM";
    case kCmdWriteZeroes:
      return "NBD_CMD_WRITE_ZEROES";
    default:
      return "command";
  }
}

bool IoKindFor(uint16_t type, storage::IoKind* kind) {
  switch (type) {
    case kCmdRead:
      *kind = storage::IoKind::kRead;
      return true;
    case kCmdWrite:
      *kind = storage::IoKind::kWrite;
      return true;
    case kCmdFlush:
      *kind = storage::IoKind::kFlush;
      return true;
    case kCmdTrim:
      *kind = storage::IoKind::kTrim;
      return true;
    case kCmdWriteZeroes:
      *kind = storage::IoKind::kWriteZeroes;
      return true;
    default:
      return false;
  }
}

}  // namespace

Connection::Connection(const ServerContext& ctx, UniqueFd fd, storage::ClientInfo client)
    : ctx_(ctx), sock_(fd.Release()), client_(std::move(client)), io_(MakePlainTransport(sock_)) {
  peer_ = client_.peer_address + " via " + client_.portal_address;
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
  config.tls_mode = opt.tls.mode;
  config.tls = ctx_.tls;
  config.send_timeout = opt.send_timeout;

  Status st = ConfigureConnection(sock_, opt.send_timeout);
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
  if (st.ok()) {
    stats_ = session_.volume->io_stats();
    spdlog::info("nbd: {}: export '{}' ({} bytes, flags {:#06x}{}, {})", peer_,
                 session_.export_name, session_.size_bytes, session_.transmission_flags,
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
  } else if (st.code() == StatusCode::kCancelled || st.code() == StatusCode::kUnavailable) {
    spdlog::debug("nbd: {}: handshake ended: {}", peer_, st.ToString());
  } else {
    spdlog::warn("nbd: {}: handshake failed: {}", peer_, st.ToString());
  }
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
    auto got = io_->RecvSome(rx_.get() + rx_end_, kRxBufferSize - rx_end_);
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

uint32_t Connection::Validate(uint16_t type, uint16_t flags, uint64_t offset, uint32_t length,
                              std::string* message) const {
  uint16_t allowed = kCmdFlagFua;  // the spec: FUA is valid (if ignorable) on every command
  switch (type) {
    case kCmdRead:
      if (session_.structured_replies) allowed |= kCmdFlagDf;
      break;
    case kCmdWrite:
    case kCmdFlush:
    case kCmdTrim:
      break;
    case kCmdWriteZeroes:
      allowed |= kCmdFlagNoHole;
      break;
    default:
      *message = "unknown command " + std::to_string(type);
      return kEinval;
  }
  if ((flags & ~allowed) != 0) {
    char buf[80];
    std::snprintf(buf, sizeof(buf), "command flags 0x%04x are not valid for ", flags);
    *message = buf + std::string(CommandName(type));
    return kEinval;
  }
  if ((type == kCmdRead || type == kCmdWrite) && length > ctx_.options->max_payload_bytes) {
    *message = std::string(CommandName(type)) + ": length " + std::to_string(length) +
               " exceeds the maximum block size " + std::to_string(ctx_.options->max_payload_bytes);
    return kEinval;
  }
  if (type == kCmdFlush) {
    if (offset != 0 || length != 0) {
      *message = "NBD_CMD_FLUSH: offset and length must be zero";
      return kEinval;
    }
    return 0;
  }
  if (session_.volume->read_only() && type != kCmdRead) {
    *message = std::string(CommandName(type)) + ": export is read-only";
    return kEperm;
  }
  uint64_t size = session_.size_bytes;
  if (length > size || offset > size - length) {
    *message = std::string(CommandName(type)) + ": range " + std::to_string(offset) + "+" +
               std::to_string(length) + " is past the end of the export (" + std::to_string(size) +
               " bytes)";
    // The spec: ENOSPC for writes past the end, EINVAL for reads and trims.
    return (type == kCmdWrite || type == kCmdWriteZeroes) ? kEnospc : kEinval;
  }
  return 0;
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

  if (r->type == kCmdDisc) {
    spdlog::debug("nbd: {}: client disconnected (NBD_CMD_DISC)", peer_);
    return false;
  }
  r->error = Validate(r->type, r->flags, r->offset, r->length, &r->message);
  if (r->type != kCmdWrite) return true;
  if (r->length > opt.max_payload_bytes) {
    // The payload cannot be skipped without reading up to 4 GiB: answer, then drop.
    spdlog::warn("nbd: {}: {}; dropping the connection", peer_, r->message);
    SendReply(r->handle, r->type, r->error, r->message, nullptr, 0, 0);
    Record(r->type, r->length, r->received, false);
    return false;
  }
  if (r->error == 0 && r->length > 0) {
    r->buf = ctx_.buffers->Get(r->length);
    if (r->buf.data() == nullptr) {
      r->error = kEnomem;
      r->message = "NBD_CMD_WRITE: out of memory for the payload";
    }
  }
  Status s = r->error != 0 ? Discard(r->length) : ReadPayload(r->buf.data(), r->length);
  if (!s.ok()) {
    spdlog::debug("nbd: {}: reading a write payload: {}", peer_, s.ToString());
    return false;
  }
  return true;
}

void Connection::ServeLoop(bool counted) {
  Request r;
  std::unique_lock lock(read_mu_);
  if (counted) waiting_readers_.fetch_sub(1);
  while (true) {
    if (!ReadRequest(&r)) {
      stop_reading_ = true;
      break;
    }
    if (r.error == 0 && r.type == kCmdRead && r.length > 0) {
      r.buf = ctx_.buffers->Get(r.length);
      if (r.buf.data() == nullptr) {
        r.error = kEnomem;
        r.message = "NBD_CMD_READ: out of memory for the reply";
      }
    }
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
    r.buf.Release();
    waiting_readers_.fetch_add(1);
    lock.lock();
    waiting_readers_.fetch_sub(1);
  }
}

void Connection::Execute(Request* r) {
  storage::Volume* volume = session_.volume.get();
  bool fua = (r->flags & kCmdFlagFua) != 0;
  Status st;
  switch (r->type) {
    case kCmdRead:
      st = volume->Read(r->offset, std::span<char>(r->buf.data(), r->length));
      break;
    case kCmdWrite:
      st = volume->Write(r->offset, std::span<const char>(r->buf.data(), r->length), fua);
      break;
    case kCmdFlush:
      st = volume->Flush();
      break;
    case kCmdTrim:
      st = volume->Trim(r->offset, r->length);
      // Volume::Trim has no FUA; a flush makes the discard durable before the reply.
      if (st.ok() && fua) st = volume->Flush();
      break;
    case kCmdWriteZeroes:
      // NBD_CMD_FLAG_NO_HOLE is accepted: the Volume interface has no way to ask for
      // provisioned zeroes, and zeroes that read back as zeroes are what it asks.
      st = volume->WriteZeroes(r->offset, r->length, fua);
      break;
    default:
      st = InternalError("unexpected command");
      break;
  }
  uint32_t error = NbdErrorFromStatus(st);
  if (error == 0 && r->type == kCmdRead) {
    SendReply(r->handle, r->type, 0, {}, r->buf.data(), r->length, r->offset);
  } else {
    if (error != 0) {
      spdlog::debug("nbd: {}: {} {}+{}: {}", peer_, CommandName(r->type), r->offset, r->length,
                    st.ToString());
    }
    SendReply(r->handle, r->type, error, st.message(), nullptr, 0, 0);
  }
  Record(r->type, r->length, r->received, error == 0);
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
  std::lock_guard lock(send_mu_);
  if (send_failed_) return;
  Status s = io_->SendAll(iov, n);
  if (!s.ok()) {
    send_failed_ = true;
    spdlog::debug("nbd: {}: sending a reply: {}; dropping the connection", peer_, s.ToString());
    // Wakes the reader; later replies are skipped.
    Shutdown(true);
  }
}

void Connection::Record(uint16_t type, uint32_t length, Clock::time_point received, bool ok) {
  storage::IoKind kind;
  if (!IoKindFor(type, &kind)) return;
  uint64_t bytes = type == kCmdFlush ? 0 : length;
  stats_->Record(kind, bytes, Clock::now() - received, ok);
}

}  // namespace strata::nbd
