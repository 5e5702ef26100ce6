// Locking rules of the engine's data path that keep a client's latency low while
// other LUNs of the device move (issue #11/#16): a request on one LUN never waits
// for another LUN's writes. Asserted by ordering (LUN x's write is held inside its
// data-file write while LUN c's writes run to completion), never by timing: the
// deadlines below only turn a hang into a failure.

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "forwarding_env.h"
#include "strata/common/mem_env.h"
#include "strata/storage/engine.h"

namespace strata::storage {
namespace {

constexpr uint32_t kBs = 4096;
constexpr auto kDeadline = std::chrono::seconds(30);

// A MemEnv whose data writes can be held: once armed, the first WriteAt whose first
// block is all `marker` bytes announces itself and waits until Release().
class GatedEnv final : public ForwardingEnv {
 public:
  GatedEnv() : ForwardingEnv(&mem_) {}

  void Arm(char marker) {
    std::lock_guard lock(mu_);
    marker_ = marker;
    armed_ = true;
  }
  // True once the armed write is being held.
  bool WaitHeld() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kDeadline, [&] { return held_; });
  }
  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

 protected:
  std::unique_ptr<File> Wrap(const std::string& /*path*/, std::unique_ptr<File> f) override {
    return std::make_unique<GatedFile>(this, std::move(f));
  }

 private:
  class GatedFile final : public ForwardingFile {
   public:
    GatedFile(GatedEnv* env, std::unique_ptr<File> inner)
        : ForwardingFile(std::move(inner)), env_(env) {}
    Status WriteAt(uint64_t offset, std::span<const char> data) override {
      env_->MaybeHold(data);
      return ForwardingFile::WriteAt(offset, data);
    }
    // Piece by piece through WriteAt above, so each piece may be held.
    Status WriteAtV(uint64_t offset, std::span<const std::span<const char>> pieces) override {
      return File::WriteAtV(offset, pieces);
    }

   private:
    GatedEnv* env_;
  };

  void MaybeHold(std::span<const char> data) {
    std::unique_lock lock(mu_);
    if (!armed_ || data.size() < kBs) return;
    for (size_t i = 0; i < kBs; ++i) {
      if (data[i] != marker_) return;
    }
    armed_ = false;
    held_ = true;
    cv_.notify_all();
    cv_.wait_for(lock, kDeadline, [&] { return released_; });
  }

  MemEnv mem_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool armed_ = false;  // guarded by mu_
  char marker_ = 0;     // guarded by mu_
  bool held_ = false;   // guarded by mu_
  bool released_ = false;
};

std::unique_ptr<Engine> OpenEngine(GatedEnv* env) {
  EXPECT_TRUE(env->CreateDirectories("/d/ssd").ok());
  EngineOptions o;
  o.state_dir = "/d/ssd";
  o.tiers = {*ParseTierFlag("ssd=/d/ssd")};
  o.tier_capacity_bytes = {1ull << 30};
  o.device_id = 0xabcdef;
  auto e = Engine::Open(env, o);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return e.ok() ? std::move(*e) : nullptr;
}

std::shared_ptr<Volume> CreateLun(Engine* engine, const std::string& name, uint64_t size) {
  LunSpec spec;
  spec.name = name;
  spec.size_bytes = size;
  auto lun = engine->CreateLun(spec);
  EXPECT_TRUE(lun.ok()) << lun.status().ToString();
  auto v = engine->OpenVolume(name);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return v.ok() ? *v : nullptr;
}

