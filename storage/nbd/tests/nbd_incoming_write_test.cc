// Large WRITE payloads received where the volume wants them (Volume::BeginWrite ->
// IncomingWrite): the server asks for every WRITE of kLeanPayloadBytes (32 KiB) or
// more, lands the bytes already in its receive buffer first, then the socket's, piece
// by piece, commits once all arrived, abandons on a client gone mid-payload, and
// answers a Commit error with the NBD error.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>

#include "nbd_test_fixture.h"
#include "scratch_file.h"

namespace strata::nbd::test {
namespace {

// A MemVolume whose large writes arrive through an IncomingWrite: its spaces are
// pieces of `piece` bytes of a buffer of its own; Commit writes the buffer to the
// MemVolume (or fails with the injected status).
class IncomingVolume final : public storage::Volume {
 public:
  explicit IncomingVolume(uint64_t size) : inner_(size) {}

  uint64_t size_bytes() const override { return inner_.size_bytes(); }
  uint32_t block_size() const override { return inner_.block_size(); }
  bool read_only() const override { return inner_.read_only(); }
  Status Read(uint64_t offset, std::span<char> out) override { return inner_.Read(offset, out); }
  Status Write(uint64_t offset, std::span<const char> data, bool fua) override {
    return inner_.Write(offset, data, fua);
  }
  Status WriteZeroes(uint64_t offset, uint64_t length, bool fua) override {
    return inner_.WriteZeroes(offset, length, fua);
  }
  Status Trim(uint64_t offset, uint64_t length) override { return inner_.Trim(offset, length); }
  Status Flush() override { return inner_.Flush(); }
  storage::LunIoStats* io_stats() override { return inner_.io_stats(); }

  std::unique_ptr<storage::IncomingWrite> BeginWrite(
      uint64_t offset, uint32_t length, bool fua, const storage::IncomingPayload& payload) override;

  // Spans over a copy of the range, cut in three, counted.
  std::unique_ptr<storage::OutgoingRead> BeginRead(uint64_t offset, uint32_t length) override;

  // Test controls and observations.
  MemVolume& inner() { return inner_; }
  std::atomic<size_t> piece{7 << 10};
  // > 0: NextSpaces offers up to this many pieces, laid out in reverse order in the
  // volume's buffer (scattered, as a dedup write's slots may be).
  std::atomic<size_t> scatter{0};
  std::atomic<size_t> vectored_asks{0};  // NextSpaces calls that took several spaces
  std::atomic<bool> decline{false};      // BeginWrite returns nullptr
  std::atomic<bool> whole{false};        // writes say WholeReceives
  std::atomic<size_t> held_bytes{0};     // bytes given to Land, all writes
  std::atomic<int> partial_receives{0};  // Received(n) short of what NextSpaces offered
  void FailCommits(Status s) {
    std::lock_guard lock(mu_);
    commit_error_ = std::move(s);
  }
  std::atomic<int> begun{0}, committed{0}, abandoned{0};
  std::atomic<int> queued_begins{0};      // BeginWrite told the payload was queued
  std::atomic<size_t> first_received{0};  // the first Received's n of the last write
  std::atomic<size_t> received_calls{0};  // Received calls, all writes
  std::atomic<bool> last_fua{false};
  std::atomic<bool> last_queued{false};  // what the last BeginWrite was told
  std::atomic<bool> decline_reads{false};
  std::atomic<int> reads_begun{0}, reads_ended{0};
  // >= 0: writes whose BeginWrite says IncomingPayload::to_file take their payload as
  // ranges of this file (NextFileSpace, `piece` bytes at most, at the write's offset in
  // it); Commit reads it back from there.
  std::atomic<int> file_fd{-1};
  std::atomic<int> to_file_begins{0};     // BeginWrite told the caller writes files
  std::atomic<size_t> file_asks{0};       // NextFileSpace calls that gave a range
  std::atomic<size_t> landed_to_file{0};  // bytes Land wrote into the file

