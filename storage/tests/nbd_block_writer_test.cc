// NbdBlockWriter (a move's copy over NBD) against the in-process NBD server over a
// MemVolume: blocks coalesced into writes of up to 1 MiB, holes as WRITE_ZEROES, blocks
// outside the read buffer copied, every reply awaited by Finish, errors kept.

#include "nbd_block_writer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "strata/nbd/server.h"
#include "strata/nbd/testing/mem_volume.h"
#include "strata/nbd/testing/static_export_catalog.h"

namespace strata::storage {
namespace {

constexpr uint32_t kBs = 4096;
constexpr uint64_t kSize = 8 << 20;

class NbdBlockWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    disk_ = std::make_shared<nbd::MemVolume>(kSize);
    catalog_.Add("move/x/t", disk_);
    auto s = nbd::NbdServer::Start(&catalog_, {{"127.0.0.1", 0}});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s).value();
  }
  void TearDown() override { server_->Stop(); }

  std::unique_ptr<NbdBlockWriter> Writer(int connections = 2) {
    std::vector<std::unique_ptr<nbd::NbdClient>> conns;
    nbd::NbdClientOptions o;
    o.max_in_flight = 4;
    for (int i = 0; i < connections; ++i) {
      auto c = nbd::NbdClient::Connect(server_->bound_portals().at(0), "move/x/t", o);
      EXPECT_TRUE(c.ok()) << c.status().ToString();
      if (!c.ok()) return nullptr;
      conns.push_back(std::move(c).value());
    }
    return std::make_unique<NbdBlockWriter>(std::move(conns), kBs);
  }
  static void Fill(char* p, uint64_t lba) {
    for (uint32_t i = 0; i < kBs; i += 8) std::memcpy(p + i, &lba, 8);
  }
  std::string Block(uint64_t lba) {
    std::string b(kBs, '\0');
    Fill(b.data(), lba);
    return b;
  }
  std::string Read(uint64_t lba) {
    std::string out(kBs, '\0');
    EXPECT_TRUE(disk_->Read(lba * kBs, std::span<char>(out.data(), kBs)).ok());
    return out;
  }

  std::shared_ptr<nbd::MemVolume> disk_;
  nbd::StaticExportCatalog catalog_;
  std::unique_ptr<nbd::NbdServer> server_;
};

TEST_F(NbdBlockWriterTest, CoalescesReadBufferBlocksIntoMiBWrites) {
  auto w = Writer();
  ASSERT_NE(w, nullptr);
  // Two groups of 1 MiB as the source reads them (512 blocks), then a gap, then 3 blocks.
  for (uint64_t group = 0; group < 2; ++group) {
    auto buf = w->ReadBuffer(1 << 20);
    ASSERT_NE(buf, nullptr);
    for (uint64_t i = 0; i < 256; ++i) {
      Fill(buf.get() + i * kBs, group * 256 + i);
      ASSERT_TRUE(w->Put(group * 256 + i, buf.get() + i * kBs).ok());
    }
  }
  auto buf = w->ReadBuffer(1 << 20);
  for (uint64_t i = 0; i < 3; ++i) {
    Fill(buf.get() + i * kBs, 1000 + i);
    ASSERT_TRUE(w->Put(1000 + i, buf.get() + i * kBs).ok());
  }
  ASSERT_TRUE(w->Finish().ok());
  // Each group is one write (the buffer changes between groups even where LBAs run on).
  EXPECT_EQ(disk_->counters().writes, 3u);
  for (uint64_t lba : {0ull, 255ull, 256ull, 511ull, 1000ull, 1002ull}) {
    EXPECT_EQ(Read(lba), Block(lba)) << lba;
  }
  EXPECT_EQ(Read(512), std::string(kBs, '\0'));
}

TEST_F(NbdBlockWriterTest, HolesBecomeOneWriteZeroesPerRun) {
  auto b = Block(7);
  ASSERT_TRUE(disk_->Write(0, std::string(kSize, 'x'), false).ok());
  auto w = Writer(1);
  ASSERT_NE(w, nullptr);
  for (uint64_t lba = 10; lba < 300; ++lba) ASSERT_TRUE(w->Put(lba, nullptr).ok());
  ASSERT_TRUE(w->Put(300, b.data()).ok());  // not in a read buffer: copied
  ASSERT_TRUE(w->Put(301, nullptr).ok());
  ASSERT_TRUE(w->Finish().ok());
  EXPECT_EQ(disk_->counters().write_zeroes, 2u);
  EXPECT_EQ(Read(10), std::string(kBs, '\0'));
  EXPECT_EQ(Read(299), std::string(kBs, '\0'));
  EXPECT_EQ(Read(300), b);
  EXPECT_EQ(Read(301), std::string(kBs, '\0'));
  EXPECT_EQ(Read(302), std::string(kBs, 'x'));
}

TEST_F(NbdBlockWriterTest, CopiedBlocksCoalesceToo) {
  auto w = Writer();
  ASSERT_NE(w, nullptr);
  for (uint64_t lba = 0; lba < 600; ++lba) {
    std::string b = Block(lba);  // gone after Put: the writer must copy it
    ASSERT_TRUE(w->Put(lba, b.data()).ok());
  }
  ASSERT_TRUE(w->Finish().ok());
  EXPECT_EQ(disk_->counters().writes, 3u);  // 256 + 256 + 88 blocks
  for (uint64_t lba : {0ull, 255ull, 256ull, 599ull}) EXPECT_EQ(Read(lba), Block(lba)) << lba;
}

TEST_F(NbdBlockWriterTest, TheFirstErrorFailsFinishAndLaterPuts) {
  auto w = Writer();
  ASSERT_NE(w, nullptr);
  disk_->InjectError(IoKind::kWrite, ResourceExhaustedError("full"));
  std::string b = Block(1);
  ASSERT_TRUE(w->Put(1, b.data()).ok());
  Status s = w->Finish();
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s.ToString();
  EXPECT_EQ(w->Finish(), s);
  EXPECT_FALSE(w->Put(2, b.data()).ok());
}

}  // namespace
}  // namespace strata::storage
