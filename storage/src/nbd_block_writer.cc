#include "nbd_block_writer.h"

#include <cstring>

#include "copy_buffers.h"

namespace strata::storage {

NbdBlockWriter::NbdBlockWriter(std::vector<std::unique_ptr<nbd::NbdClient>> connections,
                               uint32_t block_size)
    : conns_(std::move(connections)), bs_(block_size) {}

NbdBlockWriter::~NbdBlockWriter() {
  for (auto& c : conns_) (void)c->Close();
}

Status NbdBlockWriter::Put(uint64_t lba, const char* block) {
  if (!error_.ok()) return error_;
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
  const bool extends = pending_ && !run_zero_ && offset == run_end_ && owner == run_owner_ &&
                       at == run_data_ + (run_end_ - run_offset_) &&
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

Status NbdBlockWriter::Send() {
  if (!pending_) return Status::Ok();
  pending_ = false;
  nbd::NbdClient* c = conns_[next_conn_].get();
  next_conn_ = (next_conn_ + 1) % conns_.size();
  Status s;
  if (run_zero_) {
    s = c->WriteZeroes(run_offset_, run_end_ - run_offset_);
  } else {
    s = c->Write(run_offset_, std::span<const char>(run_data_, run_end_ - run_offset_),
                 std::move(run_owner_));
  }
  run_owner_.reset();
  if (!s.ok() && error_.ok()) error_ = s;
  return s;
}

std::shared_ptr<char[]> NbdBlockWriter::ReadBuffer(size_t bytes) {
  read_buf_ = SharedCopyBuffer(bytes);
  read_buf_bytes_ = bytes;
  return read_buf_;
}

Status NbdBlockWriter::Finish() {
  if (finished_) return error_;
  finished_ = true;
  Status s = Send();
  for (auto& c : conns_) {
    Status w = c->Wait();
    if (error_.ok() && !w.ok()) error_ = w;
  }
  if (error_.ok() && !s.ok()) error_ = s;
  read_buf_.reset();
  copy_buf_.reset();
  return error_;
}

}  // namespace strata::storage
