// A dedup write whose blocks' fingerprints were computed before it reached the
// engine (EngineImpl::WriteHashed, as the NBD receive path hashes each block as it
// lands): the same data, space and counts as a plain Write, also after a power loss;
// and a wrong or missing fingerprint never shares wrong data.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/dedup_index.h"
#include "engine/hashed_write.h"
#include "strata/common/mem_env.h"
#include "strata/storage/engine.h"

namespace strata::storage {
namespace {

using engine::Fingerprint;
using engine::FingerprintOf;
using engine::WriteWithFingerprints;

constexpr uint32_t kBs = 4096;
constexpr uint64_t kLunSize = 8ull << 20;

// One engine on its own MemEnv.
struct Device {
  explicit Device(std::function<std::pair<uint64_t, uint64_t>(const void*, size_t)> fp = {})
      : fingerprint(std::move(fp)) {
    EXPECT_TRUE(env.CreateDirectories("/d/ssd").ok());
    Open();
  }
  void Open() {
    EngineOptions o;
    o.state_dir = "/d/ssd";
    o.tiers = {*ParseTierFlag("ssd=/d/ssd")};
    o.tier_capacity_bytes = {256ull << 20};
    o.fingerprint_for_test = fingerprint;
    auto e = Engine::Open(&env, o);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine = std::move(*e);
  }
  void PowerLossAndReopen() {
    env.SimulatePowerLoss();
    dead.push_back(std::move(engine));  // no clean shutdown: destroyed after the checks
    env.SimulatePowerLoss();
    Open();
  }
  std::shared_ptr<Volume> Create(const std::string& name, bool dedup) {
    LunSpec spec;
    spec.name = name;
    spec.size_bytes = kLunSize;
    spec.dedup = dedup;
    auto lun = engine->CreateLun(spec);
    EXPECT_TRUE(lun.ok()) << lun.status().ToString();
    return Vol(name);
  }
  std::shared_ptr<Volume> Vol(const std::string& name) {
    auto v = engine->OpenVolume(name);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? *v : nullptr;
  }
  uint64_t Used() {
    uint64_t used = 0;
    for (const auto& t : engine->Tiers()) used += t.used_bytes;
    return used;
  }
  std::string Read(const std::string& name, uint64_t off, size_t n) {
    std::string out(n, '?');
    Status s = Vol(name)->Read(off, std::span<char>(out.data(), n));
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }

