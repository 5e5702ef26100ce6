// The server's building blocks on their own: error mapping, transmission flags,
// buffer pool.
#include <gtest/gtest.h>

#include <cstdint>

#include "buffer_pool.h"
#include "errors.h"
#include "handshake.h"
#include "strata/nbd/protocol.h"
#include "strata/nbd/testing/mem_volume.h"

namespace strata::nbd {
namespace {

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

}  // namespace
}  // namespace strata::nbd