 private:
  class Incoming;
  class Outgoing;
  MemVolume inner_;
  std::mutex mu_;
  Status commit_error_;  // guarded by mu_
  friend class Incoming;
  friend class Outgoing;
};

class IncomingVolume::Incoming final : public storage::IncomingWrite {
 public:
  Incoming(IncomingVolume* v, uint64_t offset, uint32_t length, bool fua, int fd)
      : v_(v), offset_(offset), fua_(fua), fd_(fd), buf_(length, '\0') {}
  ~Incoming() override {
    if (!committed_) v_->abandoned.fetch_add(1);
  }
  std::span<char> NextSpace() override {
    std::span<char> space;
    NextSpaces(&space, 1);
    return space;
  }
  size_t NextSpaces(std::span<char>* out, size_t max) override {
    const size_t piece = v_->piece.load();
    const size_t limit = std::max<size_t>(1, std::min(max, v_->scatter.load()));
    size_t count = 0;
    for (size_t at = landed_; count < limit && at < buf_.size(); ++count) {
      const size_t n = std::min(piece - at % piece, buf_.size() - at);
      out[count] = {Place(at), n};
      at += n;
    }
    if (count > 1) v_->vectored_asks.fetch_add(1);
    offered_ = 0;
    for (size_t i = 0; i < count; ++i) offered_ += out[i].size();
    return count;
  }
  bool WholeReceives() const override { return v_->whole.load(); }
  FileSpace NextFileSpace() override {
    if (fd_ < 0 || landed_ >= buf_.size()) return {};
    v_->file_asks.fetch_add(1);
    const size_t piece = v_->piece.load();
    offered_ = std::min(piece - landed_ % piece, buf_.size() - landed_);
    return FileSpace{fd_, offset_ + landed_, offered_};
  }
  Status Land(std::span<const char> bytes) override {
    v_->held_bytes.fetch_add(bytes.size());
    if (fd_ >= 0) {
      if (::pwrite(fd_, bytes.data(), bytes.size(), static_cast<off_t>(offset_ + landed_)) !=
          static_cast<ssize_t>(bytes.size())) {
        return ErrnoError("pwrite", errno);
      }
      v_->landed_to_file.fetch_add(bytes.size());
      landing_ = true;
      Received(bytes.size());
      landing_ = false;
      return Status::Ok();
    }
    landing_ = true;
    Status s = IncomingWrite::Land(bytes);
    landing_ = false;
    return s;
  }
  void Received(size_t n) override {
    if (!landing_ && n != offered_) v_->partial_receives.fetch_add(1);
    EXPECT_GT(n, 0u);
    EXPECT_LE(landed_ + n, buf_.size());
    if (landed_ == 0) v_->first_received.store(n);
    landed_ += n;
    v_->received_calls.fetch_add(1);
  }
  Status Commit() override {
    EXPECT_EQ(landed_, buf_.size()) << "Commit before every byte landed";
    committed_ = true;
    v_->committed.fetch_add(1);
    v_->last_fua.store(fua_);
    {
      std::lock_guard lock(v_->mu_);
      if (!v_->commit_error_.ok()) return v_->commit_error_;
    }
    if (fd_ >= 0) {
      if (::pread(fd_, buf_.data(), buf_.size(), static_cast<off_t>(offset_)) !=
          static_cast<ssize_t>(buf_.size())) {
        return InternalError("pread");
      }
      return v_->inner_.Write(offset_, buf_, fua_);
    }
    std::string in_order(buf_.size(), '\0');
    for (size_t at = 0; at < buf_.size(); at += v_->piece.load()) {
      const size_t n = std::min(v_->piece.load(), buf_.size() - at);
      std::memcpy(in_order.data() + at, Place(at), n);
    }
    return v_->inner_.Write(offset_, in_order, fua_);
  }

