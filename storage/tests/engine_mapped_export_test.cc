// A device move's pass handing out a plain LUN's blocks where they lie in the tier's
// shared mapping (Engine::ExportPass with a MappedSink), on the real file system
// (MemEnv offers no mapping): the runs hold the LUN's bytes, holes still go to the
// sink, and a run whose slots were freed and made reusable can no longer be pinned,
// while a pinned run keeps its slots from being reused.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <xxhash.h>

#include <cstring>
#include <string>
#include <vector>

#include "strata/common/env.h"
#include "strata/storage/engine.h"
#include "temp_dir.h"

namespace strata::storage {
namespace {

constexpr uint32_t kBs = 4096;

class EngineMappedExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    dir_ = tmp_.path();
    EngineOptions o;
    o.state_dir = dir_;
    o.tiers = {*ParseTierFlag("ssd=" + dir_)};
    o.tier_capacity_bytes = {64ull << 20};
    auto e = Engine::Open(Env::Default(), o);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e);
  }
  void TearDown() override { engine_.reset(); }

  std::shared_ptr<Volume> Create(const std::string& name, uint64_t size, bool dedup = false) {
    LunSpec spec;
    spec.name = name;
    spec.size_bytes = size;
    spec.dedup = dedup;
    EXPECT_TRUE(engine_->CreateLun(spec).ok());
    auto v = engine_->OpenVolume(name);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? *v : nullptr;
  }
  static std::string Block(uint64_t lba, int version = 0) {
    std::string b(kBs, '\0');
    for (uint32_t i = 0; i < kBs; i += 16) {
      std::memcpy(b.data() + i, &lba, 8);
      uint64_t v = static_cast<uint64_t>(version) + 1;
      std::memcpy(b.data() + i + 8, &v, 8);
    }
    return b;
  }
  static std::string Blocks(uint64_t lba, uint64_t n, int version = 0) {
    std::string s;
    for (uint64_t i = 0; i < n; ++i) s += Block(lba + i, version);
    return s;
  }

  // One full pass: the mapped runs, and the LBAs the sink got (with their pointers).
  struct Pass {
    std::vector<std::shared_ptr<Engine::MappedRun>> runs;
    std::vector<std::pair<uint64_t, bool>> sunk;  // lba, had data
    std::vector<uint64_t> order;                  // every LBA handed out, in order
  };
  Pass RunPass(const std::string& name, bool with_mapped = true) {
    Pass p;
    auto r = engine_->ExportPass(
        name, /*all_blocks=*/true,
        [&](uint64_t lba, const char* block) {
          p.sunk.emplace_back(lba, block != nullptr);
          p.order.push_back(lba);
          return Status::Ok();
        },
        Engine::kDefaultChecksumRangeBytes, {},
        with_mapped ? Engine::MappedSink([&](std::shared_ptr<Engine::MappedRun> run) {
          for (uint64_t i = 0; i < run->blocks(); ++i) p.order.push_back(run->lba() + i);
          p.runs.push_back(std::move(run));
          return Status::Ok();
        })
                    : Engine::MappedSink());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return p;
  }
  static std::string Pinned(Engine::MappedRun& run) {
    EXPECT_TRUE(run.Pin());
    std::string s(run.data(), run.blocks() * kBs);
    run.Unpin();
    return s;
  }

  strata::testing::TempDir tmp_{"strata-mapexp"};
  std::string dir_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineMappedExportTest, APlainLunsBlocksGoOutWhereTheyLieAndHolesToTheSink) {
  auto v = Create("a", 4 << 20);
  ASSERT_NE(v, nullptr);
  ASSERT_TRUE(v->Write(0, Blocks(0, 300), false).ok());
  ASSERT_TRUE(v->Write(400 * kBs, Blocks(400, 3), false).ok());
  ASSERT_TRUE(engine_->StartExport("a", "elsewhere").ok());
  Pass p = RunPass("a");
  ASSERT_FALSE(p.runs.empty());
  // Every mapped block once, in LBA order with the holes (a full pass sends holes too).
  uint64_t mapped = 0;
  for (const auto& run : p.runs) {
    mapped += run->blocks();
    EXPECT_EQ(Pinned(*run), Blocks(run->lba(), run->blocks())) << run->lba();
  }
  EXPECT_EQ(mapped, 303u);
  for (const auto& [lba, data] : p.sunk) EXPECT_FALSE(data) << "block " << lba << " was read";
  for (size_t i = 1; i < p.order.size(); ++i) EXPECT_LT(p.order[i - 1], p.order[i]);
  // A later run of the same pass starts where a group (or a slot run) does: none
  // crosses a 1 MiB group.
  for (const auto& run : p.runs)
    EXPECT_EQ(run->lba() / 256, (run->lba() + run->blocks() - 1) / 256);
  engine_->AbortExport("a", Status(StatusCode::kCancelled, "test"));
}

