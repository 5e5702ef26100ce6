// A dedup write whose blocks' fingerprints were computed before it reached the
// engine (EngineImpl::WriteHashed, as the NBD receive path hashes each block as it
// lands): the same data, space and counts as a plain Write, also after a power loss;
// and a wrong or missing fingerprint never shares wrong data.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/dedup_index.h"
#include "engine/hashed_write.h"
#include "strata/common/env.h"
#include "strata/common/mem_env.h"
#include "strata/storage/engine.h"
#include "temp_dir.h"

namespace strata::storage {
namespace {

using engine::Fingerprint;
using engine::FingerprintOf;
using engine::WriteWithFingerprints;

constexpr uint32_t kBs = 4096;
constexpr uint64_t kLunSize = 8ull << 20;

// One engine on its own MemEnv, or (real) on the real file system under TMPDIR: a
// tier there has a shared mapping (TierMapping), which a placed receive needs.
struct Device {
  explicit Device(std::function<std::pair<uint64_t, uint64_t>(const void*, size_t)> fp = {},
                  bool real = false)
      : fingerprint(std::move(fp)) {
    if (real) {
      tmp.emplace("strata-hashed");
      EXPECT_FALSE(tmp->path().empty());
      dir = tmp->path();
      use = Env::Default();
    } else {
      EXPECT_TRUE(env.CreateDirectories("/d/ssd").ok());
    }
    Open();
  }
  ~Device() {
    engine.reset();
    dead.clear();
  }
  void Open() {
    EngineOptions o;
    o.state_dir = dir;
    o.tiers = {*ParseTierFlag("ssd=" + dir)};
    o.tier_capacity_bytes = {256ull << 20};
    o.fingerprint_for_test = fingerprint;
    auto e = Engine::Open(use, o);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine = std::move(*e);
  }
  void PowerLossAndReopen() {  // MemEnv only
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
  Env* use = &env;
  std::optional<strata::testing::TempDir> tmp;  // the real file system's directory
  std::string dir = "/d/ssd";
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

// Lands `data` through `w` in receives of random sizes (never more than NextSpace).
void Land(IncomingWrite& w, const std::string& data, std::mt19937& rng) {
  for (size_t at = 0; at < data.size();) {
    std::span<char> space = w.NextSpace();
    ASSERT_FALSE(space.empty());
    ASSERT_LE(space.size(), data.size() - at);
    const size_t n = std::min<size_t>(space.size(), 1 + rng() % (rng() % 2 ? 70000 : 5000));
    std::memcpy(space.data(), data.data() + at, n);
    w.Received(n);
    at += n;
  }
}

// Aligned random writes of whole blocks (RandomWrite without its cut ends).
std::pair<uint64_t, std::string> AlignedWrite(std::mt19937& rng) {
  for (;;) {
    auto [offset, data] = RandomWrite(rng);
    if (offset % kBs == 0 && data.size() % kBs == 0) return {offset, data};
  }
}

// A LUN written whole, part of it twice, then the engine reopened: the slots the
// overwrite freed are free, and the next dedup write's mapping sets them aside (the
// reserve), inside the file, so a write can be received into them.
std::shared_ptr<Volume> Prefilled(Device& d, const std::string& name) {
  {
    auto v = d.Create(name, true);
    std::string all;
    for (uint64_t b = 0; b < kLunSize / kBs; ++b) all += Block(5000 + static_cast<uint32_t>(b));
    EXPECT_TRUE(v->Write(0, all, false).ok());
    std::string other;
    for (int b = 0; b < 512; ++b) other += Block(9000 + b);
    EXPECT_TRUE(v->Write(0, other, false).ok());  // 512 slots freed
    EXPECT_TRUE(v->Write(0, all.substr(0, other.size()), false).ok());
  }
  d.engine.reset();
  d.Open();
  auto v = d.Vol(name);
  // A dedup write of more than 16 blocks sets up to 8 runs' worth aside.
  std::string tail;
  for (int b = 0; b < 32; ++b) tail += Block(30000 + b);
  EXPECT_TRUE(v->Write(kLunSize - tail.size(), tail, false).ok());
  return v;
}

// The engine's fingerprint, counting its calls in *calls.
std::function<std::pair<uint64_t, uint64_t>(const void*, size_t)> CountingFingerprint(
    std::shared_ptr<std::atomic<int>> calls) {
  return [calls](const void* p, size_t n) {
    calls->fetch_add(1);
    Fingerprint f = FingerprintOf(p, n);
    return std::make_pair(f.lo, f.hi);
  };
}

TEST(EngineHashedWriteTest, ADedupWriteReceivedIntoItsSlotsMatchesWriteAndHashesEachBlockOnce) {
  auto calls = std::make_shared<std::atomic<int>>(0);
  auto counting = CountingFingerprint(calls);
  Device plain(counting), received(counting, /*real=*/true);
  Prefilled(plain, "v");  // the same history on both; free slots to place into
  Prefilled(received, "v");
  std::mt19937 rng(16);
  int placed = 0;
  for (int i = 0; i < 150; ++i) {
    auto [offset, data] = AlignedWrite(rng);
    ASSERT_TRUE(plain.Vol("v")->Write(offset, data, false).ok());
    auto vol = received.Vol("v");
    auto w = vol->BeginWrite(offset, static_cast<uint32_t>(data.size()), false, {});
    if (w == nullptr) {  // no slots to place into yet (fresh ones past the file's end)
      ASSERT_TRUE(vol->Write(offset, data, false).ok());
    } else {
      ++placed;
      const int before = calls->load();
      Land(*w, data, rng);
      // Every block was hashed as it landed, once, and not again by the commit.
      ASSERT_EQ(calls->load() - before, static_cast<int>(data.size() / kBs));
      Status s = w->Commit();
      ASSERT_TRUE(s.ok()) << s.ToString();
      ASSERT_EQ(calls->load() - before, static_cast<int>(data.size() / kBs));
      w.reset();
    }
    ASSERT_EQ(received.Read("v", offset, data.size()), data) << "write " << i;
    ASSERT_EQ(received.Used(), plain.Used()) << "write " << i;
    if (i % 10 == 9) {  // a flush makes replaced slots reusable: they can be placed into
      ASSERT_TRUE(plain.engine->Flush().ok());
      ASSERT_TRUE(received.engine->Flush().ok());
    }
  }
  EXPECT_GT(placed, 20);
  EXPECT_EQ(received.Read("v", 0, kLunSize), plain.Read("v", 0, kLunSize));
  SpaceStats a = plain.engine->DeviceSpace(), b = received.engine->DeviceSpace();
  EXPECT_EQ(b.unique_bytes, a.unique_bytes);
  EXPECT_EQ(b.shared_bytes, a.shared_bytes);
  // Reopened (the index rebuilt from the stored bytes): the same.
  received.engine.reset();
  received.Open();
  EXPECT_EQ(received.Read("v", 0, kLunSize), plain.Read("v", 0, kLunSize));
  EXPECT_EQ(received.Used(), plain.Used());
}

// Random 4 KiB overwrites leave the free slots scattered, so a later 1 MiB dedup
// write is placed into slots of many short runs: NextSpaces hands several runs to
// one receive (at most 128 KiB a receive), receives cut anywhere across them land
// every byte where NextSpace alone would have put it, and the result matches Write.
TEST(EngineHashedWriteTest, ADedupWriteIntoScatteredSlotsTakesSeveralRunsAReceive) {
  auto calls = std::make_shared<std::atomic<int>>(0);
  auto counting = CountingFingerprint(calls);
  Device plain(counting), received(counting, /*real=*/true);
  std::mt19937 rng(1616);
  std::string all;
  for (uint64_t b = 0; b < kLunSize / kBs; ++b) all += Block(5000 + static_cast<uint32_t>(b));
  for (Device* d : {&plain, &received}) {
    auto v = d->Create("v", true);
    ASSERT_TRUE(v->Write(0, all, false).ok());
    // Every other block rewritten, in random order: the slots freed are scattered.
    std::vector<uint64_t> lbas;
    for (uint64_t b = 0; b < kLunSize / kBs; b += 2) lbas.push_back(b);
    std::shuffle(lbas.begin(), lbas.end(), std::mt19937(7));
    for (uint64_t b : lbas) {
      ASSERT_TRUE(v->Write(b * kBs, Block(20000 + static_cast<uint32_t>(b)), false).ok());
    }
    ASSERT_TRUE(d->engine->Flush().ok());
  }
  int placed = 0, several = 0;
  for (int i = 0; i < 24; ++i) {
    const uint64_t offset = (rng() % (kLunSize / (1 << 20))) << 20;
    std::string data;
    for (int b = 0; b < 256; ++b) data += Block(40000 + static_cast<uint32_t>(i * 256 + b));
    if (i % 3 == 2) data.replace(0, 64 * kBs, data.substr(128 * kBs, 64 * kBs));  // repeats
    ASSERT_TRUE(plain.Vol("v")->Write(offset, data, false).ok());
    auto vol = received.Vol("v");
    auto w = vol->BeginWrite(offset, static_cast<uint32_t>(data.size()), false, {});
    if (w == nullptr) {
      ASSERT_TRUE(vol->Write(offset, data, false).ok());
    } else {
      ++placed;
      const int before = calls->load();
      for (size_t at = 0; at < data.size();) {
        std::array<std::span<char>, 64> spaces;
        const size_t max = 1 + rng() % spaces.size();
        const size_t k = w->NextSpaces(spaces.data(), max);
        ASSERT_GE(k, 1u);
        ASSERT_LE(k, max);
        size_t room = 0;
        for (size_t j = 0; j < k; ++j) {
          ASSERT_FALSE(spaces[j].empty());
          room += spaces[j].size();
        }
        ASSERT_LE(room, data.size() - at);
        ASSERT_LE(room, size_t{128} << 10);
        // The first space is where NextSpace alone puts the next bytes.
        ASSERT_EQ(w->NextSpace().data(), spaces[0].data());
        if (k > 1) ++several;
        // Land all of it, or a cut anywhere (inside a space, across several).
        const size_t n = rng() % 2 ? room : 1 + rng() % room;
        size_t done = 0;
        for (size_t j = 0; j < k && done < n; ++j) {
          const size_t m = std::min(spaces[j].size(), n - done);
          std::memcpy(spaces[j].data(), data.data() + at + done, m);
          done += m;
        }
        w->Received(n);
        at += n;
      }
      ASSERT_EQ(calls->load() - before, 256);  // each block hashed once, as it landed
      Status s = w->Commit();
      ASSERT_TRUE(s.ok()) << s.ToString();
      w.reset();
    }
    ASSERT_EQ(received.Read("v", offset, data.size()), data) << "write " << i;
    ASSERT_EQ(received.Used(), plain.Used()) << "write " << i;
    if (i % 4 == 3) {
      ASSERT_TRUE(plain.engine->Flush().ok());
      ASSERT_TRUE(received.engine->Flush().ok());
    }
  }
  EXPECT_GT(placed, 12);
  EXPECT_GT(several, 0);  // the slots were scattered: some receives took several runs
  EXPECT_EQ(received.Read("v", 0, kLunSize), plain.Read("v", 0, kLunSize));
  received.engine.reset();
  received.Open();
  EXPECT_EQ(received.Read("v", 0, kLunSize), plain.Read("v", 0, kLunSize));
  EXPECT_EQ(received.Used(), plain.Used());
}

// Slots a flush makes reusable are handed out in address order, whatever order the
// overwrites freed them in: a large write after random 4 KiB overwrites receives into
// ascending slots (its receive pays for scattered ones in the tier's page tables).
TEST(EngineHashedWriteTest, SlotsFreedInRandomOrderAreReceivedIntoInAddressOrder) {
  Device d({}, /*real=*/true);
  auto v = d.Create("v", true);
  std::string all;
  for (uint64_t b = 0; b < kLunSize / kBs; ++b) all += Block(70000 + static_cast<uint32_t>(b));
  ASSERT_TRUE(v->Write(0, all, false).ok());
  ASSERT_TRUE(d.engine->Flush().ok());
  // Every block rewritten on its own, in random order: its old slot is freed then.
  std::vector<uint64_t> lbas;
  for (uint64_t b = 0; b < kLunSize / kBs; ++b) lbas.push_back(b);
  std::shuffle(lbas.begin(), lbas.end(), std::mt19937(33));
  for (uint64_t b : lbas) {
    std::string block = Block(90000 + static_cast<uint32_t>(b));
    ASSERT_TRUE(v->Write(b * kBs, block, false).ok());
    all.replace(b * kBs, kBs, block);
  }
  ASSERT_TRUE(d.engine->Flush().ok());
  int placed = 0, spaces_seen = 0, descents = 0;
  for (int i = 0; i < 6; ++i) {
    const uint64_t offset = static_cast<uint64_t>(i) << 20;
    std::string data;
    for (int b = 0; b < 256; ++b) data += Block(110000 + static_cast<uint32_t>(i * 256 + b));
    all.replace(offset, data.size(), data);
    auto w = v->BeginWrite(offset, static_cast<uint32_t>(data.size()), false, {});
    if (w == nullptr) {  // e.g. the reserve's leftover fresh slots past the file's end
      ASSERT_TRUE(v->Write(offset, data, false).ok());
      continue;
    }
    ++placed;
    const char* last = nullptr;
    for (size_t at = 0; at < data.size();) {
      std::array<std::span<char>, 64> spaces;
      const size_t k = w->NextSpaces(spaces.data(), spaces.size());
      ASSERT_GE(k, 1u);
      size_t room = 0;
      for (size_t j = 0; j < k; ++j) {
        if (last != nullptr && spaces[j].data() < last) ++descents;
        last = spaces[j].data();
        ++spaces_seen;
        std::memcpy(spaces[j].data(), data.data() + at + room, spaces[j].size());
        room += spaces[j].size();
      }
      w->Received(room);
      at += room;
    }
    Status s = w->Commit();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  ASSERT_GE(placed, 4);
  // Freed in random order, the spaces would descend about every other time; in address
  // order only where a write's slots cross from one refill to the next.
  EXPECT_GT(spaces_seen, 4 * placed);  // the slots freed were scattered, not one run
  EXPECT_LE(descents, placed);
  EXPECT_EQ(d.Read("v", 0, kLunSize), all);
  d.engine.reset();
  d.Open();
  EXPECT_EQ(d.Read("v", 0, kLunSize), all);
}

TEST(EngineHashedWriteTest, AReceiveAbandonedBeforeCommitChangesNothingAndGivesItsSlotsBack) {
  Device d({}, /*real=*/true);
  auto v = Prefilled(d, "v");
  const std::string before = d.Read("v", 0, 2 << 20);
  const uint64_t used = d.Used();
  for (int round = 0; round < 3; ++round) {
    auto w = v->BeginWrite(1 << 20, 1 << 20, false, {});
    ASSERT_NE(w, nullptr);
    std::span<char> space = w->NextSpace();
    std::memset(space.data(), 'x', std::min<size_t>(space.size(), kBs + 100));
    w->Received(std::min<size_t>(space.size(), kBs + 100));  // the client went away here
  }
  EXPECT_EQ(d.Read("v", 0, 2 << 20), before);
  EXPECT_EQ(d.Used(), used);
  // The slots went back: a placed write can take them again, and lands right.
  std::mt19937 rng(3);
  std::string mib;
  for (int b = 0; b < 256; ++b) mib += b % 3 ? Block(b) : Block(5000 + b);  // some are hits
  auto w = v->BeginWrite(1 << 20, 1 << 20, false, {});
  ASSERT_NE(w, nullptr);
  Land(*w, mib, rng);
  ASSERT_TRUE(w->Commit().ok());
  w.reset();
  EXPECT_EQ(d.Read("v", 1 << 20, mib.size()), mib);
  EXPECT_EQ(d.Read("v", 0, 1 << 20), before.substr(0, 1 << 20));
}

TEST(EngineHashedWriteTest, APlacedWriteFallsBackWhenTheLunChangedWhileItArrived) {
  Device d({}, /*real=*/true);
  auto v = Prefilled(d, "v");
  std::mt19937 rng(4);
  std::string mib;
  for (int b = 0; b < 256; ++b) mib += Block(20000 + b);
  // Dedup turned off while the payload arrived: written as a plain write would be.
  auto w = v->BeginWrite(0, 1 << 20, false, {});
  ASSERT_NE(w, nullptr);
  Land(*w, mib, rng);
  ASSERT_TRUE(d.engine->SetDedup("v", false, false).ok());
  ASSERT_TRUE(w->Commit().ok());
  w.reset();
  EXPECT_EQ(d.Read("v", 0, mib.size()), mib);
  // Deleted while it arrived: UNAVAILABLE, nothing acknowledged.
  ASSERT_TRUE(d.engine->SetDedup("v", true, false).ok());
  w = v->BeginWrite(1 << 20, 1 << 20, false, {});
  ASSERT_NE(w, nullptr);
  Land(*w, mib, rng);
  ASSERT_TRUE(d.engine->DeleteLun("v").ok());
  EXPECT_EQ(w->Commit().code(), StatusCode::kUnavailable);
}

TEST(EngineHashedWriteTest, OnlyAlignedDedupWritesOfUpToARunAreReceivedIntoSlots) {
  Device d({}, /*real=*/true);
  auto v = Prefilled(d, "v");
  EXPECT_EQ(v->BeginWrite(0, (1 << 20) + kBs, false, {}), nullptr);  // the caller's buffer
  EXPECT_EQ(v->BeginWrite(100, 64 << 10, false, {}), nullptr);
  EXPECT_EQ(v->BeginWrite(0, (64 << 10) + 100, false, {}), nullptr);
  EXPECT_NE(v->BeginWrite(0, 64 << 10, false, {}), nullptr);
  Device mem;  // no mapping (MemEnv): the caller's buffer
  auto m = mem.Create("m", true);
  EXPECT_EQ(m->BeginWrite(0, 64 << 10, false, {}), nullptr);
}

TEST(EngineHashedWriteTest, ConcurrentPlacedWritesOfSharedBytesWithFlushesReadBackAndCount) {
  Device d({}, /*real=*/true);
  auto v = Prefilled(d, "v");
  // Four writers, each over its own 2 MiB, of 256-block requests drawn from a few
  // patterns (so writers share blocks through the index while they write), and a
  // flusher making replaced slots reusable (placed into again) meanwhile.
  constexpr int kWriters = 4;
  std::vector<std::string> patterns;
  for (int p = 0; p < 6; ++p) {
    std::string mib;
    for (int b = 0; b < 256; ++b) mib += Block(p * 1000 + b % (p + 1 == 6 ? 256 : 64));
    patterns.push_back(mib);
  }
  std::atomic<bool> done{false};
  std::atomic<int> placed{0};
  std::vector<std::array<int, 2>> last(kWriters, {-1, -1});
  std::thread flusher([&] {
    while (!done.load()) EXPECT_TRUE(d.engine->Flush().ok());
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      std::mt19937 rng(100 + w);
      for (int i = 0; i < 40; ++i) {
        const int half = static_cast<int>(rng() % 2);
        const int p = static_cast<int>(rng() % patterns.size());
        const uint64_t offset = (2ull * w + half) << 20;
        auto in = v->BeginWrite(offset, 1 << 20, false, {});
        if (in == nullptr) {
          ASSERT_TRUE(v->Write(offset, patterns[p], false).ok());
        } else {
          placed.fetch_add(1);
          Land(*in, patterns[p], rng);
          Status s = in->Commit();
          ASSERT_TRUE(s.ok()) << s.ToString();
        }
        last[w][half] = p;
      }
    });
  }
  for (auto& t : writers) t.join();
  done = true;
  flusher.join();
  EXPECT_GT(placed.load(), 0);
  std::set<std::string> distinct;
  for (int w = 0; w < kWriters; ++w) {
    for (int half = 0; half < 2; ++half) {
      const uint64_t offset = (2ull * w + half) << 20;
      if (last[w][half] < 0) continue;
      const std::string& want = patterns[last[w][half]];
      ASSERT_EQ(d.Read("v", offset, want.size()), want) << "writer " << w << " half " << half;
      for (size_t b = 0; b < want.size(); b += kBs) distinct.insert(want.substr(b, kBs));
    }
  }
  // Every block of the LUN: the 8 MiB the writers did not all rewrite keep the prefill.
  const std::string all = d.Read("v", 0, kLunSize);
  std::set<std::string> live;
  for (size_t b = 0; b < all.size(); b += kBs) {
    if (all.compare(b, kBs, std::string(kBs, '\0')) != 0) live.insert(all.substr(b, kBs));
  }
  ASSERT_TRUE(d.engine->Flush().ok());
  EXPECT_EQ(d.Used(), live.size() * kBs);  // each distinct block once, nothing leaked
  v.reset();
  d.engine.reset();
  d.Open();
  EXPECT_EQ(d.Read("v", 0, kLunSize), all);
  EXPECT_EQ(d.Used(), live.size() * kBs);
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
