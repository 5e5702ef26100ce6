#include "grpc_remote_device.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "copy_buffers.h"
#include "grpc_service.h"
#include "lun_data_wire.h"
#include "nbd_block_writer.h"
#include "proto_convert.h"
#include "strata/device/channel.h"
#include "strata/storage/copy_priority.h"

namespace strata::storage {
namespace {

constexpr size_t kMaxBatchBytes = 1 << 20;
constexpr auto kCallTimeout = std::chrono::seconds(30);
constexpr auto kChecksumCallTimeout = std::chrono::seconds(120);

using device::FromGrpc;

void SetDeadline(grpc::ClientContext* ctx) {
  ctx->set_deadline(std::chrono::system_clock::now() + kCallTimeout);
}

// A move's copy: contiguous blocks batched into LunData messages of up to 1 MiB (a
// run of holes is one zero_length message), sent over `streams` WriteLunData streams
// at once, each driven by its own thread from one queue of at most `window`
// messages. The source reads and batches the next messages while earlier ones are on
// the wire and being stored by the target, which applies each stream on its own
// thread, in parallel with the others. Messages may so land in any order: a pass
// sends each block once, and Finish waits for every stream, so a later pass never
// overtakes an earlier one. The first stream error fails every later Put and Finish;
// the move then fails and deletes the partial copy.
//
// Each message is sent as its wire bytes (lun_data_wire.h), not as a v1::LunData: a
// small encoded prefix, then the data as slices of the buffers the source read the
// blocks into (ReadBuffer: no copy) or they were copied into, all in one
// grpc::ByteBuffer that gRPC sends without copying or serialising it (the same LunData
// on the wire). Each slice holds a reference to its buffer until gRPC has sent it.
class PipelinedBlockWriter final : public BlockWriter {
 public:
  PipelinedBlockWriter(std::shared_ptr<const RawWriteLunData> rpc, std::string lun, uint32_t bs,
                       int streams, size_t window)
      : rpc_(std::move(rpc)), lun_(std::move(lun)), bs_(bs), window_(window) {
    for (int i = 0; i < streams; ++i) {
      streams_.push_back(std::make_unique<Stream>());
      Stream* st = streams_.back().get();
      st->thread = std::thread([this, st] { Run(st); });
    }
  }

  ~PipelinedBlockWriter() override { (void)Close(); }

  Status Put(uint64_t lba, const char* block) override {
    uint64_t offset = lba * bs_;
    bool zero = block == nullptr;
    bool contiguous = pending_ && offset == pending_end_ && zero == pending_zero_ &&
                      (zero || filled_ + bs_ <= kMaxBatchBytes);
    if (!contiguous) STRATA_RETURN_IF_ERROR(Send());
    if (!pending_) {
      header_ = LunDataHeader{.name = lun_, .offset = offset, .background = true};
      filled_ = 0;
      pending_ = true;
      pending_zero_ = zero;
      pending_end_ = offset;
    }
    pending_end_ += bs_;
    if (zero) {
      header_.zero_length += bs_;
      return Status::Ok();
    }
    // The block where the source read it (ReadBuffer): referenced. Elsewhere: copied
    // into a buffer of our own, referenced the same way.
    const char* at = block;
    std::shared_ptr<char[]> owner = read_buf_;
    if (!read_buf_ || block < read_buf_.get() || block + bs_ > read_buf_.get() + read_buf_bytes_) {
      if (!copy_buf_ || copy_filled_ + bs_ > kMaxBatchBytes) {
        copy_buf_ = SharedCopyBuffer(kMaxBatchBytes);
        copy_filled_ = 0;
      }
      std::memcpy(copy_buf_.get() + copy_filled_, block, bs_);
      at = copy_buf_.get() + copy_filled_;
      copy_filled_ += bs_;
      owner = copy_buf_;
    }
    if (!pieces_.empty() && pieces_.back().owner == owner &&
        pieces_.back().data + pieces_.back().size == at) {
      pieces_.back().size += bs_;
    } else {
      pieces_.push_back(Piece{std::move(owner), at, bs_});
    }
    filled_ += bs_;
    return Status::Ok();
  }

  std::shared_ptr<char[]> ReadBuffer(size_t bytes) override {
    read_buf_ = SharedCopyBuffer(bytes);
    read_buf_bytes_ = bytes;
    return read_buf_;
  }