TEST_F(EngineMappedExportTest, ADedupLunIsReadAsBefore) {
  auto v = Create("d", 1 << 20, /*dedup=*/true);
  ASSERT_NE(v, nullptr);
  ASSERT_TRUE(v->Write(0, Blocks(0, 16), false).ok());
  ASSERT_TRUE(engine_->StartExport("d", "elsewhere").ok());
  Pass p = RunPass("d");
  EXPECT_TRUE(p.runs.empty());
  size_t with_data = 0;
  for (const auto& [lba, data] : p.sunk) with_data += data ? 1 : 0;
  EXPECT_EQ(with_data, 16u);
  engine_->AbortExport("d", Status(StatusCode::kCancelled, "test"));
}

TEST_F(EngineMappedExportTest, ARunWhoseSlotWasFreedAndMadeReusableCannotBePinned) {
  auto v = Create("a", 4 << 20);
  ASSERT_NE(v, nullptr);
  ASSERT_TRUE(v->Write(0, Blocks(0, 64), false).ok());
  ASSERT_TRUE(engine_->Flush().ok());
  ASSERT_TRUE(engine_->StartExport("a", "elsewhere").ok());
  Pass p = RunPass("a");
  ASSERT_FALSE(p.runs.empty());
  auto run = p.runs.front();
  ASSERT_EQ(run->lba(), 0u);
  // Block 0 becomes a hole: its slot is freed, and the flush makes it reusable.
  ASSERT_TRUE(v->WriteZeroes(0, kBs, false).ok());
  ASSERT_TRUE(engine_->Flush().ok());
  EXPECT_FALSE(run->Pin());
  // The fallback reads the blocks as they are now.
  std::string now(run->blocks() * kBs, '\0');
  ASSERT_TRUE(run->Reread(now).ok());
  EXPECT_EQ(now.substr(0, kBs), std::string(kBs, '\0'));
  EXPECT_EQ(now.substr(kBs), Blocks(1, run->blocks() - 1));
  engine_->AbortExport("a", Status(StatusCode::kCancelled, "test"));
}

TEST_F(EngineMappedExportTest, APinnedRunKeepsItsFreedSlotsFromReuseUntilUnpinned) {
  auto v = Create("a", 4 << 20);
  auto w = Create("b", 4 << 20);
  ASSERT_NE(v, nullptr);
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(v->Write(0, Blocks(0, 256), false).ok());
  ASSERT_TRUE(engine_->Flush().ok());
  ASSERT_TRUE(engine_->StartExport("a", "elsewhere").ok());
  Pass p = RunPass("a");
  ASSERT_FALSE(p.runs.empty());
  auto run = p.runs.front();
  const std::string before(run->data(), run->blocks() * kBs);
  ASSERT_EQ(before, Blocks(run->lba(), run->blocks()));

  ASSERT_TRUE(run->Pin());
  // The whole run becomes holes (every slot freed), the flush retires them, and
  // another LUN writes more than they hold: none of them may be handed to it while
  // the run is pinned.
  ASSERT_TRUE(v->WriteZeroes(0, 256 * kBs, false).ok());
  ASSERT_TRUE(engine_->Flush().ok());
  ASSERT_TRUE(w->Write(0, Blocks(1000, 512, 7), false).ok());
  ASSERT_TRUE(engine_->Flush().ok());
  EXPECT_EQ(std::string(run->data(), run->blocks() * kBs), before);
  run->Unpin();
  EXPECT_FALSE(run->Pin());  // retired since the pass read the map

  // Unpinned, the next flush hands them back, and the next write reuses them.
  ASSERT_TRUE(engine_->Flush().ok());
  ASSERT_TRUE(w->Write(512 * kBs, Blocks(2000, 512, 9), false).ok());
  EXPECT_NE(std::string(run->data(), run->blocks() * kBs), before);  // a test's peek
  engine_->AbortExport("a", Status(StatusCode::kCancelled, "test"));
}

// The checksums a move compares, hashed where the blocks lie: the XXH3 of what a read
// gives, holes as zeros, for whole and short ranges.
TEST_F(EngineMappedExportTest, ChecksumsFromTheMappingAreThoseOfTheReadBytes) {
  auto v = Create("a", (3 << 20) + 8 * kBs);
  ASSERT_NE(v, nullptr);
  ASSERT_TRUE(v->Write(0, Blocks(0, 100), false).ok());
  ASSERT_TRUE(v->Write(300 * kBs, Blocks(300, 400), false).ok());
  ASSERT_TRUE(v->Write(770 * kBs + 100, std::string(50, 'z'), false).ok());  // partial block
  const uint64_t size = (3 << 20) + 8 * kBs;
  for (uint64_t range : {uint64_t{1} << 20, uint64_t{64} << 10}) {
    auto sums = engine_->LunChecksums("a", range, 0, size);
    ASSERT_TRUE(sums.ok()) << sums.status().ToString();
    ASSERT_EQ(sums->size(), (size + range - 1) / range);
    for (uint64_t i = 0; i < sums->size(); ++i) {
      const uint64_t n = std::min(range, size - i * range);
      std::string bytes(n, '\0');
      ASSERT_TRUE(v->Read(i * range, bytes).ok());
      EXPECT_EQ((*sums)[i], XXH3_64bits(bytes.data(), bytes.size())) << range << " " << i;
    }
  }
}

}  // namespace
}  // namespace strata::storage