  std::function<std::pair<uint64_t, uint64_t>(const void*, size_t)> fingerprint;
  MemEnv env;
  std::unique_ptr<Engine> engine;
  std::vector<std::unique_ptr<Engine>> dead;
};

// The fingerprints of data's whole blocks from the first boundary at or after `offset`.
std::vector<Fingerprint> FingerprintsOf(uint64_t offset, const std::string& data) {
  std::vector<Fingerprint> fps;
  const uint64_t head = (kBs - offset % kBs) % kBs;
  for (uint64_t at = head; at + kBs <= data.size(); at += kBs) {
    fps.push_back(FingerprintOf(data.data() + at, kBs));
  }
  return fps;
}

std::string Block(uint32_t seed) {
  std::string b(kBs, '\0');
  std::mt19937 rng(seed);
  for (auto& c : b) c = static_cast<char>(rng());
  return b;
}

// Random writes of blocks drawn from a small set (so requests repeat each other's
// blocks and their own), zero blocks, unaligned heads and tails, up to 1 MiB.
std::pair<uint64_t, std::string> RandomWrite(std::mt19937& rng) {
  const size_t blocks = 1 + rng() % (rng() % 4 == 0 ? 256 : 24);
  const bool unaligned = rng() % 3 == 0;
  std::string data;
  for (size_t b = 0; b < blocks; ++b) {
    const uint32_t kind = rng() % 10;
    data += kind == 0 ? std::string(kBs, '\0') : Block(kind < 5 ? rng() % 40 : 1000 + rng());
  }
  uint64_t offset = (rng() % (kLunSize / kBs - blocks)) * kBs;
  if (unaligned) {  // cut a partial block off each end
    const size_t head = 1 + rng() % (kBs - 1);
    const size_t tail = data.size() > 2 * kBs ? 1 + rng() % (kBs - 1) : 0;
    data = data.substr(head, data.size() - head - tail);
    offset += head;
  }
  return {offset, data};
}

TEST(EngineHashedWriteTest, MatchesThePlainWriteInDataSpaceAndAfterAPowerLoss) {
  Device plain, hashed;
  std::mt19937 rng(20261206);
  for (Device* d : {&plain, &hashed}) {
    d->Create("dedup", true);
    d->Create("plain", false);  // dedup off: the fingerprints go unused
  }
  for (int i = 0; i < 300; ++i) {
    const std::string lun = rng() % 5 == 0 ? "plain" : "dedup";
    auto [offset, data] = RandomWrite(rng);
    std::vector<Fingerprint> fps = FingerprintsOf(offset, data);
    // Some callers have only the first blocks' fingerprints: the rest are computed.
    if (rng() % 4 == 0) fps.resize(rng() % (fps.size() + 1));
    const bool fua = rng() % 8 == 0;
    ASSERT_TRUE(plain.Vol(lun)->Write(offset, data, fua).ok());
    Status s = WriteWithFingerprints(*hashed.Vol(lun), offset, data, fps, fua);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_EQ(hashed.Read(lun, offset, data.size()), data) << "write " << i;
    ASSERT_EQ(hashed.Used(), plain.Used()) << "write " << i;
  }
  auto same = [&](const char* when) {
    for (const char* lun : {"dedup", "plain"}) {
      EXPECT_EQ(hashed.Read(lun, 0, kLunSize), plain.Read(lun, 0, kLunSize)) << lun << " " << when;
    }
    EXPECT_EQ(hashed.Used(), plain.Used()) << when;
    SpaceStats a = plain.engine->DeviceSpace(), b = hashed.engine->DeviceSpace();
    EXPECT_EQ(b.logical_bytes, a.logical_bytes) << when;
    EXPECT_EQ(b.unique_bytes, a.unique_bytes) << when;
    EXPECT_EQ(b.shared_bytes, a.shared_bytes) << when;
  };
  same("before the power loss");
  ASSERT_TRUE(plain.engine->Flush().ok());
  ASSERT_TRUE(hashed.engine->Flush().ok());
  // Unflushed writes after the flush: both lose the same ones.
  for (int i = 0; i < 20; ++i) {
    auto [offset, data] = RandomWrite(rng);
    ASSERT_TRUE(plain.Vol("dedup")->Write(offset, data, false).ok());
    ASSERT_TRUE(WriteWithFingerprints(*hashed.Vol("dedup"), offset, data,
                                      FingerprintsOf(offset, data), false)
                    .ok());
  }
  plain.PowerLossAndReopen();
  hashed.PowerLossAndReopen();
  same("after the power loss");
}

TEST(EngineHashedWriteTest, BlocksWithAFingerprintAreNotHashedAgain) {
  auto calls = std::make_shared<std::atomic<int>>(0);
  Device d([calls](const void* p, size_t n) {
    calls->fetch_add(1);
    Fingerprint f = FingerprintOf(p, n);
    return std::make_pair(f.lo, f.hi);
  });
  auto v = d.Create("v", true);
  std::string mib;
  for (int i = 0; i < 256; ++i) mib += Block(100 + i);
  ASSERT_TRUE(WriteWithFingerprints(*v, 0, mib, FingerprintsOf(0, mib), false).ok());
  EXPECT_EQ(calls->load(), 0);
  // A partial block at each end is read, modified and hashed here.
  const std::string mid = mib.substr(100, mib.size() - 200);
  ASSERT_TRUE(
      WriteWithFingerprints(*v, (2 << 20) + 100, mid, FingerprintsOf(100, mid), false).ok());
  EXPECT_EQ(calls->load(), 2);
  // Only the first 10 fingerprints: the other 246 blocks are hashed here.
  std::vector<Fingerprint> some = FingerprintsOf(0, mib);
  some.resize(10);
  std::string other;
  for (int i = 0; i < 256; ++i) other += Block(1000 + i);
  ASSERT_TRUE(WriteWithFingerprints(*v, 4 << 20, other, some, false).ok());
  EXPECT_EQ(calls->load(), 2 + 246);
  EXPECT_EQ(d.Read("v", 0, mib.size()), mib);
  EXPECT_EQ(d.Read("v", (2 << 20) + 100, mid.size()), mid);
  EXPECT_EQ(d.Read("v", 4 << 20, other.size()), other);
}

TEST(EngineHashedWriteTest, WrongFingerprintsNeverShareWrongData) {
  Device d;
  auto v = d.Create("v", true);
  const std::string a = Block(1), b = Block(2), c = Block(3);
  ASSERT_TRUE(v->Write(0, a, false).ok());
  ASSERT_EQ(d.Used(), kBs);
  // b claims a's fingerprint: a candidate, but its bytes differ, so b gets its own slot.
  const Fingerprint fa = FingerprintOf(a.data(), kBs);
  ASSERT_TRUE(WriteWithFingerprints(*v, kBs, b, std::vector<Fingerprint>{fa}, false).ok());
  EXPECT_EQ(d.Read("v", kBs, kBs), b);
  EXPECT_EQ(d.Read("v", 0, kBs), a);
  EXPECT_EQ(d.Used(), 2u * kBs);
  // One request of b, c and b again, all claiming a's fingerprint: in-request twins
  // are told apart by their bytes as well (b shares with the b above only if found).
  const std::string bcb = b + c + b;
  ASSERT_TRUE(WriteWithFingerprints(*v, 2 * kBs, bcb, std::vector<Fingerprint>(3, fa), false).ok());
  EXPECT_EQ(d.Read("v", 2 * kBs, bcb.size()), bcb);
  EXPECT_EQ(d.Read("v", 0, 2 * kBs), a + b);
  // Random fingerprints over 1 MiB of a's and c's copies: nothing is shared wrongly.
  std::string mib;
  for (int i = 0; i < 256; ++i) mib += i % 2 ? a : c;
  std::vector<Fingerprint> noise(256);
  std::mt19937_64 rng(7);
  for (auto& f : noise) f = Fingerprint{rng(), rng()};
  ASSERT_TRUE(WriteWithFingerprints(*v, 1 << 20, mib, noise, false).ok());
  EXPECT_EQ(d.Read("v", 1 << 20, mib.size()), mib);
  EXPECT_EQ(d.Read("v", 0, 5 * kBs), a + b + bcb);
  // What a wrong fingerprint costs: the block's dedup, here and now. A write of b with
  // its true fingerprint may not find the b indexed under a's; after a restart the index
  // is rebuilt from the stored bytes and finds it.
  ASSERT_TRUE(v->Flush().ok());
  v.reset();
  d.dead.push_back(std::move(d.engine));
  d.dead.clear();  // a clean shutdown
  d.Open();
  v = d.Vol("v");
  const uint64_t used = d.Used();
  ASSERT_TRUE(v->Write(3 << 20, b, false).ok());
  EXPECT_EQ(d.Used(), used);
  EXPECT_EQ(d.Read("v", 0, 5 * kBs), a + b + bcb);
  EXPECT_EQ(d.Read("v", 1 << 20, mib.size()), mib);
}

TEST(EngineHashedWriteTest, CollidingFingerprintsOfTheEngineShareOnlyEqualBytes) {
  // The engine's own fingerprint is a constant (every block collides); the caller's
  // fingerprints are that same constant, as the receive path would compute them.
  auto constant = [](const void*, size_t) { return std::make_pair(uint64_t{5}, uint64_t{6}); };
  Device d(constant);
  auto v = d.Create("v", true);
  std::string data;
  // 4 contents: as many slots as the index keeps under one tag (kMaxSameTag).
  for (int i = 0; i < 64; ++i) data += i % 9 == 8 ? std::string(kBs, '\0') : Block(i % 4);
  const std::vector<Fingerprint> fps(64, Fingerprint{5, 6});
  ASSERT_TRUE(WriteWithFingerprints(*v, 0, data, fps, false).ok());
  ASSERT_TRUE(WriteWithFingerprints(*v, 2 << 20, data, fps, false).ok());
  EXPECT_EQ(d.Read("v", 0, data.size()), data);
  EXPECT_EQ(d.Read("v", 2 << 20, data.size()), data);
  EXPECT_EQ(d.Used(), 4u * kBs);  // 4 contents; holes cost nothing
}

TEST(EngineHashedWriteTest, AVolumeTheEngineDidNotOpenIsInvalidArgument) {
  class Other final : public Volume {
   public:
    uint64_t size_bytes() const override { return 1 << 20; }
    uint32_t block_size() const override { return kBs; }
    bool read_only() const override { return false; }
    Status Read(uint64_t, std::span<char>) override { return Status::Ok(); }
    Status Write(uint64_t, std::span<const char>, bool) override { return Status::Ok(); }
    Status WriteZeroes(uint64_t, uint64_t, bool) override { return Status::Ok(); }
    Status Trim(uint64_t, uint64_t) override { return Status::Ok(); }
    Status Flush() override { return Status::Ok(); }
    LunIoStats* io_stats() override { return nullptr; }
  } other;
  const std::string b = Block(1);
  Status s = WriteWithFingerprints(other, 0, b, {}, false);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
}

}  // namespace
}  // namespace strata::storage