  Status Finish() override {
    Status sent = Send();
    Status closed = Close();
    return sent.ok() ? closed : sent;
  }

 private:
  struct Stream {
    grpc::ClientContext ctx;
    v1::WriteLunDataResponse resp;
    std::unique_ptr<grpc::ClientWriter<grpc::ByteBuffer>> writer;  // opened on its first message
    std::thread thread;
  };

  // Bytes of a message's data in a buffer it holds a reference to.
  struct Piece {
    std::shared_ptr<char[]> owner;
    const char* data;
    size_t size;
  };

  // A grpc::Slice destroy callback: user_data is a heap copy of the owning reference.
  static void ReleasePiece(void* owner) { delete static_cast<std::shared_ptr<char[]>*>(owner); }

  // Queues the batch being built; waits while the window is full.
  Status Send() {
    if (!pending_) return Status::Ok();
    pending_ = false;
    std::vector<grpc::Slice> slices;
    slices.reserve(1 + pieces_.size());
    slices.emplace_back(EncodeLunDataPrefix(header_, filled_));
    for (auto& p : pieces_) {
      slices.emplace_back(const_cast<char*>(p.data), p.size, &ReleasePiece,
                          new std::shared_ptr<char[]>(std::move(p.owner)));
    }
    pieces_.clear();
    grpc::ByteBuffer msg(slices.data(), slices.size());
    std::unique_lock lock(mu_);
    room_cv_.wait(lock, [&] { return queue_.size() < window_ || !error_.ok(); });
    if (!error_.ok()) return error_;
    queue_.push_back(std::move(msg));
    ready_cv_.notify_one();
    return Status::Ok();
  }

  // Ends every stream once the queue is drained; the first error of any.
  Status Close() {
    {
      std::lock_guard lock(mu_);
      if (closed_) return error_;
      closed_ = true;
      ready_cv_.notify_all();
    }
    for (auto& st : streams_) st->thread.join();
    std::lock_guard lock(mu_);
    return error_;
  }

  void Fail(Status s) {
    std::lock_guard lock(mu_);
    if (error_.ok()) error_ = std::move(s);
    queue_.clear();
    room_cv_.notify_all();
    ready_cv_.notify_all();
  }

  void Run(Stream* st) {
    BecomeCopyThread();
    for (;;) {
      grpc::ByteBuffer msg;
      {
        std::unique_lock lock(mu_);
        ready_cv_.wait(lock, [&] { return !queue_.empty() || closed_ || !error_.ok(); });
        if (!error_.ok() || queue_.empty()) break;
        msg = std::move(queue_.front());
        queue_.pop_front();
        room_cv_.notify_one();
      }
      if (!st->writer) st->writer = rpc_->Open(&st->ctx, &st->resp);
      if (!st->writer->Write(msg)) {
        Status s = FromGrpc(st->writer->Finish(), "WriteLunData " + lun_ + " (stream broken)");
        Fail(s.ok() ? UnavailableError("WriteLunData " + lun_ + ": stream closed by the target")
                    : s);
        return;
      }
    }
    if (!st->writer) return;
    st->writer->WritesDone();
    Status s = FromGrpc(st->writer->Finish(), "WriteLunData " + lun_);
    if (!s.ok()) Fail(s);
  }

  const std::shared_ptr<const RawWriteLunData> rpc_;
  const std::string lun_;
  const uint32_t bs_;
  const size_t window_;
  // The batch being built; only the thread calling Put, ReadBuffer and Finish touches
  // these.
  LunDataHeader header_;
  std::vector<Piece> pieces_;         // its data
  size_t filled_ = 0;                 // bytes in pieces_
  std::shared_ptr<char[]> read_buf_;  // the last ReadBuffer
  size_t read_buf_bytes_ = 0;
  std::shared_ptr<char[]> copy_buf_;  // where blocks from elsewhere are copied
  size_t copy_filled_ = 0;
  bool pending_ = false;
  bool pending_zero_ = false;
  uint64_t pending_end_ = 0;

  std::mutex mu_;
  std::condition_variable ready_cv_;    // waits on mu_: a message queued, closed or failed
  std::condition_variable room_cv_;     // waits on mu_: room in the queue, or failed
  std::deque<grpc::ByteBuffer> queue_;  // guarded by mu_
  bool closed_ = false;                 // guarded by mu_
  Status error_;                        // guarded by mu_: the first failure
  std::vector<std::unique_ptr<Stream>> streams_;
};

class GrpcRemoteVolume final : public Volume {
 public:
  GrpcRemoteVolume(std::string address, std::string lun)
      : address_(std::move(address)),
        lun_(std::move(lun)),
        stub_(v1::StorageDevice::NewStub(device::NewDeviceChannel(address_))) {}

