// Dedup on the real file system (Env::Default): there the engine compares and
// re-hashes slots through the tier file's read-only mapping (File::MapForRead),
// which MemEnv does not offer.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <map>
#include <random>
#include <string>

#include "strata/common/env.h"
#include "strata/storage/engine.h"
#include "temp_dir.h"

namespace strata::storage {
namespace {

constexpr uint32_t kBs = 4096;

class EngineDedupPosixTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    dir_ = tmp_.path();
    Reopen();
  }
  void TearDown() override { engine_.reset(); }

  void Reopen() {
    engine_.reset();
    EngineOptions o;
    o.state_dir = dir_;
    o.tiers = {*ParseTierFlag("ssd=" + dir_)};
    o.tier_capacity_bytes = {64ull << 20};
    o.fingerprint_for_test = fingerprint_;
    auto e = Engine::Open(Env::Default(), o);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e);
  }

  std::shared_ptr<Volume> Create(const std::string& name) {
    LunSpec spec;
    spec.name = name;
    spec.size_bytes = 4 << 20;
    spec.dedup = true;
    EXPECT_TRUE(engine_->CreateLun(spec).ok());
    return Vol(name);
  }
  std::shared_ptr<Volume> Vol(const std::string& name) {
    auto v = engine_->OpenVolume(name);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? *v : nullptr;
  }
  static std::string Block(uint64_t content) {
    std::string b(kBs, '\0');
    for (size_t i = 0; i < kBs; i += 8) {
      uint64_t v = content * 0x9e3779b97f4a7c15ull + i;
      std::memcpy(b.data() + i, &v, 8);
    }
    return b;
  }
  static void Write(Volume& v, uint64_t lba, const std::string& data) {
    ASSERT_TRUE(v.Write(lba * kBs, std::span<const char>(data.data(), data.size()), false).ok());
  }
  static std::string Read(Volume& v, uint64_t lba) {
    std::string out(kBs, '?');
    EXPECT_TRUE(v.Read(lba * kBs, std::span<char>(out.data(), kBs)).ok());
    return out;
  }
  uint64_t Used() { return engine_->Tiers()[0].used_bytes; }

  strata::testing::TempDir tmp_{"strata-dedup"};
  std::string dir_;
  std::function<std::pair<uint64_t, uint64_t>(const void*, size_t)> fingerprint_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineDedupPosixTest, SharesEqualBlocksAndSurvivesOverwritesAndRestarts) {
  auto v = Create("v");
  for (uint64_t lba = 0; lba < 64; ++lba) Write(*v, lba, Block(lba % 8));
  EXPECT_EQ(Used(), 8u * kBs);
  // Overwrites free shared blocks one reference at a time (the last one re-hashes
  // the slot through the view to leave the index).
  for (uint64_t lba = 0; lba < 64; lba += 2) Write(*v, lba, Block(100 + lba));
  ASSERT_TRUE(v->Flush().ok());
  for (uint64_t lba = 0; lba < 64; ++lba) {
    ASSERT_EQ(Read(*v, lba), lba % 2 ? Block(lba % 8) : Block(100 + lba)) << lba;
  }
  EXPECT_EQ(Used(), (4u + 32u) * kBs);
  v.reset();
  Reopen();
  v = Vol("v");
  Write(*v, 100, Block(1));  // still found after the index was rebuilt
  EXPECT_EQ(Used(), (4u + 32u) * kBs);
  EXPECT_EQ(Read(*v, 100), Block(1));
}

TEST_F(EngineDedupPosixTest, LargeAndUnalignedReadsOfScatteredSlotsComeFromTheMapping) {
  auto v = Create("v");
  // Shared blocks interleaved with unique ones and holes: a 64-block read crosses
  // dozens of runs of slots, each copied from the tier's mapping.
  std::string want;
  for (uint64_t lba = 0; lba < 64; ++lba) {
    std::string b = lba % 5 == 4 ? std::string(kBs, '\0') : Block(lba % 3 ? lba % 4 : 1000 + lba);
    if (lba % 5 != 4) Write(*v, lba, b);
    want += b;
  }
  std::string got(want.size(), '?');
  ASSERT_TRUE(v->Read(0, std::span<char>(got.data(), got.size())).ok());
  EXPECT_TRUE(got == want);
  // Not block-aligned at either end.
  std::string part(10 * kBs + 123, '?');
  ASSERT_TRUE(v->Read(3 * kBs + 77, std::span<char>(part.data(), part.size())).ok());
  EXPECT_TRUE(part == want.substr(3 * kBs + 77, part.size()));
  // Overwritten (copy on write) and read again after a restart (mapping made anew).
  Write(*v, 2, Block(7777));
  want.replace(2 * kBs, kBs, Block(7777));
  ASSERT_TRUE(v->Flush().ok());
  v.reset();
  Reopen();
  v = Vol("v");
  ASSERT_TRUE(v->Read(0, std::span<char>(got.data(), got.size())).ok());
  EXPECT_TRUE(got == want);
}

TEST_F(EngineDedupPosixTest, FingerprintCollisionsNeverShareDifferentData) {
  fingerprint_ = [](const void*, size_t) { return std::make_pair(uint64_t{7}, uint64_t{7}); };
  Reopen();
  auto v = Create("v");
  std::mt19937_64 rng(7);
  std::map<uint64_t, uint64_t> model;  // lba -> content
  for (int i = 0; i < 400; ++i) {
    uint64_t lba = rng() % 128, content = rng() % 6;
    Write(*v, lba, Block(content));
    model[lba] = content;
    if (i % 50 == 0) {
      ASSERT_TRUE(v->Flush().ok());  // recycles freed slots
    }
  }
  for (const auto& [lba, content] : model) {
    ASSERT_EQ(Read(*v, lba), Block(content)) << lba;
  }
  // Every block has the same fingerprint: only equal bytes were shared (the reads
  // above), and the 6 contents need at least 6 slots.
  EXPECT_GE(Used(), 6u * kBs);
}

}  // namespace
}  // namespace strata::storage