 private:
  // Where payload byte `at` lives: piece i of the payload at piece (last - i) of buf_
  // when scattered, else in place.
  char* Place(size_t at) {
    if (v_->scatter.load() == 0) return buf_.data() + at;
    const size_t piece = v_->piece.load();
    const size_t pieces = (buf_.size() + piece - 1) / piece;
    const size_t i = at / piece;
    const size_t base = (pieces - 1 - i) * piece;
    // The last piece may be short: reversed, it sits at the front, so others shift.
    const size_t tail = buf_.size() - (pieces - 1) * piece;
    const size_t start = i == pieces - 1 ? 0 : base - piece + tail;
    return buf_.data() + start + at % piece;
  }
  IncomingVolume* v_;
  uint64_t offset_;
  bool fua_;
  int fd_;  // the volume's file when the payload goes there, else -1
  std::string buf_;
  size_t landed_ = 0;
  size_t offered_ = 0;    // bytes the last NextSpaces offered
  bool landing_ = false;  // inside Land (its pieces need not fill a space)
  bool committed_ = false;
};

std::unique_ptr<storage::IncomingWrite> IncomingVolume::BeginWrite(
    uint64_t offset, uint32_t length, bool fua, const storage::IncomingPayload& payload) {
  if (decline.load()) return nullptr;
  begun.fetch_add(1);
  if (payload.queued) queued_begins.fetch_add(1);
  last_queued.store(payload.queued);
  if (payload.to_file) to_file_begins.fetch_add(1);
  return std::make_unique<Incoming>(this, offset, length, fua,
                                    payload.to_file ? file_fd.load() : -1);
}

class IncomingVolume::Outgoing final : public storage::OutgoingRead {
 public:
  Outgoing(IncomingVolume* v, std::string bytes) : v_(v), bytes_(std::move(bytes)) {
    const size_t third = bytes_.size() / 3;
    spans_ = {{bytes_.data(), third},
              {bytes_.data() + third, third},
              {bytes_.data() + 2 * third, bytes_.size() - 2 * third}};
  }
  ~Outgoing() override { v_->reads_ended.fetch_add(1); }
  std::span<const std::span<const char>> Spans() const override { return spans_; }

 private:
  IncomingVolume* v_;
  std::string bytes_;
  std::vector<std::span<const char>> spans_;
};

std::unique_ptr<storage::OutgoingRead> IncomingVolume::BeginRead(uint64_t offset, uint32_t length) {
  if (decline_reads.load()) return nullptr;
  std::string bytes(length, '\0');
  if (!inner_.Read(offset, bytes).ok()) return nullptr;
  reads_begun.fetch_add(1);
  return std::make_unique<Outgoing>(this, std::move(bytes));
}

class NbdIncomingWriteTest : public NbdServerTest {
 protected:
  void SetUp() override {
    NbdServerTest::SetUp();
    vol_ = std::make_shared<IncomingVolume>(16 << 20);
    catalog_.Add("inc", vol_);
  }
  std::string Contents(uint64_t offset, size_t n) {
    std::string out(n, '\0');
    EXPECT_TRUE(vol_->inner().Read(offset, out).ok());
    return out;
  }
  std::shared_ptr<IncomingVolume> vol_;
};

TEST_F(NbdIncomingWriteTest, LargeWritesLandPieceByPieceAndSmallOnesTakeTheBufferPath) {
  StartServer();
  auto c = Open("inc");
  ASSERT_NE(c, nullptr);
  const std::string big = Pattern(1 << 20, 11);
  auto w = c->Write(4096 + 17, big);  // unaligned
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->error, 0u);
  EXPECT_EQ(vol_->begun.load(), 1);
  EXPECT_EQ(vol_->committed.load(), 1);
  EXPECT_EQ(vol_->abandoned.load(), 0);
  // 7 KiB pieces: at least one receive per piece.
  EXPECT_GE(vol_->received_calls.load(), size_t{(1 << 20) / (7 << 10)});
  EXPECT_TRUE(Contents(4096 + 17, big.size()) == big);
  EXPECT_TRUE(c->Read(4096 + 17, 1 << 20)->data == big);

  // Below 32 KiB: Write with the server's buffer, no BeginWrite.
  const std::string small = Pattern((32 << 10) - 1, 12);
  EXPECT_EQ(c->Write(8 << 20, small)->error, 0u);
  EXPECT_EQ(vol_->begun.load(), 1);
  EXPECT_EQ(vol_->inner().counters().writes, 2u);  // the commit's Write and this one
  EXPECT_TRUE(Contents(8 << 20, small.size()) == small);

