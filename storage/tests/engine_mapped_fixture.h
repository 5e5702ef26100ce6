// A fixture for the engine's tests of the tier mapping's paths (BeginWrite, BeginRead):
// one engine on the real file system (Env::Default, since MemEnv's files have no
// mapping) in a scratch directory, and the helpers those tests share.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>

#include "strata/common/env.h"
#include "strata/storage/engine.h"
#include "temp_dir.h"

namespace strata::storage::testing {

constexpr uint32_t kBs = 4096;
constexpr uint32_t kMiB = 1 << 20;

// n bytes of a xorshift stream: no 4 KiB block of zeros, a different stream per seed.
inline std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint64_t x = 0x9e3779b97f4a7c15ull * (seed + 1);
  for (size_t i = 0; i + 8 <= n; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(s.data() + i, &x, 8);
  }
  return s;
}

// Lands `data` through w as a receiver would, `piece` bytes a receive at most; stops
// after `limit` bytes.
inline void Land(IncomingWrite& w, const std::string& data, size_t piece = 64 << 10,
                 size_t limit = SIZE_MAX) {
  size_t done = 0;
  while (done < data.size() && done < limit) {
    std::span<char> space = w.NextSpace();
    ASSERT_FALSE(space.empty());
    size_t n = std::min({space.size(), piece, data.size() - done, limit - done});
    std::memcpy(space.data(), data.data() + done, n);
    w.Received(n);
    done += n;
  }
}

class EngineMappedTest : public ::testing::Test {
 protected:
  // A tier of `tier_capacity` bytes in a scratch directory under `parent` (TempDir's
  // default when empty); Create makes LUNs of `lun_size` bytes.
  EngineMappedTest(const char* dir_prefix, uint64_t tier_capacity, uint64_t lun_size,
                   const char* parent = "")
      : tmp_(dir_prefix, parent), tier_capacity_(tier_capacity), lun_size_(lun_size) {}

  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    dir_ = tmp_.path();
    Reopen();
  }
  void TearDown() override { engine_.reset(); }
  void Reopen() {
    engine_.reset();
    EngineOptions o = options_;
    o.state_dir = dir_;
    o.tiers = {*ParseTierFlag("ssd=" + dir_)};
    o.tier_capacity_bytes = {tier_capacity_};
    auto e = Engine::Open(env_, o);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e);
  }
  std::shared_ptr<Volume> Create(const std::string& name, bool dedup = false) {
    LunSpec spec;
    spec.name = name;
    spec.size_bytes = lun_size_;
    spec.dedup = dedup;
    EXPECT_TRUE(engine_->CreateLun(spec).ok());
    return Vol(name);
  }
  std::shared_ptr<Volume> Vol(const std::string& name) {
    auto v = engine_->OpenVolume(name);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? *v : nullptr;
  }
  static void Write(Volume& v, uint64_t offset, const std::string& data) {
    ASSERT_TRUE(v.Write(offset, std::span<const char>(data.data(), data.size()), false).ok());
  }
  static std::string Read(Volume& v, uint64_t offset, size_t n) {
    std::string out(n, '?');
    EXPECT_TRUE(v.Read(offset, std::span<char>(out.data(), n)).ok());
    return out;
  }
  uint64_t Used() { return engine_->Tiers()[0].used_bytes; }

  strata::testing::TempDir tmp_;
  Env* env_ = Env::Default();  // a test may wrap it (set before SetUp)
  EngineOptions options_;      // the engine's, but for its directory and tier (Reopen)
  const uint64_t tier_capacity_;
  const uint64_t lun_size_;
  std::string dir_;
  std::unique_ptr<Engine> engine_;
};

}  // namespace strata::storage::testing
