// The server's building blocks on their own: error mapping, transmission flags,
// buffer pool, the socket's waits and receives.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <thread>

#include "buffer_pool.h"
#include "errors.h"
#include "handshake.h"
#include "scratch_file.h"
#include "socket_util.h"
#include "splice_pipe.h"
#include "strata/nbd/protocol.h"
#include "strata/nbd/testing/mem_volume.h"

namespace strata::nbd {
namespace {

using test::ScratchFile;

TEST(NbdErrorMappingTest, VolumeStatusToNbdError) {
  EXPECT_EQ(NbdErrorFromStatus(Status::Ok()), 0u);
  EXPECT_EQ(NbdErrorFromStatus(OutOfRangeError("x")), kEinval);
  EXPECT_EQ(NbdErrorFromStatus(InvalidArgumentError("x")), kEinval);
  EXPECT_EQ(NbdErrorFromStatus(ResourceExhaustedError("x")), kEnospc);
  EXPECT_EQ(NbdErrorFromStatus(PermissionDeniedError("x")), kEperm);
  EXPECT_EQ(NbdErrorFromStatus(InternalError("x")), kEio);
  EXPECT_EQ(NbdErrorFromStatus(UnavailableError("x")), kEio);
  EXPECT_EQ(NbdErrorFromStatus(NotFoundError("x")), kEio);
}

TEST(NbdErrorMappingTest, OpenStatusToOptionError) {
  EXPECT_EQ(OptionErrorFromStatus(NotFoundError("x")), kRepErrUnknown);
  EXPECT_EQ(OptionErrorFromStatus(PermissionDeniedError("x")), kRepErrPolicy);
  EXPECT_EQ(OptionErrorFromStatus(UnavailableError("x")), kRepErrUnknown);
  EXPECT_EQ(OptionErrorFromStatus(InvalidArgumentError("x")), kRepErrInvalid);
  EXPECT_EQ(OptionErrorFromStatus(InternalError("x")), kRepErrUnknown);
}

TEST(NbdTransmissionFlagsTest, WritableReadOnlyAndStructured) {
  MemVolume rw(1 << 20);
  MemVolume ro(1 << 20, 4096, true);
  uint16_t base = kFlagHasFlags | kFlagSendFlush | kFlagCanMultiConn;
  EXPECT_EQ(TransmissionFlags(rw, false),
            base | kFlagSendFua | kFlagSendTrim | kFlagSendWriteZeroes);
  EXPECT_EQ(TransmissionFlags(ro, false), base | kFlagReadOnly);
  EXPECT_EQ(TransmissionFlags(ro, true), base | kFlagReadOnly | kFlagSendDf);
}

TEST(NbdWireTest, BigEndianRoundTrip) {
  char b[8];
  PutBe64(b, 0x0102030405060708ull);
  EXPECT_EQ(b[0], 1);
  EXPECT_EQ(b[7], 8);
  EXPECT_EQ(GetBe64(b), 0x0102030405060708ull);
  PutBe32(b, 0xfedcba98u);
  EXPECT_EQ(GetBe32(b), 0xfedcba98u);
  PutBe16(b, 0xbeef);
  EXPECT_EQ(GetBe16(b), 0xbeef);
}

TEST(NbdBufferPoolTest, AlignedRecycledAndBounded) {
  BufferPool pool(1 << 20);
  EXPECT_EQ(pool.Get(0).data(), nullptr);
  char* first;
  {
    auto h = pool.Get(5000);
    ASSERT_NE(h.data(), nullptr);
    EXPECT_EQ(h.capacity(), 8192u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(h.data()) % 4096, 0u);
    first = h.data();
  }
  EXPECT_EQ(pool.cached_bytes(), 8192u);
  {
    auto h = pool.Get(8192);
    EXPECT_EQ(h.data(), first);  // reused
    EXPECT_EQ(pool.cached_bytes(), 0u);
  }
  {
    auto big = pool.Get(2 << 20);  // over the budget: freed, not cached
    EXPECT_EQ(big.capacity(), 2u << 20);
  }
  EXPECT_EQ(pool.cached_bytes(), 8192u);
  auto moved = pool.Get(4096);
  BufferPool::Handle other = std::move(moved);
  EXPECT_EQ(moved.data(), nullptr);
  EXPECT_NE(other.data(), nullptr);
}

// Two ends of a loopback TCP connection (port chosen by the kernel).
struct TcpPair {
  TcpPair() {
    const int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    EXPECT_EQ(::bind(l, reinterpret_cast<sockaddr*>(&a), len), 0);
    EXPECT_EQ(::listen(l, 1), 0);
    EXPECT_EQ(::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len), 0);
    client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&a), len), 0);
    server = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
    EXPECT_GE(server, 0);
    ::close(l);
  }
  ~TcpPair() {
    if (client >= 0) ::close(client);
    ::close(server);
  }
  void Send(const std::string& bytes) const {
    ASSERT_TRUE(SendAll(client, bytes.data(), bytes.size()).ok());
  }
  size_t Queued() const {
    int n = -1;
    EXPECT_EQ(::ioctl(server, FIONREAD, &n), 0);
    return static_cast<size_t>(n);
  }
  int client = -1;
  int server = -1;
};