  // Exactly 32 KiB, with FUA: through the seam, FUA handed to BeginWrite.
  const std::string edge = Pattern(32 << 10, 13);
  EXPECT_EQ(c->Write(9 << 20, edge, kCmdFlagFua)->error, 0u);
  EXPECT_EQ(vol_->begun.load(), 2);
  EXPECT_TRUE(vol_->last_fua.load());
  EXPECT_EQ(vol_->inner().counters().fua_writes, 1u);
  EXPECT_TRUE(Contents(9 << 20, edge.size()) == edge);
}

// A volume that offers several places per receive (IncomingWrite::NextSpaces): the
// server receives into all of them at once, every byte in payload order.
TEST_F(NbdIncomingWriteTest, ScatteredSpacesTakeOneReceiveForSeveral) {
  StartServer();
  vol_->piece.store(4 << 10);
  vol_->scatter.store(32);
  auto c = Open("inc");
  ASSERT_NE(c, nullptr);
  const std::string big = Pattern((1 << 20) + 1234, 21);
  auto w = c->Write(8192 + 5, big);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->error, 0u);
  EXPECT_EQ(vol_->committed.load(), 1);
  EXPECT_GT(vol_->vectored_asks.load(), 0u);
  EXPECT_TRUE(Contents(8192 + 5, big.size()) == big);
  // More writes on the connection, of sizes that end mid-piece.
  for (int i = 0; i < 8; ++i) {
    const std::string data = Pattern((64 << 10) + 4096 * i + 7 * i, 30 + i);
    EXPECT_EQ(c->Write((1 << 20) * (i + 2), data)->error, 0u);
    EXPECT_TRUE(Contents((1 << 20) * (i + 2), data.size()) == data) << i;
  }
  EXPECT_EQ(vol_->committed.load(), 9);
  EXPECT_EQ(vol_->abandoned.load(), 0);
}

TEST_F(NbdIncomingWriteTest, DeclinedWritesTakeTheBufferPath) {
  StartServer();
  vol_->decline.store(true);
  auto c = Open("inc");
  const std::string big = Pattern(300 << 10, 14);
  EXPECT_EQ(c->Write(0, big)->error, 0u);
  EXPECT_EQ(vol_->begun.load(), 0);
  EXPECT_TRUE(Contents(0, big.size()) == big);
}

// One thread per connection, whose first write blocks in the volume until the test
// has sent what it wants queued behind it: the next request is then read from what
// the socket holds at that moment.
class NbdIncomingWriteQueuedTest : public NbdIncomingWriteTest {
 protected:
  void SetUp() override {
    NbdIncomingWriteTest::SetUp();
    vol_->inner().SetBeforeOpHook([this](storage::IoKind kind) {
      if (kind != storage::IoKind::kWrite || writes_.fetch_add(1) != 0) return;
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(10), [&] { return released_; });
    });
    NbdServerOptions opt;
    opt.threads_per_connection = 1;
    StartServer(opt);
    vol_->piece.store(1 << 20);  // one space for the whole payload
  }
  void ReleaseFirstWrite() {
    {
      std::lock_guard lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
  }
  std::atomic<int> writes_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
};

TEST_F(NbdIncomingWriteQueuedTest, BytesAlreadyBufferedLandFirst) {
  // After a small write the reader fills its whole buffer: the next write's header
  // and the 10 KiB of its payload sent so far; the rest comes later from the socket
  // (30 KiB missing: fewer than kAwaitPayloadBytes, so not waited for).
  auto c = Open("inc");
  ASSERT_NE(c, nullptr);
  const std::string small = Pattern(100, 15);
  const std::string big = Pattern(40 << 10, 16);
  ASSERT_TRUE(c->SendRequest(kCmdWrite, 0, 1, 0, 100, small).ok());
  ASSERT_TRUE(c->SendRequest(kCmdWrite, 0, 2, 1 << 20, 40 << 10, big.substr(0, 10 << 10)).ok());
  ReleaseFirstWrite();
  auto r = c->ReadReply();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->handle, 1u);
  EXPECT_EQ(r->error, 0u);
  EXPECT_TRUE(WaitFor([&] { return vol_->first_received.load() != 0; }));
  ASSERT_TRUE(c->SendRaw(big.substr(10 << 10)).ok());
  r = c->ReadReply();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->handle, 2u);
  EXPECT_EQ(r->error, 0u);
  EXPECT_EQ(vol_->begun.load(), 1);
  EXPECT_EQ(vol_->committed.load(), 1);
  EXPECT_EQ(vol_->queued_begins.load(), 0);  // 30 KiB had not arrived
  EXPECT_EQ(vol_->first_received.load(), size_t{10 << 10});
  EXPECT_TRUE(Contents(0, 100) == small);
  EXPECT_TRUE(Contents(1 << 20, big.size()) == big);
}