// Write stripes (the per-block serialisation of read-modify-write) belong to a LUN:
// while LUN x's 1 MiB write sits in its data-file write (holding its stripes, as a
// move's target stream does for every message), writes to every 64-block chunk of
// LUN c complete. With device-wide stripes one of c's chunks always shared a stripe
// with x's write and waited for it.
TEST(EngineLockingTest, WritesToOneLunDoNotWaitForAnotherLunsWriteInProgress) {
  GatedEnv env;
  auto engine = OpenEngine(&env);
  ASSERT_NE(engine, nullptr);
  auto x = CreateLun(engine.get(), "x", 4 << 20);
  constexpr uint64_t kChunks = 1100;  // more chunks than a LUN has stripes (1024)
  auto c = CreateLun(engine.get(), "c", kChunks * 64 * kBs);
  ASSERT_NE(x, nullptr);
  ASSERT_NE(c, nullptr);

  env.Arm('X');
  const std::string big(1 << 20, 'X');
  auto held = std::async(std::launch::async, [&] {
    return x->Write(0, std::span<const char>(big.data(), big.size()), false);
  });
  ASSERT_TRUE(env.WaitHeld()) << "LUN x's write never reached its data-file write";

  auto writes = std::async(std::launch::async, [&] {
    const std::string block(kBs, 'c');
    for (uint64_t chunk = 0; chunk < kChunks; ++chunk) {
      Status s = c->Write(chunk * 64 * kBs, std::span<const char>(block.data(), kBs), false);
      if (!s.ok()) return s;
    }
    return Status::Ok();
  });
  const bool done = writes.wait_for(kDeadline) == std::future_status::ready;
  env.Release();  // whatever happened: let x's write finish
  ASSERT_TRUE(done) << "a write to LUN c waited for LUN x's write in progress";
  EXPECT_TRUE(writes.get().ok());
  ASSERT_TRUE(held.get().ok());

  std::string got(kBs, '?');
  ASSERT_TRUE(c->Read(7 * 64 * kBs, std::span<char>(got.data(), kBs)).ok());
  EXPECT_EQ(got, std::string(kBs, 'c'));
  std::string gx(big.size(), '?');
  ASSERT_TRUE(x->Read(0, std::span<char>(gx.data(), gx.size())).ok());
  EXPECT_EQ(gx, big);
}

// A write's stripes are one range of stripe indices that wraps round after the last:
// blocks A (the last of chunk 1023, the last stripe) and B (the first of chunk 1024,
// whose stripe is chunk 0's) written together hold both. A partial write of B (a
// read-modify-write under B's stripe) that comes while that write sits in its
// data-file write waits for it, and so lands on top of it: B ends with the partial
// write's bytes over the two-block write's. (Had B's stripe not been held, the partial
// write would have finished first, and the two-block write replaced it.) The 200 ms
// only bounds how long the partial write gets to show it does not wait.
TEST(EngineLockingTest, AWriteAcrossTheStripesWrapHoldsBothStripes) {
  GatedEnv env;
  auto engine = OpenEngine(&env);
  ASSERT_NE(engine, nullptr);
  constexpr uint64_t kChunkBlocks = 64;
  constexpr uint64_t kWrapChunk = 1024;  // the first chunk whose stripe wraps round
  auto v = CreateLun(engine.get(), "w", (kWrapChunk + 1) * kChunkBlocks * kBs);
  ASSERT_NE(v, nullptr);
  const uint64_t a = (kWrapChunk * kChunkBlocks - 1) * kBs;  // block A; B follows it

  env.Arm('X');
  const std::string two(2 * kBs, 'X');
  auto held = std::async(std::launch::async, [&] {
    return v->Write(a, std::span<const char>(two.data(), two.size()), false);
  });
  ASSERT_TRUE(env.WaitHeld()) << "the two-block write never reached its data-file write";
  const std::string part(kBs / 4, 'p');
  auto partial = std::async(std::launch::async, [&] {
    return v->Write(a + kBs + 100, std::span<const char>(part.data(), part.size()), false);
  });
  const bool early = partial.wait_for(std::chrono::milliseconds(200)) == std::future_status::ready;
  env.Release();
  ASSERT_EQ(partial.wait_for(kDeadline), std::future_status::ready) << "the partial write hung";
  ASSERT_TRUE(partial.get().ok());
  ASSERT_TRUE(held.get().ok());
  EXPECT_FALSE(early) << "the partial write of B did not wait for the write holding B";

  std::string got(2 * kBs, '?');
  ASSERT_TRUE(v->Read(a, std::span<char>(got.data(), got.size())).ok());
  std::string want = two;
  want.replace(kBs + 100, part.size(), part);
  EXPECT_EQ(got, want);
}

}  // namespace
}  // namespace strata::storage