  uint64_t size_bytes() const override { return 0; }  // the proxying LUN knows its size
  uint32_t block_size() const override { return 4096; }
  bool read_only() const override { return false; }

  // Requests are split into 1 MiB messages: gRPC refuses messages over 4 MiB by
  // default, and NBD requests go up to 32 MiB.
  Status Read(uint64_t offset, std::span<char> out) override {
    for (size_t done = 0; done < out.size();) {
      size_t n = std::min(out.size() - done, kMaxBatchBytes);
      grpc::ClientContext ctx;
      SetDeadline(&ctx);
      v1::ReadLunDataRequest req;
      req.set_name(lun_);
      req.set_offset(offset + done);
      req.set_length(n);
      v1::LunData resp;
      STRATA_RETURN_IF_ERROR(FromGrpc(stub_->ReadLunData(&ctx, req, &resp), Where()));
      if (resp.data().size() != n) {
        return InternalError(Where() + ": short read from the device the LUN moved to");
      }
      std::memcpy(out.data() + done, resp.data().data(), n);
      done += n;
    }
    return Status::Ok();
  }

  Status Write(uint64_t offset, std::span<const char> data, bool fua) override {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::WriteLunDataResponse resp;
    auto writer = stub_->WriteLunData(&ctx, &resp);
    for (size_t done = 0; done < data.size();) {
      size_t n = std::min(data.size() - done, kMaxBatchBytes);
      v1::LunData msg;
      msg.set_name(lun_);
      msg.set_offset(offset + done);
      msg.set_data(data.data() + done, n);
      msg.set_fua(fua && done + n == data.size());
      if (!writer->Write(msg)) break;  // Finish reports why
      done += n;
    }
    writer->WritesDone();
    return FromGrpc(writer->Finish(), Where());
  }

  Status WriteZeroes(uint64_t offset, uint64_t length, bool fua) override {
    v1::LunData msg;
    msg.set_name(lun_);
    msg.set_offset(offset);
    msg.set_zero_length(length);
    msg.set_fua(fua);
    return WriteOne(msg);
  }

  Status Trim(uint64_t offset, uint64_t length) override {
    return WriteZeroes(offset, length, false);
  }

  Status Flush() override {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::FlushLunRequest req;
    req.set_name(lun_);
    v1::FlushLunResponse resp;
    return FromGrpc(stub_->FlushLun(&ctx, req, &resp), Where());
  }

  LunIoStats* io_stats() override { return &stats_; }

 private:
  std::string Where() const { return "LUN " + lun_ + " on " + address_; }

  Status WriteOne(const v1::LunData& msg) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::WriteLunDataResponse resp;
    auto writer = stub_->WriteLunData(&ctx, &resp);
    writer->Write(msg);
    writer->WritesDone();
    return FromGrpc(writer->Finish(), Where());
  }

  const std::string address_;
  const std::string lun_;
  std::unique_ptr<v1::StorageDevice::Stub> stub_;
  LunIoStats stats_;
};

}  // namespace

std::shared_ptr<Volume> OpenGrpcRemoteVolume(const std::string& address, const std::string& lun) {
  return std::make_shared<GrpcRemoteVolume>(address, lun);
}

RawWriteLunData::RawWriteLunData(std::shared_ptr<grpc::Channel> channel)
    : channel_(std::move(channel)),
      method_(WriteLunDataMethodPath().c_str(), grpc::internal::RpcMethod::CLIENT_STREAMING,
              channel_) {}

std::unique_ptr<grpc::ClientWriter<grpc::ByteBuffer>> RawWriteLunData::Open(
    grpc::ClientContext* ctx, v1::WriteLunDataResponse* resp) const {
  // What the generated stub's WriteLunData does, with the message type ByteBuffer
  // (grpc::SerializationTraits<ByteBuffer>: sent as is).
  return std::unique_ptr<grpc::ClientWriter<grpc::ByteBuffer>>(
      grpc::internal::ClientWriterFactory<grpc::ByteBuffer>::Create(channel_.get(), method_, ctx,
                                                                    resp));
}