TEST_F(NbdIncomingWriteQueuedTest, AWriteOfLiveBytesGetsEachSpaceInOneReceive) {
  // A volume that stores in place (WholeReceives): the bytes read with the header go
  // to Land, then every receive fills all the spaces it was given, however the rest
  // of the payload arrives.
  vol_->whole.store(true);
  vol_->piece.store(8 << 10);
  vol_->scatter.store(4);
  auto c = Open("inc");
  ASSERT_NE(c, nullptr);
  const std::string small = Pattern(100, 26);
  const std::string big = Pattern(72 << 10, 27);
  ASSERT_TRUE(c->SendRequest(kCmdWrite, 0, 1, 0, 100, small).ok());
  ASSERT_TRUE(c->SendRequest(kCmdWrite, 0, 2, 1 << 20, 72 << 10, big.substr(0, 10 << 10)).ok());
  ReleaseFirstWrite();
  auto r = c->ReadReply();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->handle, 1u);
  // The rest arrives 5 KiB at a time; each receive waits until it has filled every
  // space offered.
  for (size_t at = 10 << 10; at < big.size(); at += 5 << 10) {
    ASSERT_TRUE(c->SendRaw(big.substr(at, 5 << 10)).ok());
  }
  r = c->ReadReply();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->handle, 2u);
  EXPECT_EQ(r->error, 0u);
  EXPECT_EQ(vol_->held_bytes.load(), size_t{10 << 10});
  EXPECT_EQ(vol_->partial_receives.load(), 0);
  EXPECT_GE(vol_->received_calls.load(), 3u);  // Land's, then 32 KiB + 30 KiB
  EXPECT_TRUE(Contents(1 << 20, big.size()) == big);
}

TEST_F(NbdIncomingWriteQueuedTest, APayloadQueuedInFullIsSaidToBe) {
  // After a large write the reader takes the next header alone; its whole payload
  // is then in the socket (FIONREAD), and BeginWrite hears so.
  auto c = Open("inc");
  ASSERT_NE(c, nullptr);
  const std::string first = Pattern(64 << 10, 24);
  const std::string second = Pattern(40 << 10, 25);
  ASSERT_TRUE(c->SendRequest(kCmdWrite, 0, 1, 0, 64 << 10, first).ok());
  ASSERT_TRUE(WaitFor([&] { return writes_.load() == 1; }));
  ASSERT_TRUE(c->SendRequest(kCmdWrite, 0, 2, 1 << 20, 40 << 10, second).ok());
  ReleaseFirstWrite();
  for (uint64_t h = 1; h <= 2; ++h) {
    auto r = c->ReadReply();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->error, 0u);
  }
  EXPECT_EQ(vol_->begun.load(), 2);
  EXPECT_TRUE(vol_->last_queued.load());
  EXPECT_EQ(vol_->first_received.load(), size_t{40 << 10});
  EXPECT_TRUE(Contents(0, first.size()) == first);
  EXPECT_TRUE(Contents(1 << 20, second.size()) == second);
}

