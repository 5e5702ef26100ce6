// Volume::WriteV (a write from several buffers, as a move's target receives it) on
// the engine's LUNs, in memory and on the real file system (pwritev): the same
// contents and space as Write of the joined bytes.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <random>
#include <string>
#include <vector>

#include "strata/common/env.h"
#include "strata/common/mem_env.h"
#include "strata/storage/engine.h"
#include "temp_dir.h"

namespace strata::storage {
namespace {

constexpr uint32_t kBs = 4096;
constexpr uint64_t kSize = 8ull << 20;

// Cuts `data` into pieces of random sizes (some cutting blocks, some tiny, some empty).
std::vector<std::span<const char>> Cut(const std::string& data, std::mt19937& rng) {
  std::vector<std::span<const char>> pieces;
  for (size_t at = 0; at < data.size();) {
    size_t n = 0;
    switch (rng() % 4) {
      case 0:
        n = 16384;
        break;
      case 1:
        n = 1 + rng() % 64;
        break;
      case 2:
        n = 0;
        break;
      default:
        n = 1 + rng() % 40000;
        break;
    }
    n = std::min(n, data.size() - at);
    pieces.emplace_back(data.data() + at, n);
    at += n;
  }
  return pieces;
}

class EngineWriteVTest : public ::testing::TestWithParam<bool> {  // true: Env::Default
 protected:
  void SetUp() override {
    if (GetParam()) {
      ASSERT_FALSE(tmp_.path().empty());
      dir_ = tmp_.path();
      env_ = Env::Default();
    } else {
      dir_ = "/d";
      env_ = &mem_;
      ASSERT_TRUE(mem_.CreateDirectories(dir_).ok());
    }
    EngineOptions o;
    o.state_dir = dir_;
    o.tiers = {*ParseTierFlag("ssd=" + dir_)};
    o.tier_capacity_bytes = {64ull << 20};
    auto e = Engine::Open(env_, o);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e);
  }
  void TearDown() override { engine_.reset(); }

  std::shared_ptr<Volume> Create(const std::string& name, bool dedup) {
    LunSpec spec;
    spec.name = name;
    spec.size_bytes = kSize;
    spec.dedup = dedup;
    EXPECT_TRUE(engine_->CreateLun(spec).ok());
    return *engine_->OpenVolume(name);
  }

  static std::string All(Volume& v) {
    std::string s(kSize, 0);
    EXPECT_TRUE(v.Read(0, std::span<char>(s.data(), s.size())).ok());
    return s;
  }

  MemEnv mem_;
  Env* env_ = nullptr;
  strata::testing::TempDir tmp_{"strata-writev"};
  std::string dir_;
  std::unique_ptr<Engine> engine_;
};

TEST_P(EngineWriteVTest, SameContentsAndSpaceAsWriteOfTheJoinedBytes) {
  for (bool dedup : {false, true}) {
    SCOPED_TRACE(dedup ? "dedup" : "no dedup");
    const std::string sfx = dedup ? "-d" : "";
    auto v = Create("vec" + sfx, dedup);   // written with WriteV
    auto w = Create("flat" + sfx, dedup);  // the same bytes with Write
    std::mt19937 rng(dedup ? 5 : 3);
    for (int k = 0; k < 120; ++k) {
      const uint64_t blocks = 1 + rng() % 300;  // up to more than one run (256 blocks)
      uint64_t at = (rng() % (kSize / kBs - blocks)) * kBs;
      uint64_t n = blocks * kBs;
      if (rng() % 4 == 0) {  // unaligned head and tail: partial blocks
        at += 1 + rng() % 4000;
        n -= 1 + rng() % 4000;
      }
      std::string d(n, 0);
      for (size_t i = 0; i < d.size(); i += 512) d[i] = static_cast<char>(1 + rng() % 200);
      if (rng() % 3 == 0) {  // some zero blocks: holes
        for (size_t b = 0; b + kBs <= d.size(); b += 3 * kBs) std::fill_n(d.begin() + b, kBs, 0);
      }
      auto pieces = Cut(d, rng);
      ASSERT_TRUE(v->WriteV(at, pieces, k % 17 == 0).ok()) << k;
      ASSERT_TRUE(w->Write(at, std::span<const char>(d.data(), d.size()), false).ok()) << k;
      if (k % 40 == 39) {
        ASSERT_EQ(All(*v), All(*w)) << k;
      }
    }
    ASSERT_EQ(All(*v), All(*w));
    EXPECT_EQ(engine_->GetLun("vec" + sfx)->space.logical_bytes,
              engine_->GetLun("flat" + sfx)->space.logical_bytes);  // zero blocks are holes
  }
}

TEST_P(EngineWriteVTest, PastTheEndIsRefusedAndWritesNothing) {
  auto v = Create("lun", false);
  std::string d(3 * kBs, 'x');
  std::vector<std::span<const char>> pieces = {std::span<const char>(d.data(), kBs),
                                               std::span<const char>(d.data() + kBs, 2 * kBs)};
  Status s = v->WriteV(kSize - kBs, pieces, false);
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange) << s.ToString();
  EXPECT_NE(s.message().find("past the end"), std::string::npos);
  EXPECT_EQ(engine_->GetLun("lun")->space.logical_bytes, 0u);
}

TEST_P(EngineWriteVTest, FileWriteAtVWritesEveryPieceInOrder) {
  auto f = env_->OpenFile(dir_ + "/raw", true);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  std::string d(3000 * 7, 0);  // more pieces than one pwritev takes (1024)
  std::mt19937 rng(9);
  for (auto& c : d) c = static_cast<char>(rng());
  std::vector<std::span<const char>> pieces;
  for (size_t at = 0; at < d.size(); at += 7) pieces.emplace_back(d.data() + at, 7);
  ASSERT_TRUE((*f)->WriteAtV(100, pieces).ok());
  std::string back(d.size(), 0);
  ASSERT_TRUE((*f)->ReadAt(100, std::span<char>(back.data(), back.size())).ok());
  EXPECT_EQ(back, d);
}

INSTANTIATE_TEST_SUITE_P(Envs, EngineWriteVTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? "Posix" : "Mem";
                         });

}  // namespace
}  // namespace strata::storage
