#include "nbd_block_writer.h"

#include <cstring>

#include "copy_buffers.h"
#include "strata/storage/copy_priority.h"

namespace strata::storage {

NbdBlockWriter::NbdBlockWriter(std::vector<std::unique_ptr<nbd::NbdClient>> connections,
                               uint32_t block_size)
    : conns_(std::move(connections)), bs_(block_size) {
  for (auto& c : conns_) {
    nbd::NbdClient* conn = c.get();
    senders_.emplace_back([this, conn] { RunSender(conn); });
  }
}

NbdBlockWriter::~NbdBlockWriter() {
  (void)Close();
  for (auto& c : conns_) (void)c->Close();
}

Status NbdBlockWriter::Put(uint64_t lba, const char* block) {
  {
    std::lock_guard lock(mu_);
    if (!error_.ok()) return error_;
  }
  const uint64_t offset = lba * bs_;
  const bool zero = block == nullptr;
  if (zero) {
    if (!(pending_ && run_zero_ && offset == run_end_)) {
      STRATA_RETURN_IF_ERROR(Send());
      pending_ = true;
      run_zero_ = true;
      run_offset_ = run_end_ = offset;
    }
    run_end_ += bs_;
    return Status::Ok();
  }
  // The block where the source read it (ReadBuffer): referenced. Elsewhere: copied
  // into a buffer of our own, referenced the same way.
  const char* at = block;
  std::shared_ptr<char[]> owner = read_buf_;
  if (!read_buf_ || block < read_buf_.get() || block + bs_ > read_buf_.get() + read_buf_bytes_) {
    if (!copy_buf_ || copy_filled_ + bs_ > kCopyBufferBytes) {
      copy_buf_ = SharedCopyBuffer(kCopyBufferBytes);
      copy_filled_ = 0;
    }
    std::memcpy(copy_buf_.get() + copy_filled_, block, bs_);
    at = copy_buf_.get() + copy_filled_;
    copy_filled_ += bs_;
    owner = copy_buf_;
  }
  const bool extends = pending_ && !run_zero_ && run_mapped_.empty() && offset == run_end_ &&
                       owner == run_owner_ && at == run_data_ + (run_end_ - run_offset_) &&
                       run_end_ - run_offset_ + bs_ <= kCopyBufferBytes;
  if (!extends) {
    STRATA_RETURN_IF_ERROR(Send());
    pending_ = true;
    run_zero_ = false;
    run_offset_ = run_end_ = offset;
    run_data_ = at;
    run_owner_ = std::move(owner);
  }
  run_end_ += bs_;
  return Status::Ok();
}

namespace {

// The pins of a request's mapped runs for the NBD client's guarded send: all of them
// or none.
class RunsGuard final : public nbd::PayloadGuard {
 public:
  RunsGuard(const std::vector<std::shared_ptr<Engine::MappedRun>>& runs, uint32_t bs)
      : runs_(runs), bs_(bs) {}
  bool Pin() override {
    for (size_t i = 0; i < runs_.size(); ++i) {
      if (runs_[i]->Pin()) continue;
      while (i > 0) runs_[--i]->Unpin();
      return false;
    }
    return true;
  }
  void Unpin() override {
    for (const auto& r : runs_) r->Unpin();
  }
  Status Fallback(std::span<char> out) override {
    size_t at = 0;
    for (const auto& r : runs_) {
      const size_t n = r->blocks() * bs_;
      STRATA_RETURN_IF_ERROR(r->Reread(out.subspan(at, n)));
      at += n;
    }
    return Status::Ok();
  }

 private:
  const std::vector<std::shared_ptr<Engine::MappedRun>>& runs_;
  const uint32_t bs_;
};

}  // namespace

Status NbdBlockWriter::PutMapped(std::shared_ptr<Engine::MappedRun> run) {
  {
    std::lock_guard lock(mu_);
    if (!error_.ok()) return error_;
  }
  const uint64_t offset = run->lba() * bs_;
  const uint64_t bytes = run->blocks() * bs_;
  const bool extends = pending_ && !run_mapped_.empty() && offset == run_end_ &&
                       run_end_ - run_offset_ + bytes <= kCopyBufferBytes;
  if (!extends) {
    STRATA_RETURN_IF_ERROR(Send());
    pending_ = true;
    run_zero_ = false;
    run_offset_ = run_end_ = offset;
  }
  run_mapped_.push_back(std::move(run));
  run_end_ += bytes;
  return Status::Ok();
}

Status NbdBlockWriter::Send() {
  if (!pending_) return Status::Ok();
  pending_ = false;
  Request r{run_zero_, run_offset_,           run_end_ - run_offset_,
            run_data_, std::move(run_owner_), std::move(run_mapped_)};
  run_owner_.reset();
  run_mapped_.clear();
  return Enqueue(std::move(r));
}

Status NbdBlockWriter::Enqueue(Request r) {
  std::unique_lock lock(mu_);
  room_cv_.wait(lock, [&] { return queue_.size() < 2 * conns_.size() || !error_.ok(); });
  if (!error_.ok()) return error_;
  queue_.push_back(std::move(r));
  ready_cv_.notify_one();
  return Status::Ok();
}

void NbdBlockWriter::RunSender(nbd::NbdClient* conn) {
  BecomeCopyThread();
  for (;;) {
    Request r;
    {
      std::unique_lock lock(mu_);
      ready_cv_.wait(lock, [&] { return !queue_.empty() || closed_ || !error_.ok(); });
      if (!error_.ok() || queue_.empty()) return;
      r = std::move(queue_.front());
      queue_.pop_front();
      room_cv_.notify_one();
    }
    Status s;
    if (r.zero) {
      s = conn->WriteZeroes(r.offset, r.length);
    } else if (!r.mapped.empty()) {
      std::vector<std::span<const char>> pieces;
      pieces.reserve(r.mapped.size());
      for (const auto& m : r.mapped) pieces.emplace_back(m->data(), m->blocks() * bs_);
      RunsGuard guard(r.mapped, bs_);
      s = conn->WriteGuarded(r.offset, pieces, guard);
    } else {
      s = conn->Write(r.offset, std::span<const char>(r.data, r.length), std::move(r.owner));
    }
    if (!s.ok()) {
      std::lock_guard lock(mu_);
      if (error_.ok()) error_ = std::move(s);
      queue_.clear();
      room_cv_.notify_all();
      ready_cv_.notify_all();
      return;
    }
  }
}

Status NbdBlockWriter::Close() {
  {
    std::lock_guard lock(mu_);
    if (closed_) return error_;
    closed_ = true;
    ready_cv_.notify_all();
  }
  for (auto& t : senders_) t.join();
  for (auto& c : conns_) {
    Status w = c->Wait();
    std::lock_guard lock(mu_);
    if (error_.ok() && !w.ok()) error_ = w;
  }
  std::lock_guard lock(mu_);
  return error_;
}

std::shared_ptr<char[]> NbdBlockWriter::ReadBuffer(size_t bytes) {
  read_buf_ = SharedCopyBuffer(bytes);
  read_buf_bytes_ = bytes;
  return read_buf_;
}

Status NbdBlockWriter::Finish() {
  Status sent = Send();
  Status closed = Close();
  read_buf_.reset();
  copy_buf_.reset();
  return sent.ok() ? closed : sent;
}

}  // namespace strata::storage