TEST(NbdSocketTest, AwaitQueuedWaitsForEveryByteAndLeavesThemQueued) {
  TcpPair p;
  const std::string a(10 << 10, 'a'), b(30 << 10, 'b');
  p.Send(a);
  bool queued = false;
  std::thread waiter([&] { queued = AwaitQueued(p.server, a.size() + b.size()); });
  p.Send(b);
  waiter.join();
  EXPECT_TRUE(queued);
  EXPECT_EQ(p.Queued(), a.size() + b.size());
  // A small receive afterwards is not held back by the mark (it was put back).
  char one = 0;
  ASSERT_EQ(::recv(p.server, &one, 1, 0), 1);
  EXPECT_EQ(one, 'a');
  // The rest in one vectored receive of everything.
  std::string x(a.size() - 1, '\0'), y(b.size(), '\0');
  iovec iov[2] = {{x.data(), x.size()}, {y.data(), y.size()}};
  ASSERT_TRUE(RecvAllV(p.server, iov, 2).ok());
  EXPECT_TRUE(x == a.substr(1));
  EXPECT_TRUE(y == b);
}

TEST(NbdSocketTest, AwaitQueuedSaysNoWhenThePeerStopsShort) {
  TcpPair p;
  p.Send(std::string(10 << 10, 'a'));
  ::shutdown(p.client, SHUT_WR);
  EXPECT_FALSE(AwaitQueued(p.server, 40 << 10));
  EXPECT_EQ(p.Queued(), size_t{10 << 10});
}

TEST(NbdSocketTest, AwaitQueuedSaysNoForMoreThanTheSocketWillEverHold) {
  // The kernel caps the mark (at half the largest receive buffer): the wait ends
  // there, with the bytes short, while the sender is still blocked on a full window.
  TcpPair p;
  const std::string big(16 << 20, 'c');
  std::thread sender([&] {
    p.Send(big);
    ::shutdown(p.client, SHUT_WR);  // where the cap lies above 16 MiB, the wait ends here
  });
  EXPECT_FALSE(AwaitQueued(p.server, size_t{1} << 30));
  std::string sink(1 << 20, '\0');
  for (size_t got = 0; got < big.size();) {
    auto n = RecvSome(p.server, sink.data(), sink.size());
    ASSERT_TRUE(n.ok());
    got += *n;
  }
  sender.join();
}

std::string Bytes(size_t n, uint32_t seed) {
  std::string out(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (auto& c : out) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return out;
}

TEST(NbdSplicePipeTest, MovesExactlyTheBytesAskedIntoTheFileAtTheOffset) {
  TcpPair p;
  ScratchFile f;
  auto pipe = SplicePipe::Open(64 << 10);  // smaller than the move: several steps
  ASSERT_TRUE(pipe.ok()) << pipe.status().ToString();
  EXPECT_GE(pipe->capacity(), size_t{4096});
  const std::string a = Bytes((300 << 10) + 17, 1), b = Bytes(1000, 2);
  std::thread sender([&] { p.Send(a + b); });
  size_t written = 0;
  Status file_error = InternalError("not set");
  ASSERT_TRUE(pipe->Move(p.server, a.size(), f.fd(), 12345, &written, &file_error).ok());
  EXPECT_TRUE(file_error.ok()) << file_error.ToString();
  EXPECT_EQ(written, a.size());
  EXPECT_TRUE(f.Read(12345, a.size()) == a);
  // The bytes after it stay in the socket, in order.
  std::string rest(b.size(), '\0');
  ASSERT_TRUE(RecvAll(p.server, rest.data(), rest.size()).ok());
  EXPECT_TRUE(rest == b);
  sender.join();
}

TEST(NbdSplicePipeTest, AFileThatRefusesTheBytesStillConsumesThemFromTheSocket) {
  TcpPair p;
  ScratchFile f;
  const int read_only = ::open(f.path().c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(read_only, 0);
  auto pipe = SplicePipe::Open(64 << 10);
  ASSERT_TRUE(pipe.ok());
  const std::string a = Bytes(200 << 10, 3), b = Bytes(777, 4);
  std::thread sender([&] { p.Send(a + b); });
  size_t written = 1;
  Status file_error;
  ASSERT_TRUE(pipe->Move(p.server, a.size(), read_only, 0, &written, &file_error).ok());
  EXPECT_FALSE(file_error.ok());
  EXPECT_NE(file_error.message().find("splice into the file"), std::string::npos)
      << file_error.ToString();
  EXPECT_EQ(written, 0u);
  std::string rest(b.size(), '\0');
  ASSERT_TRUE(RecvAll(p.server, rest.data(), rest.size()).ok());
  EXPECT_TRUE(rest == b);  // framed: the refused bytes were read past, no more
  sender.join();
  ::close(read_only);
  // The pipe is empty again: it moves the next payload intact.
  const std::string c = Bytes(5000, 5);
  p.Send(c);
  ASSERT_TRUE(pipe->Move(p.server, c.size(), f.fd(), 0, &written, &file_error).ok());
  EXPECT_TRUE(file_error.ok());
  EXPECT_TRUE(f.Read(0, c.size()) == c);
}

TEST(NbdSplicePipeTest, APeerGoneMidPayloadIsTheSocketsError) {
  TcpPair p;
  ScratchFile f;
  auto pipe = SplicePipe::Open(64 << 10);
  ASSERT_TRUE(pipe.ok());
  p.Send(Bytes(10 << 10, 6));
  ::shutdown(p.client, SHUT_WR);
  size_t written = 0;
  Status file_error;
  Status s = pipe->Move(p.server, 40 << 10, f.fd(), 0, &written, &file_error);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_TRUE(file_error.ok());
  EXPECT_EQ(written, size_t{10 << 10});
}

}  // namespace
}  // namespace strata::nbd
