// NbdBlockWriter (a move's copy over NBD) against the in-process NBD server over a
// MemVolume: blocks coalesced into writes of up to 1 MiB, holes as WRITE_ZEROES, blocks
// outside the read buffer copied, every reply awaited by Finish, errors kept.

#include "nbd_block_writer.h"

#include <gtest/gtest.h>

#include <atomic>
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

// A run of blocks "in a tier mapping" (test memory): pins counted, failing from the
// pin numbered fail_at (1-based; 0: never); Reread gives version 2 of the blocks.
class TestRun final : public Engine::MappedRun {
 public:
  TestRun(uint64_t lba, uint64_t blocks, const std::string& bytes, int fail_at = 0)
      : MappedRun(lba, blocks, bytes.data()), fail_at_(fail_at) {}
  bool Pin() override {
    ++attempts;
    if (fail_at_ > 0 && attempts >= fail_at_) return false;
    ++held;
    return true;
  }
  void Unpin() override { --held; }
  Status Reread(std::span<char> out) override {
    ++rereads;
    for (uint64_t i = 0; i < blocks(); ++i) std::memset(out.data() + i * kBs, 'R', kBs);
    return Status::Ok();
  }
  std::atomic<int> attempts{0}, held{0}, rereads{0};

 private:
  const int fail_at_;
};

TEST_F(NbdBlockWriterTest, MappedRunsThatFollowEachOtherAreOneWriteOfUpToAMiB) {
  auto w = Writer();
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(w->TakesMapped());
  // 100 + 100 + 56 blocks (one MiB), then 256 more (the next), then 10 after a gap.
  // Each run's bytes where it "lies" (kept alive by `mem`).
  std::vector<std::string> mem;
  mem.reserve(5);
  auto blocks = [&](uint64_t lba, uint64_t n) -> const std::string& {
    std::string b;
    for (uint64_t i = 0; i < n; ++i) b += Block(lba + i);
    mem.push_back(std::move(b));
    return mem.back();
  };
  std::vector<std::shared_ptr<TestRun>> runs = {
      std::make_shared<TestRun>(0, 100, blocks(0, 100)),
      std::make_shared<TestRun>(100, 100, blocks(100, 100)),
      std::make_shared<TestRun>(200, 56, blocks(200, 56)),
      std::make_shared<TestRun>(256, 256, blocks(256, 256)),
      std::make_shared<TestRun>(900, 10, blocks(900, 10))};
  for (auto& r : runs) ASSERT_TRUE(w->PutMapped(r).ok());
  ASSERT_TRUE(w->Finish().ok());
  EXPECT_EQ(disk_->counters().writes, 3u);
  for (uint64_t lba : {0ull, 99ull, 100ull, 255ull, 256ull, 511ull, 900ull, 909ull}) {
    EXPECT_EQ(Read(lba), Block(lba)) << lba;
  }
  EXPECT_EQ(Read(512), std::string(kBs, '\0'));
  for (auto& r : runs) {
    EXPECT_GE(r->attempts.load(), 1);
    EXPECT_EQ(r->held.load(), 0);  // every pin released
    EXPECT_EQ(r->rereads.load(), 0);
  }
}

TEST_F(NbdBlockWriterTest, AMappedRunThatCannotBePinnedIsSentAsItIsNow) {
  auto w = Writer(1);
  ASSERT_NE(w, nullptr);
  std::string a, b;
  for (uint64_t lba = 0; lba < 8; ++lba) a += Block(lba);
  for (uint64_t lba = 8; lba < 16; ++lba) b += Block(lba);
  auto ok = std::make_shared<TestRun>(0, 8, a);
  auto gone = std::make_shared<TestRun>(8, 8, b, /*fail_at=*/1);
  ASSERT_TRUE(w->PutMapped(ok).ok());
  ASSERT_TRUE(w->PutMapped(gone).ok());  // the same request: both pinned or neither
  ASSERT_TRUE(w->Finish().ok());
  EXPECT_EQ(disk_->counters().writes, 1u);
  EXPECT_EQ(Read(0), std::string(kBs, 'R'));
  EXPECT_EQ(Read(15), std::string(kBs, 'R'));
  EXPECT_EQ(ok->held.load(), 0);  // pinned, then let go when its partner's pin failed
  EXPECT_EQ(gone->held.load(), 0);
  EXPECT_EQ(ok->rereads.load() + gone->rereads.load(), 2);
}

TEST_F(NbdBlockWriterTest, MappedRunsHolesAndBufferedBlocksMix) {
  auto w = Writer();
  ASSERT_NE(w, nullptr);
  std::string a;
  for (uint64_t lba = 0; lba < 4; ++lba) a += Block(lba);
  auto run = std::make_shared<TestRun>(0, 4, a);
  ASSERT_TRUE(w->PutMapped(run).ok());
  for (uint64_t lba = 4; lba < 6; ++lba) ASSERT_TRUE(w->Put(lba, nullptr).ok());
  std::string b = Block(6);
  ASSERT_TRUE(w->Put(6, b.data()).ok());
  ASSERT_TRUE(w->Finish().ok());
  EXPECT_EQ(disk_->counters().writes, 2u);
  EXPECT_EQ(disk_->counters().write_zeroes, 1u);
  EXPECT_EQ(Read(3), Block(3));
  EXPECT_EQ(Read(5), std::string(kBs, '\0'));
  EXPECT_EQ(Read(6), b);
}

}  // namespace
}  // namespace strata::storage