Result<MoveDataPath> ParseMoveDataPath(const std::string& value, const std::string& flag) {
  if (value == "auto") return MoveDataPath::kAuto;
  if (value == "grpc") return MoveDataPath::kGrpc;
  return InvalidArgumentError(flag + ": '" + value + "' is not auto or grpc");
}

GrpcRemoteDevice::GrpcRemoteDevice(std::string address, int copy_streams, MoveDataPath data_path)
    : address_(std::move(address)),
      copy_streams_(std::max(1, copy_streams)),
      data_path_(data_path),
      channel_(device::NewDeviceChannel(address_)),
      stub_(v1::StorageDevice::NewStub(channel_)),
      write_rpc_(std::make_shared<RawWriteLunData>(channel_)) {}

Result<std::optional<std::string>> GrpcRemoteDevice::LunWwn(const std::string& name) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::GetLunRequest req;
  req.set_name(name);
  v1::Lun resp;
  grpc::Status s = stub_->GetLun(&ctx, req, &resp);
  if (s.error_code() == grpc::StatusCode::NOT_FOUND) return std::optional<std::string>();
  STRATA_RETURN_IF_ERROR(FromGrpc(s, "GetLun on " + address_));
  {
    std::lock_guard lock(mu_);
    wwns_[name] = resp.wwn();
  }
  return std::optional<std::string>(resp.wwn());
}

Status GrpcRemoteDevice::CreateLun(const LunSpec& spec) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::CreateLunRequest req;
  req.set_name(spec.name);
  req.set_size_bytes(spec.size_bytes);
  if (spec.tier) req.set_tier(ToProto(*spec.tier));
  req.set_dedup(spec.dedup);
  req.set_owner(spec.owner);
  req.mutable_access();
  for (const auto& c : spec.allowed_clients) req.mutable_access()->add_allowed_clients(c);
  for (const auto& id : spec.allowed_identities) req.mutable_access()->add_allowed_identities(id);
  req.set_wwn(spec.wwn);
  req.mutable_metadata()->insert(spec.metadata.begin(), spec.metadata.end());
  v1::Lun resp;
  Status s = FromGrpc(stub_->CreateLun(&ctx, req, &resp), "CreateLun on " + address_);
  if (s.ok()) {
    std::lock_guard lock(mu_);
    wwns_[spec.name] = resp.wwn();
  }
  return s;
}

Status GrpcRemoteDevice::DeleteLun(const std::string& name) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::DeleteLunRequest req;
  req.set_name(name);
  v1::DeleteLunResponse resp;
  return FromGrpc(stub_->DeleteLun(&ctx, req, &resp), "DeleteLun on " + address_);
}

Status GrpcRemoteDevice::AcceptLun(const std::string& name, const std::string& wwn) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::AcceptLunRequest req;
  req.set_name(name);
  req.set_wwn(wwn);
  v1::Lun resp;
  return FromGrpc(stub_->AcceptLun(&ctx, req, &resp), "AcceptLun on " + address_);
}

Result<std::unique_ptr<BlockWriter>> GrpcRemoteDevice::OpenWriter(const std::string& lun,
                                                                  uint32_t block_size) {
  if (block_size == 0 || block_size > kMaxBatchBytes) {
    return InvalidArgumentError("block size " + std::to_string(block_size) +
                                ": a move copies blocks of 1 byte to 1 MiB");
  }
  if (data_path_ == MoveDataPath::kAuto) {
    auto w = OpenNbdWriter(lun, block_size);
    if (w.ok()) return w;
    // Any reason (an older target, NBD with TLS only, a portal this host cannot
    // reach): the copy still goes, over gRPC.
    spdlog::info("move of LUN {} to {}: copying over WriteLunData ({})", lun, address_,
                 w.status().ToString());
  }
  return std::unique_ptr<BlockWriter>(new PipelinedBlockWriter(
      write_rpc_, lun, block_size, copy_streams_, 2 * static_cast<size_t>(copy_streams_)));
}