TEST_F(NbdIncomingWriteTest, ClientGoneMidPayloadAbandonsWithoutCommit) {
  StartServer();
  auto c = Open("inc");
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->SendRequest(kCmdWrite, 0, 1, 0, 1 << 20).ok());
  ASSERT_TRUE(c->SendRaw(Pattern(300 << 10, 17)).ok());
  // Not queued in full: BeginWrite must not have been told so.
  c->Close();
  EXPECT_TRUE(WaitFor([&] { return server_->connection_count() == 0; }));
  EXPECT_EQ(vol_->begun.load(), 1);
  EXPECT_EQ(vol_->queued_begins.load(), 0);
  EXPECT_EQ(vol_->committed.load(), 0);
  EXPECT_EQ(vol_->abandoned.load(), 1);
  EXPECT_EQ(vol_->inner().counters().writes, 0u);
  EXPECT_TRUE(Contents(0, 4096) == std::string(4096, '\0'));
  // The server goes on.
  auto fresh = Open("inc");
  ASSERT_NE(fresh, nullptr);
  EXPECT_EQ(fresh->Write(0, Pattern(64 << 10, 18))->error, 0u);
  EXPECT_EQ(vol_->committed.load(), 1);
}

TEST_F(NbdIncomingWriteTest, ALargePayloadStillOnItsWayIsWaitedForAndArrivesWhole) {
  // 1 MiB whose first 100 KiB come with the header and the rest after: the reader
  // waits for the rest (kAwaitPayloadBytes) before it asks the volume. Whether the
  // volume then hears "queued" depends on the connection's receive window: a new
  // connection's may be smaller than the payload, and TCP then ends the wait early
  // (NbdSocketTest covers the wait itself). Either way the write lands whole, once.
  StartServer();
  auto c = Open("inc");
  ASSERT_NE(c, nullptr);
  const std::string big = Pattern(1 << 20, 28);
  ASSERT_TRUE(c->SendRequest(kCmdWrite, 0, 1, 0, 1 << 20, big.substr(0, 100 << 10)).ok());
  ASSERT_TRUE(c->SendRaw(big.substr(100 << 10)).ok());
  auto r = c->ReadReply();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->error, 0u);
  EXPECT_EQ(vol_->begun.load(), 1);
  EXPECT_EQ(vol_->committed.load(), 1);
  EXPECT_TRUE(Contents(0, big.size()) == big);
}

TEST_F(NbdIncomingWriteTest, CommitErrorsAreTheRepliesErrors) {
  StartServer();
  auto c = Open("inc", /*structured=*/true);
  ASSERT_NE(c, nullptr);
  vol_->FailCommits(ResourceExhaustedError("tier full"));
  auto w = c->Write(0, Pattern(64 << 10, 19));
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->error, kEnospc);
  EXPECT_NE(w->message.find("tier full"), std::string::npos) << w->message;
  vol_->FailCommits(InternalError("disk on fire"));
  EXPECT_EQ(c->Write(0, Pattern(64 << 10, 20))->error, kEio);
  EXPECT_EQ(vol_->abandoned.load(), 0);
  // The connection goes on, nothing was written.
  vol_->FailCommits(Status::Ok());
  auto r = c->Read(0, 4096);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->error, 0u);
  EXPECT_TRUE(r->data == std::string(4096, '\0'));
  EXPECT_EQ(c->Write(0, Pattern(64 << 10, 21))->error, 0u);
  EXPECT_TRUE(Contents(0, 64 << 10) == Pattern(64 << 10, 21));
}

