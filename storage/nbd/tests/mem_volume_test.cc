#include "strata/nbd/testing/mem_volume.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "strata/nbd/testing/export_flag.h"

namespace strata::nbd {
namespace {

using storage::IoKind;

std::string Bytes(size_t n, char c) { return std::string(n, c); }

TEST(NbdMemVolumeTest, UnwrittenReadsAsZeroesAndCostsNothing) {
  MemVolume v(1ull << 40);  // 1 TiB, sparse
  EXPECT_EQ(v.size_bytes(), 1ull << 40);
  EXPECT_EQ(v.block_size(), 4096u);
  std::string out(8192, 'x');
  ASSERT_TRUE(v.Read((1ull << 40) - 8192, out).ok());
  EXPECT_EQ(out, Bytes(8192, '\0'));
  EXPECT_EQ(v.allocated_bytes(), 0u);
}

TEST(NbdMemVolumeTest, WriteReadAcrossChunks) {
  MemVolume v(1 << 20);
  uint64_t chunk = v.chunk_size();
  std::string data = Bytes(100, 'a') + Bytes(100, 'b');
  ASSERT_TRUE(v.Write(chunk - 100, data, false).ok());
  std::string out(200, '\0');
  ASSERT_TRUE(v.Read(chunk - 100, out).ok());
  EXPECT_EQ(out, data);
  EXPECT_EQ(v.allocated_bytes(), 2 * chunk);
}

TEST(NbdMemVolumeTest, TrimAndWriteZeroesFreeWholeChunksAndZeroParts) {
  MemVolume v(1 << 20);
  uint64_t chunk = v.chunk_size();
  ASSERT_TRUE(v.Write(0, Bytes(3 * chunk, 'z'), false).ok());
  ASSERT_TRUE(v.Trim(0, chunk).ok());                      // whole chunk: freed
  ASSERT_TRUE(v.WriteZeroes(chunk + 10, 20, false).ok());  // part: zeroed
  EXPECT_EQ(v.allocated_bytes(), 2 * chunk);
  std::string out(3 * chunk, '\0');
  ASSERT_TRUE(v.Read(0, out).ok());
  std::string want =
      Bytes(chunk, '\0') + Bytes(10, 'z') + Bytes(20, '\0') + Bytes(2 * chunk - 30, 'z');
  EXPECT_EQ(out, want);
}

TEST(NbdMemVolumeTest, RangesPastTheEndAreOutOfRange) {
  MemVolume v(8192);
  std::string out(4096, '\0');
  EXPECT_EQ(v.Read(8192 - 100, out).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(v.Write(UINT64_MAX, out, false).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(v.Trim(0, 8193).code(), StatusCode::kOutOfRange);
  EXPECT_TRUE(v.Read(8192, std::span<char>()).ok());
}

TEST(NbdMemVolumeTest, ReadOnlyRefusesWrites) {
  MemVolume v(8192, 512, true);
  EXPECT_TRUE(v.read_only());
  EXPECT_EQ(v.Write(0, "x", false).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(v.WriteZeroes(0, 1, false).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(v.Trim(0, 1).code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(v.Flush().ok());
  v.SetReadOnly(false);
  EXPECT_TRUE(v.Write(0, "x", false).ok());
}

TEST(NbdMemVolumeTest, InjectedErrorsAndAllocationLimit) {
  MemVolume v(1 << 20);
  v.InjectError(IoKind::kFlush, InternalError("boom"));
  EXPECT_EQ(v.Flush().code(), StatusCode::kInternal);
  v.InjectError(IoKind::kFlush, Status());
  EXPECT_TRUE(v.Flush().ok());
  v.SetAllocationLimit(v.chunk_size());
  EXPECT_TRUE(v.Write(0, "x", false).ok());
  EXPECT_EQ(v.Write(v.chunk_size(), "x", false).code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(v.Write(1, "y", false).ok());  // inside the allocated chunk
}

TEST(NbdMemVolumeTest, CountersSeeFuaAndFlushes) {
  MemVolume v(1 << 20);
  ASSERT_TRUE(v.Write(0, "x", true).ok());
  ASSERT_TRUE(v.WriteZeroes(0, 1, true).ok());
  ASSERT_TRUE(v.Flush().ok());
  auto c = v.counters();
  EXPECT_EQ(c.writes, 1u);
  EXPECT_EQ(c.write_zeroes, 1u);
  EXPECT_EQ(c.fua_writes, 2u);
  EXPECT_EQ(c.flushes, 1u);
}

TEST(NbdMemVolumeTest, ConcurrentWritersToDisjointRanges) {
  MemVolume v(8 << 20);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&v, t] {
      std::string data(1 << 20, static_cast<char>('A' + t));
      for (int i = 0; i < 20; ++i) ASSERT_TRUE(v.Write(uint64_t(t) << 20, data, false).ok());
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 8; ++t) {
    std::string out(1 << 20, '\0');
    ASSERT_TRUE(v.Read(uint64_t(t) << 20, out).ok());
    EXPECT_EQ(out, std::string(1 << 20, static_cast<char>('A' + t)));
  }
}

TEST(NbdExportFlagTest, ParsesEveryAttribute) {
  auto f = ParseExportFlag("disk=64MiB:ro:bs=512:allow=127.0.0.1,::1");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->name, "disk");
  EXPECT_EQ(f->size_bytes, 64u << 20);
  EXPECT_TRUE(f->read_only);
  EXPECT_EQ(f->block_size, 512u);
  EXPECT_EQ(f->allowed, (std::vector<std::string>{"127.0.0.1", "::1"}));
  auto plain = ParseExportFlag("=1GiB");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->name, "");
  EXPECT_FALSE(plain->read_only);
  EXPECT_TRUE(plain->allowed.empty());
}

TEST(NbdExportFlagTest, BadFlagsNameTheProblem) {
  EXPECT_NE(ParseExportFlag("disk").status().message().find("expected NAME=SIZE"),
            std::string::npos);
  EXPECT_NE(ParseExportFlag("d=10XB").status().message().find("size"), std::string::npos);
  EXPECT_NE(ParseExportFlag("d=0").status().message().find("more than 0"), std::string::npos);
  EXPECT_NE(ParseExportFlag("d=1MiB:rw").status().message().find("unknown attribute 'rw'"),
            std::string::npos);
  EXPECT_NE(ParseExportFlag("d=1MiB:bs=1000").status().message().find("power of two"),
            std::string::npos);
  EXPECT_NE(ParseExportFlag("d=1MiB:allow=").status().message().find("allow"), std::string::npos);
}

}  // namespace
}  // namespace strata::nbd