Result<std::unique_ptr<BlockWriter>> GrpcRemoteDevice::OpenNbdWriter(const std::string& lun,
                                                                     uint32_t block_size) {
  std::string wwn;
  {
    std::lock_guard lock(mu_);
    if (nbd_refused_) return FailedPreconditionError("the target offered no move export before");
    auto it = wwns_.find(lun);
    if (it != wwns_.end()) wwn = it->second;
  }
  if (wwn.empty()) {
    STRATA_ASSIGN_OR_RETURN(auto w, LunWwn(lun));
    if (!w) return NotFoundError("LUN " + lun + " is not on " + address_);
    wwn = *w;
  }
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::OpenMoveExportRequest req;
  req.set_name(lun);
  req.set_wwn(wwn);
  v1::MoveExport resp;
  grpc::Status gs = stub_->OpenMoveExport(&ctx, req, &resp);
  if (gs.error_code() == grpc::StatusCode::UNIMPLEMENTED ||
      gs.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
    std::lock_guard lock(mu_);
    nbd_refused_ = true;
  }
  STRATA_RETURN_IF_ERROR(FromGrpc(gs, "OpenMoveExport on " + address_));
  // A wildcard portal means the host we reached the management API on.
  auto mgmt = ParseHostPort(address_, "address");
  std::vector<HostPort> portals;
  for (const auto& p : resp.portals()) {
    auto hp = ParseHostPort(p, "portals");
    if (!hp.ok()) continue;
    if ((hp->host.empty() || hp->host == "0.0.0.0" || hp->host == "::") && mgmt.ok()) {
      hp->host = mgmt->host;
    }
    // The portal on the management API's host first: the route we know works.
    if (mgmt.ok() && hp->host == mgmt->host) {
      portals.insert(portals.begin(), *hp);
    } else {
      portals.push_back(*hp);
    }
  }
  if (portals.empty())
    return FailedPreconditionError("OpenMoveExport on " + address_ + ": no portal");
  nbd::NbdClientOptions options;
  options.max_in_flight = kNbdInFlightPerConnection;
  Status last;
  for (const HostPort& portal : portals) {
    std::vector<std::unique_ptr<nbd::NbdClient>> conns;
    for (int i = 0; i < kNbdConnections; ++i) {
      auto c = nbd::NbdClient::Connect(portal, resp.export_name(), options);
      if (!c.ok()) {
        last = c.status();
        break;
      }
      if (c.value()->details().max_payload_bytes < kMaxBatchBytes) {
        return FailedPreconditionError("NBD " + portal.ToString() + ": takes requests of at most " +
                                       std::to_string(c.value()->details().max_payload_bytes) +
                                       " bytes, a move sends 1 MiB");
      }
      conns.push_back(std::move(c).value());
    }
    if (static_cast<int>(conns.size()) == kNbdConnections) {
      spdlog::info("move of LUN {} to {}: copying over NBD {} ({} connections)", lun, address_,
                   portal.ToString(), kNbdConnections);
      return std::unique_ptr<BlockWriter>(new NbdBlockWriter(std::move(conns), block_size));
    }
  }
  return last;
}

Status GrpcRemoteDevice::Flush(const std::string& lun) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::FlushLunRequest req;
  req.set_name(lun);
  v1::FlushLunResponse resp;
  return FromGrpc(stub_->FlushLun(&ctx, req, &resp), "FlushLun on " + address_);
}

std::shared_ptr<Volume> GrpcRemoteDevice::OpenVolume(const std::string& lun) {
  return OpenGrpcRemoteVolume(address_, lun);
}

Result<std::vector<uint64_t>> GrpcRemoteDevice::LunChecksums(const std::string& lun,
                                                             uint64_t range_bytes, uint64_t offset,
                                                             uint64_t length) {
  // Calls of at most 8 GiB (and the server's range limit), so each one ends well
  // inside its deadline even on slow disks.
  const uint64_t per_call =
      std::max<uint64_t>(1, std::min<uint64_t>(Engine::kMaxChecksumRanges,
                                               (8ull << 30) / std::max<uint64_t>(range_bytes, 1))) *
      range_bytes;
  std::vector<uint64_t> out;
  const uint64_t end = offset + length;
  for (uint64_t at = offset; at < end; at += per_call) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kChecksumCallTimeout);
    v1::GetLunChecksumsRequest req;
    req.set_name(lun);
    req.set_range_bytes(range_bytes);
    req.set_offset(at);
    req.set_length(std::min(per_call, end - at));
    v1::LunChecksums resp;
    STRATA_RETURN_IF_ERROR(
        FromGrpc(stub_->GetLunChecksums(&ctx, req, &resp), "GetLunChecksums on " + address_));
    out.insert(out.end(), resp.xxh3().begin(), resp.xxh3().end());
  }
  return out;
}

}  // namespace strata::storage