// A volume that takes payloads as ranges of a file (IncomingWrite::NextFileSpace): on
// the plain socket the server says it can (IncomingPayload::to_file) and splices the
// bytes from the socket into the file, range by range, every byte in payload order.
TEST_F(NbdIncomingWriteTest, PayloadsAreSplicedIntoTheVolumesFile) {
  ScratchFile file;
  vol_->file_fd.store(file.fd());
  vol_->piece.store(300 << 10);  // ranges that end mid-page and mid-payload
  StartServer();
  auto c = Open("inc");
  ASSERT_NE(c, nullptr);
  const std::string big = Pattern((1 << 20) + 4321, 41);
  auto w = c->Write(4096 + 3, big);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->error, 0u);
  EXPECT_EQ(vol_->to_file_begins.load(), 1);
  EXPECT_GE(vol_->file_asks.load(), 4u);  // one per range at least
  EXPECT_EQ(vol_->committed.load(), 1);
  EXPECT_TRUE(Contents(4096 + 3, big.size()) == big);
  EXPECT_TRUE(file.Read(4096 + 3, big.size()) == big);  // it went through the file
  // More on the connection, pipelined, of sizes that end mid-range, with a small
  // write (the buffer path) between them: the stream stays framed.
  std::vector<std::string> data;
  for (int i = 0; i < 6; ++i) data.push_back(Pattern((96 << 10) + 4093 * i, 50 + i));
  const std::string small = Pattern(1000, 60);
  for (int i = 0; i < 6; ++i) {
    const uint64_t at = uint64_t{2 << 20} * (i + 1);
    ASSERT_TRUE(c->SendRequest(kCmdWrite, 0, 100 + i, at, data[i].size(), data[i]).ok());
    if (i == 2) {
      ASSERT_TRUE(c->SendRequest(kCmdWrite, 0, 200, 15 << 20, small.size(), small).ok());
    }
  }
  for (int i = 0; i < 7; ++i) {
    auto reply = c->ReadReply();
    ASSERT_TRUE(reply.ok()) << reply.status().ToString();
    EXPECT_EQ(reply->error, 0u);
  }
  for (int i = 0; i < 6; ++i) {
    EXPECT_TRUE(Contents(uint64_t{2 << 20} * (i + 1), data[i].size()) == data[i]) << i;
  }
  EXPECT_TRUE(Contents(15 << 20, small.size()) == small);
  EXPECT_EQ(vol_->to_file_begins.load(), 1 + 6);  // not the small one (the buffer path)
  EXPECT_EQ(vol_->abandoned.load(), 0);
}

// A file that does not take the bytes (here: open read-only, so writing into it
// fails): the write is abandoned and answered with the error, the rest of its payload
// read past, and the connection goes on framed.
TEST_F(NbdIncomingWriteTest, AFileThatRefusesThePayloadAnswersTheErrorAndKeepsTheConnection) {
  ScratchFile file;
  const int read_only = ::open(file.path().c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(read_only, 0);
  vol_->file_fd.store(read_only);
  vol_->piece.store(256 << 10);
  StartServer();
  auto c = Open("inc", /*structured=*/true);
  ASSERT_NE(c, nullptr);
  auto w = c->Write(0, Pattern(1 << 20, 61));
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  // EBADF (the bytes the server had already read landed with the volume's pwrite
  // first, the rest spliced: either says it).
  EXPECT_EQ(w->error, kEio);
  EXPECT_NE(w->message.find(std::strerror(EBADF)), std::string::npos) << w->message;
  EXPECT_EQ(vol_->committed.load(), 0);
  EXPECT_EQ(vol_->abandoned.load(), 1);
  EXPECT_TRUE(Contents(0, 1 << 20) == std::string(1 << 20, '\0'));
  // The same connection: the next write (the volume's buffers now) and a read.
  vol_->file_fd.store(-1);
  const std::string next = Pattern(1 << 20, 62);
  EXPECT_EQ(c->Write(0, next)->error, 0u);
  auto r = c->Read(0, 1 << 20);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->error, 0u);
  EXPECT_TRUE(r->data == next);
  ::close(read_only);
}

TEST_F(NbdIncomingWriteTest, PipelinedLargeAndSmallWritesThroughTheSeamKeepTheirBytes) {
  StartServer();
  auto c = Open("inc");
  ASSERT_NE(c, nullptr);
  const std::vector<uint32_t> sizes = {
      40000, 100, 64 << 10, 4096, 200000, 7, 32 << 10, (32 << 10) - 1, 1 << 20, 28, 300000};
  uint64_t off = 0;
  std::vector<std::pair<uint64_t, std::string>> written;
  for (size_t i = 0; i < sizes.size(); ++i) {
    std::string data = Pattern(sizes[i], 400 + static_cast<uint32_t>(i));
    ASSERT_TRUE(c->SendRequest(kCmdWrite, 0, i + 1, off, sizes[i], data).ok());
    written.emplace_back(off, std::move(data));
    off += sizes[i] + 513;
  }
  for (size_t i = 0; i < sizes.size(); ++i) {
    auto r = c->ReadReply();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->error, 0u) << "handle " << r->handle;
  }
  EXPECT_EQ(vol_->begun.load(), 6);
  EXPECT_EQ(vol_->committed.load(), 6);
  for (const auto& [o, data] : written) {
    EXPECT_TRUE(Contents(o, data.size()) == data) << "write at " << o << " of " << data.size();
  }
}

TEST_F(NbdIncomingWriteTest, TheInflightBudgetStillBoundsLargeWrites) {
  NbdServerOptions opt;
  opt.max_inflight_bytes = 64 << 10;
  StartServer(opt);
  auto c = Open("inc");
  ASSERT_NE(c, nullptr);
  auto w = c->Write(0, Pattern(128 << 10, 22));
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->error, kEnomem);
  EXPECT_EQ(vol_->begun.load(), 0);
  EXPECT_EQ(c->Write(0, Pattern(64 << 10, 23))->error, 0u);
  EXPECT_EQ(vol_->committed.load(), 1);
}

TEST_F(NbdIncomingWriteTest, LargeReadsAreSentFromTheVolumesBytes) {
  StartServer();
  const std::string data = Pattern(2 << 20, 26);
  ASSERT_TRUE(vol_->inner().Write(0, data, false).ok());
  for (bool structured : {false, true}) {
    auto c = Open("inc", structured);
    ASSERT_NE(c, nullptr);
    const int before = vol_->reads_begun.load();
    auto r = c->Read(4096 + 5, 1 << 20);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->error, 0u);
    EXPECT_TRUE(r->data == data.substr(4096 + 5, 1 << 20));
    EXPECT_EQ(vol_->reads_begun.load(), before + 1);
    // Below 32 KiB: the buffer path.
    r = c->Read(0, (32 << 10) - 1);
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->data == data.substr(0, (32 << 10) - 1));
    EXPECT_EQ(vol_->reads_begun.load(), before + 1);
  }
  // Read calls: the two small reads, and BeginRead's own copies.
  EXPECT_EQ(vol_->inner().counters().reads, 4u);
  // Declined: Read.
  vol_->decline_reads.store(true);
  auto c = Open("inc");
  auto r = c->Read(0, 1 << 20);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->data == data.substr(0, 1 << 20));
  EXPECT_EQ(vol_->inner().counters().reads, 5u);
  EXPECT_EQ(vol_->reads_begun.load(), 2);
}

TEST_F(NbdIncomingWriteTest, AReaderThatDoesNotReadHoldsNoGuardOfTheVolume) {
  // Replies larger than the socket buffers, to a client that reads nothing yet: what
  // does not fit at once is copied out and the volume's read ends before the client
  // takes a byte.
  StartServer();
  const std::string data = Pattern(16 << 20, 27);
  ASSERT_TRUE(vol_->inner().Write(0, data, false).ok());
  auto c = Open("inc", /*structured=*/true);
  ASSERT_NE(c, nullptr);
  constexpr uint32_t kLen = 16 << 20;
  ASSERT_TRUE(c->SendRequest(kCmdRead, 0, 1, 0, kLen).ok());
  ASSERT_TRUE(c->SendRequest(kCmdRead, 0, 2, 0, kLen).ok());
  // The first reply is under way (the socket full) without its volume read; the
  // second waits for it holding none either (it let go of one if it had begun it).
  EXPECT_TRUE(WaitFor([&] {
    const int ended = vol_->reads_ended.load();
    return ended >= 1 && vol_->reads_begun.load() == ended;
  }));
  for (int i = 0; i < 2; ++i) {
    auto r = c->ReadReply();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->error, 0u);
    EXPECT_TRUE(r->data == data) << "handle " << r->handle;
  }
  EXPECT_GE(vol_->reads_begun.load(), 2);
  EXPECT_EQ(vol_->reads_ended.load(), vol_->reads_begun.load());
}

}  // namespace
}  // namespace strata::nbd::test
