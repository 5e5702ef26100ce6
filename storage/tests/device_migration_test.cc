#include "strata/storage/device_migration.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <random>
#include <thread>
#include <utility>

#include "strata/common/mem_env.h"

namespace strata::storage {
namespace {

constexpr uint32_t kBs = 4096;

// The target device as a second in-process Engine, with a switch to make its
// writes fail (a target that dies mid-copy).
class EngineRemoteDevice final : public RemoteDevice {
 public:
  EngineRemoteDevice(Engine* engine, std::string address)
      : engine_(engine), address_(std::move(address)) {}

  const std::string& address() const override { return address_; }
  Result<std::optional<std::string>> LunWwn(const std::string& name) override {
    auto l = engine_->GetLun(name);
    if (!l.ok()) return std::optional<std::string>();
    return std::optional<std::string>(l->wwn);
  }
  Status CreateLun(const LunSpec& spec) override { return engine_->CreateLun(spec).status(); }
  Status DeleteLun(const std::string& name) override {
    ++deletes;
    return engine_->DeleteLun(name);
  }
  Status AcceptLun(const std::string& name, const std::string& wwn) override {
    ++accepts;
    if (before_accept) STRATA_RETURN_IF_ERROR(before_accept());
    return engine_->AcceptLun(name, wwn).status();
  }
  Result<std::unique_ptr<BlockWriter>> OpenWriter(const std::string& lun, uint32_t bs) override {
    STRATA_ASSIGN_OR_RETURN(auto vol, engine_->OpenVolume(lun));
    return std::unique_ptr<BlockWriter>(new Writer(this, std::move(vol), bs));
  }
  Status Flush(const std::string& lun) override {
    STRATA_ASSIGN_OR_RETURN(auto vol, engine_->OpenVolume(lun));
    if (before_flush) before_flush(*vol);
    return vol->Flush();
  }
  std::shared_ptr<Volume> OpenVolume(const std::string& lun) override {
    return *engine_->OpenVolume(lun);
  }
  Result<std::vector<uint64_t>> LunChecksums(const std::string& lun, uint64_t range_bytes,
                                             uint64_t offset, uint64_t length) override {
    if (on_checksums) on_checksums(checksum_calls);
    ++checksum_calls;
    return engine_->LunChecksums(lun, range_bytes, offset, length);
  }

  // Test seams: after each copy pass (the writer's Finish), at the flush right before
  // the switch (the source's I/O paused), and at each checksum call (its index).
  std::function<void(Volume&)> after_pass;
  std::function<void(Volume&)> before_flush;
  std::function<void(int)> on_checksums;
  // At AcceptLun, before the target engine accepts (its error fails the accept).
  std::function<Status()> before_accept;
  std::atomic<int> accepts{0};
  std::atomic<int> checksum_calls{0};
  std::atomic<int64_t> fail_after_blocks{-1};
  std::atomic<int> deletes{0};
  // Pipelining: blocks are applied at Finish in shuffled order; with
  // fail_in_finish_after >= 0, Finish fails after applying that many of them.
  std::atomic<bool> reorder{false};
  std::atomic<int64_t> fail_in_finish_after{-1};
  std::atomic<uint64_t> puts{0};
  // A target that stores a block other than sent: mangle(lba, block) may change the
  // block's bytes, or return false to drop it (never stored). First pass only.
  std::function<bool(uint64_t lba, std::string& block)> mangle;
  std::atomic<int> passes{0};

 private:
  class Writer final : public BlockWriter {
   public:
    Writer(EngineRemoteDevice* dev, std::shared_ptr<Volume> vol, uint32_t bs)
        : dev_(dev), vol_(std::move(vol)), bs_(bs) {}
    Status Put(uint64_t lba, const char* block) override {
      int64_t left = dev_->fail_after_blocks.load();
      if (left == 0) return UnavailableError("target went away");
      if (left > 0) dev_->fail_after_blocks = left - 1;
      ++dev_->puts;
      if (dev_->reorder) {  // held back, applied out of order by Finish
        held_.emplace_back(lba, block ? std::string(block, bs_) : std::string());
        return Status::Ok();
      }
      return Apply(lba, block);
    }
    Status Finish() override {
      // A pipelined writer: what it holds lands in another order than it was put
      // (as over several streams), and a stream may break part-way.
      std::shuffle(held_.begin(), held_.end(), std::mt19937(static_cast<unsigned>(held_.size())));
      size_t applied = 0;
      for (const auto& [lba, data] : held_) {
        if (dev_->fail_in_finish_after.load() >= 0 &&
            static_cast<int64_t>(applied) >= dev_->fail_in_finish_after.load()) {
          return UnavailableError("WriteLunData db (stream broken): connection reset");
        }
        STRATA_RETURN_IF_ERROR(Apply(lba, data.empty() ? nullptr : data.data()));
        ++applied;
      }
      held_.clear();
      ++dev_->passes;
      if (dev_->after_pass) dev_->after_pass(*vol_);
      return Status::Ok();
    }

   private:
    Status Apply(uint64_t lba, const char* block) {
      if (!block) return vol_->WriteZeroes(lba * bs_, bs_, false);
      if (dev_->mangle && dev_->passes.load() == 0) {
        std::string b(block, bs_);
        if (!dev_->mangle(lba, b)) return Status::Ok();
        return vol_->Write(lba * bs_, std::span<const char>(b.data(), b.size()), false);
      }
      return vol_->Write(lba * bs_, std::span<const char>(block, bs_), false);
    }

    std::vector<std::pair<uint64_t, std::string>> held_;
    EngineRemoteDevice* dev_;
    std::shared_ptr<Volume> vol_;
    uint32_t bs_;
  };

  Engine* engine_;
  std::string address_;
};

class DeviceMigrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (auto* env : {&src_env_, &dst_env_}) {
      ASSERT_TRUE(env->CreateDirectories("/d/ssd").ok());
      ASSERT_TRUE(env->CreateDirectories("/d/sata").ok());
    }
    dst_ = Open(&dst_env_, false);
    remote_ = std::make_unique<EngineRemoteDevice>(dst_.get(), "10.0.0.2:7400");
    src_ = Open(&src_env_, true);
  }

  std::unique_ptr<Engine> Open(MemEnv* env, bool with_factory) {
    EngineOptions o;
    o.state_dir = "/d/ssd";
    o.tiers = {*ParseTierFlag("ssd=/d/ssd"), *ParseTierFlag("sata=/d/sata")};
    o.tier_capacity_bytes = {256ull << 20, 256ull << 20};
    o.device_id = env == &src_env_ ? 1 : 2;
    if (with_factory) {
      o.remote_volume_factory = [this](const std::string& device, const std::string& lun) {
        EXPECT_EQ(device, "10.0.0.2:7400");
        return remote_->OpenVolume(lun);
      };
    }
    auto e = Engine::Open(env, o);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return std::move(*e);
  }

  std::shared_ptr<Volume> CreateFilled(const std::string& name, uint64_t blocks) {
    LunSpec spec;
    spec.name = name;
    spec.size_bytes = blocks * kBs;
    spec.dedup = true;
    spec.owner = "team";
    spec.allowed_clients = {"10.1.0.0/16"};
    spec.metadata = {{"csi.storage.k8s.io/pvc/name", name}};
    EXPECT_TRUE(src_->CreateLun(spec).ok());
    auto v = *src_->OpenVolume(name);
    for (uint64_t i = 0; i < blocks; ++i) {
      if (i % 7 == 3) continue;  // leave holes
      std::string d(kBs, static_cast<char>('a' + i % 26));
      EXPECT_TRUE(v->Write(i * kBs, std::span<const char>(d.data(), d.size()), false).ok());
    }
    return v;
  }

  static char At(Volume& v, uint64_t lba) {
    char c = 0;
    EXPECT_TRUE(v.Read(lba * kBs, std::span<char>(&c, 1)).ok());
    return c;
  }

  uint64_t Used(Engine& e) {
    uint64_t u = 0;
    for (const auto& t : e.Tiers()) u += t.used_bytes;
    return u;
  }

  MemEnv src_env_, dst_env_;
  std::unique_ptr<Engine> dst_;
  std::unique_ptr<EngineRemoteDevice> remote_;
  std::unique_ptr<Engine> src_;
};

TEST_F(DeviceMigrationTest, MovesUnderWritesKeepsIdentityAndProxies) {
  const uint64_t blocks = 2048;
  auto v = CreateFilled("db", blocks);
  std::string wwn = src_->GetLun("db")->wwn;
  std::vector<std::atomic<char>> expect(blocks);
  for (uint64_t i = 0; i < blocks; ++i)
    expect[i] = i % 7 == 3 ? 0 : static_cast<char>('a' + i % 26);
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::thread writer([&] {
    std::mt19937 rng(3);
    while (!stop) {
      uint64_t lba = rng() % blocks;
      char c = static_cast<char>('A' + rng() % 26);
      std::string d(kBs, c);
      // Writes must never fail, before, during or after the switch.
      if (!v->Write(lba * kBs, std::span<const char>(d.data(), d.size()), false).ok()) ++errors;
      expect[lba] = c;
    }
  });
  DeviceMoveOptions opts;
  opts.target_tier = TierClass::kSata;
  Status s = MoveLunToDevice(src_.get(), "db", remote_.get(), opts, nullptr);
  stop = true;
  writer.join();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(errors, 0);

  auto moved = src_->GetLun("db");
  EXPECT_EQ(moved->moved_to, "10.0.0.2:7400");
  EXPECT_EQ(moved->move.state, TierMove::State::kDone);
  EXPECT_EQ(moved->move.verified_bytes, blocks * kBs);  // the whole LUN compared
  EXPECT_GT(moved->move.verify_seconds, 0.0);
  EXPECT_GE(remote_->checksum_calls, 1);
  EXPECT_EQ(Used(*src_), 0u);  // the source's blocks are freed
  auto there = dst_->GetLun("db");
  ASSERT_TRUE(there.ok());
  EXPECT_EQ(there->wwn, wwn);
  EXPECT_EQ(there->tier, TierClass::kSata);
  EXPECT_EQ(there->owner, "team");
  EXPECT_EQ(there->allowed_clients, std::vector<std::string>{"10.1.0.0/16"});
  EXPECT_EQ(there->metadata,
            (std::map<std::string, std::string>{{"csi.storage.k8s.io/pvc/name", "db"}}));
  auto dv = *dst_->OpenVolume("db");
  for (uint64_t i = 0; i < blocks; ++i) {
    ASSERT_EQ(At(*dv, i), expect[i].load()) << i;
    ASSERT_EQ(At(*v, i), expect[i].load()) << "via the source's proxy, block " << i;
  }
  // Still writable through the old device, and durable there after a restart.
  std::string d(kBs, 'Z');
  ASSERT_TRUE(v->Write(0, std::span<const char>(d.data(), d.size()), true).ok());
  EXPECT_EQ(At(*dv, 0), 'Z');
  src_env_.SimulatePowerLoss();
  src_.reset();
  src_ = Open(&src_env_, true);
  EXPECT_EQ(src_->GetLun("db")->moved_to, "10.0.0.2:7400");
  EXPECT_EQ(At(**src_->OpenVolume("db"), 0), 'Z');
}

// A maintenance window's restore: the LUN moves back onto the device it left, whose stub a
// client is still connected to. The move replaces the stub with its copy; the client's volume
// on the stub goes on through the device holding the LUN and, after the switch, through that
// device's new stub back to the copy here: not one failed write.
TEST_F(DeviceMigrationTest, MoveBackOntoTheStubKeepsItsClientsWriting) {
  const uint64_t blocks = 1024;
  auto v = CreateFilled("db", blocks);
  DeviceMoveOptions opts;
  ASSERT_TRUE(MoveLunToDevice(src_.get(), "db", remote_.get(), opts, nullptr).ok());
  ASSERT_EQ(src_->GetLun("db")->moved_to, "10.0.0.2:7400");

  std::vector<std::atomic<char>> expect(blocks);
  for (uint64_t i = 0; i < blocks; ++i) expect[i] = At(*v, i);
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::atomic<uint64_t> writes{0};
  std::string first_error;
  std::thread writer([&] {
    std::mt19937 rng(5);
    while (!stop) {
      const uint64_t lba = rng() % blocks;
      const char c = static_cast<char>('A' + rng() % 26);
      std::string d(kBs, c);
      Status w = v->Write(lba * kBs, std::span<const char>(d.data(), d.size()), false);
      if (!w.ok() && errors++ == 0) first_error = w.ToString();
      expect[lba] = c;
      ++writes;
    }
  });
  EngineRemoteDevice back(src_.get(), "10.0.0.1:7400");
  Status s = MoveLunToDevice(dst_.get(), "db", &back, opts, nullptr);
  // Writes after the switch too: through dst's stub, back to src's copy.
  const uint64_t at_switch = writes.load();
  while (writes.load() < at_switch + 200) std::this_thread::yield();
  stop = true;
  writer.join();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(errors, 0) << first_error;
  EXPECT_EQ(back.deletes, 1) << "the stub made room for the copy";

  auto home = src_->GetLun("db");
  ASSERT_TRUE(home.ok());
  EXPECT_EQ(home->moved_to, "");
  EXPECT_EQ(dst_->GetLun("db")->moved_to, "10.0.0.1:7400");
  auto fresh = *src_->OpenVolume("db");
  for (uint64_t i = 0; i < blocks; ++i) {
    ASSERT_EQ(At(*fresh, i), expect[i].load()) << "block " << i << " on the LUN back home";
    ASSERT_EQ(At(*v, i), expect[i].load()) << "block " << i << " through the old stub's volume";
  }
}

TEST_F(DeviceMigrationTest, TargetFailureLeavesTheLunWholeOnTheSource) {
  const uint64_t blocks = 512;
  auto v = CreateFilled("db", blocks);
  remote_->fail_after_blocks = 100;
  Status s = MoveLunToDevice(src_.get(), "db", remote_.get(), {}, nullptr);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  auto l = src_->GetLun("db");
  EXPECT_TRUE(l->moved_to.empty());
  EXPECT_EQ(l->move.state, TierMove::State::kFailed);
  EXPECT_NE(l->move.message.find("stays whole"), std::string::npos);
  EXPECT_EQ(dst_->GetLun("db").status().code(), StatusCode::kNotFound);  // partial copy gone
  for (uint64_t i = 0; i < blocks; i += 5) {
    ASSERT_EQ(At(*v, i), i % 7 == 3 ? 0 : static_cast<char>('a' + i % 26));
  }
  // And a second attempt succeeds.
  remote_->fail_after_blocks = -1;
  ASSERT_TRUE(MoveLunToDevice(src_.get(), "db", remote_.get(), {}, nullptr).ok());
}

TEST_F(DeviceMigrationTest, CancelLeavesTheLunWhole) {
  CreateFilled("db", 256);
  std::atomic<bool> cancel{true};
  Status s = MoveLunToDevice(src_.get(), "db", remote_.get(), {}, &cancel);
  EXPECT_EQ(s.code(), StatusCode::kCancelled);
  EXPECT_EQ(src_->GetLun("db")->move.state, TierMove::State::kCancelled);
  EXPECT_TRUE(src_->GetLun("db")->moved_to.empty());
}

TEST_F(DeviceMigrationTest, NameTakenOnTheTargetIsAlreadyExistsUnlessItIsOurLeftover) {
  CreateFilled("db", 64);
  LunSpec other;
  other.name = "db";
  other.size_bytes = 64 * kBs;
  ASSERT_TRUE(dst_->CreateLun(other).ok());
  Status s = MoveLunToDevice(src_.get(), "db", remote_.get(), {}, nullptr);
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(remote_->deletes, 0);  // someone else's LUN is never touched
  ASSERT_TRUE(dst_->DeleteLun("db").ok());
  // A leftover with our WWN (an interrupted earlier move) is replaced.
  LunSpec leftover = other;
  leftover.wwn = src_->GetLun("db")->wwn;
  leftover.size_bytes = 64 * kBs;
  ASSERT_TRUE(dst_->CreateLun(leftover).ok());
  std::string junk(kBs, 'J');
  auto jv = *dst_->OpenVolume("db");
  ASSERT_TRUE(jv->Write(3 * kBs, std::span<const char>(junk.data(), junk.size()), false).ok());
  ASSERT_TRUE(MoveLunToDevice(src_.get(), "db", remote_.get(), {}, nullptr).ok());
  EXPECT_EQ(At(**dst_->OpenVolume("db"), 3), 0);  // block 3 is a hole on the source
}

TEST_F(DeviceMigrationTest, CorruptTargetCopyFailsTheMoveAndTheSourceKeepsServing) {
  const uint64_t blocks = 1024;  // 4 MiB: four 1 MiB checksum ranges
  auto v = CreateFilled("db", blocks);
  const uint64_t bad_lba = 600;  // in range 2 (bytes 2097152..3145728), never written again
  // A wrong block on the target after the first copy pass, before any verification.
  bool damaged = false;
  remote_->after_pass = [&](Volume& target) {
    if (std::exchange(damaged, true)) return;
    std::string wrong(kBs, '#');
    ASSERT_TRUE(
        target.Write(bad_lba * kBs, std::span<const char>(wrong.data(), wrong.size()), false).ok());
  };
  Status s = MoveLunToDevice(src_.get(), "db", remote_.get(), {}, nullptr);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
  auto l = src_->GetLun("db");
  EXPECT_TRUE(l->moved_to.empty());
  EXPECT_EQ(l->move.state, TierMove::State::kFailed);
  EXPECT_EQ(l->move.verified_bytes, 0u);
  EXPECT_NE(l->move.message.find("range 2 (bytes 2097152..3145728) differs"), std::string::npos)
      << l->move.message;
  EXPECT_NE(l->move.message.find("stays whole"), std::string::npos);
  EXPECT_EQ(dst_->GetLun("db").status().code(), StatusCode::kNotFound);  // partial copy gone
  for (uint64_t i = 0; i < blocks; ++i) {
    ASSERT_EQ(At(*v, i), i % 7 == 3 ? 0 : static_cast<char>('a' + i % 26)) << i;
  }
  // Still served and writable here; a clean retry then moves it.
  std::string d(kBs, 'Q');
  ASSERT_TRUE(v->Write(bad_lba * kBs, std::span<const char>(d.data(), d.size()), false).ok());
  ASSERT_TRUE(MoveLunToDevice(src_.get(), "db", remote_.get(), {}, nullptr).ok());
  EXPECT_EQ(src_->GetLun("db")->move.verified_bytes, blocks * kBs);
  EXPECT_EQ(At(**dst_->OpenVolume("db"), bad_lba), 'Q');
}

// The target hashes what it stores (no read-back of the copy): a block it never
// stored, or stored other bytes into than sent, still fails the move.
TEST_F(DeviceMigrationTest, BlockTheTargetDidNotStoreFailsTheMove) {
  CreateFilled("db", 1024);
  remote_->mangle = [](uint64_t lba, std::string&) { return lba != 600; };
  Status s = MoveLunToDevice(src_.get(), "db", remote_.get(), {}, nullptr);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
  EXPECT_NE(s.message().find("range 2 (bytes 2097152..3145728) differs"), std::string::npos)
      << s.ToString();
  EXPECT_TRUE(src_->GetLun("db")->moved_to.empty());
  EXPECT_EQ(dst_->GetLun("db").status().code(), StatusCode::kNotFound);
}

TEST_F(DeviceMigrationTest, BlockTheTargetStoredWrongFailsTheMoveEvenOutOfOrder) {
  for (bool reorder : {false, true}) {
    SCOPED_TRACE(reorder ? "shuffled" : "in order");
    CreateFilled("db", 1024);
    remote_->reorder = reorder;
    remote_->passes = 0;
    remote_->mangle = [](uint64_t lba, std::string& b) {
      if (lba == 1000) b[77] ^= 1;  // range 3
      return true;
    };
    Status s = MoveLunToDevice(src_.get(), "db", remote_.get(), {}, nullptr);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
    EXPECT_NE(s.message().find("range 3 "), std::string::npos) << s.ToString();
    EXPECT_TRUE(src_->GetLun("db")->moved_to.empty());
    remote_->mangle = nullptr;
    ASSERT_TRUE(src_->DeleteLun("db").ok());
  }
}

// What the target answers from the hashes it took while storing equals what reading
// its copy back gives, whatever the order and overwrites of the stores.
TEST_F(DeviceMigrationTest, TargetChecksumsFromStoresEqualReadBack) {
  const uint64_t size = 5 * Engine::kDefaultChecksumRangeBytes + 3 * kBs;
  LunSpec in;
  in.name = "in";
  in.size_bytes = size;
  in.wwn = "naa.3000000000000abc";  // incoming: hashed as stored
  ASSERT_TRUE(dst_->CreateLun(in).ok());
  LunSpec plain;
  plain.name = "plain";
  plain.size_bytes = size;
  ASSERT_TRUE(dst_->CreateLun(plain).ok());
  auto a = *dst_->OpenVolume("in");
  auto b = *dst_->OpenVolume("plain");
  std::mt19937 rng(11);
  for (int k = 0; k < 200; ++k) {
    const uint64_t blocks = 1 + rng() % 64;
    const uint64_t at = (rng() % (size / kBs - blocks)) * kBs + (rng() % 5 == 0 ? 512 : 0);
    const uint64_t n = std::min<uint64_t>(blocks * kBs, size - at);
    if (rng() % 5 == 0) {
      ASSERT_TRUE(a->WriteZeroes(at, n, false).ok());
      ASSERT_TRUE(b->WriteZeroes(at, n, false).ok());
    } else {
      std::string d(n, static_cast<char>(rng()));
      for (size_t i = 0; i < d.size(); i += 997) d[i] = static_cast<char>(rng());
      ASSERT_TRUE(a->Write(at, std::span<const char>(d.data(), d.size()), false).ok());
      ASSERT_TRUE(b->Write(at, std::span<const char>(d.data(), d.size()), false).ok());
    }
    if (k % 50 == 49) {
      auto x = dst_->LunChecksums("in", Engine::kDefaultChecksumRangeBytes, 0, size);
      auto y = dst_->LunChecksums("plain", Engine::kDefaultChecksumRangeBytes, 0, size);
      ASSERT_TRUE(x.ok() && y.ok());
      EXPECT_EQ(*x, *y) << k;
      // Other range sizes are read back.
      EXPECT_EQ(*dst_->LunChecksums("in", 65536, 0, size),
                *dst_->LunChecksums("plain", 65536, 0, size));
    }
  }
  ASSERT_TRUE(dst_->AcceptLun("in", in.wwn).ok());  // no more hashing; read back
  EXPECT_EQ(*dst_->LunChecksums("in", Engine::kDefaultChecksumRangeBytes, 0, size),
            *dst_->LunChecksums("plain", Engine::kDefaultChecksumRangeBytes, 0, size));
}

TEST_F(DeviceMigrationTest, RangeWrittenAfterTheFirstComparisonIsComparedAgainWhilePaused) {
  const uint64_t blocks = 1024;
  auto v = CreateFilled("db", blocks);
  const uint64_t lba = 600;  // range 2
  // A client write lands during the first (unpaused) comparison; the final pass
  // copies it, and then, with I/O paused, the target's copy of it is damaged.
  remote_->on_checksums = [&](int call) {
    if (call != 0) return;
    std::string d(kBs, 'W');
    ASSERT_TRUE(v->Write(lba * kBs, std::span<const char>(d.data(), d.size()), false).ok());
  };
  remote_->before_flush = [&](Volume& target) {
    std::string wrong(kBs, '#');
    ASSERT_TRUE(
        target.Write(lba * kBs, std::span<const char>(wrong.data(), wrong.size()), false).ok());
  };
  Status s = MoveLunToDevice(src_.get(), "db", remote_.get(), {}, nullptr);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
  EXPECT_NE(s.message().find("range 2 "), std::string::npos) << s.ToString();
  EXPECT_EQ(remote_->checksum_calls, 2);  // all ranges, then range 2 alone
  EXPECT_TRUE(src_->GetLun("db")->moved_to.empty());
  EXPECT_EQ(At(*v, lba), 'W');
  EXPECT_EQ(dst_->GetLun("db").status().code(), StatusCode::kNotFound);
}

TEST_F(DeviceMigrationTest, WithoutVerificationNoChecksumsAndNoVerifiedBytes) {
  CreateFilled("db", 64);
  DeviceMoveOptions opts;
  opts.verify = false;
  Status moved = MoveLunToDevice(src_.get(), "db", remote_.get(), opts, nullptr);
  ASSERT_TRUE(moved.ok()) << moved.ToString();
  EXPECT_EQ(remote_->checksum_calls, 0);
  EXPECT_EQ(src_->GetLun("db")->move.verified_bytes, 0u);
}

TEST_F(DeviceMigrationTest, ChecksumsAgreeOnEqualContentsHoweverStored) {
  // The same bytes: written with holes on one LUN, with explicit zero blocks and
  // dedup off on the other; and a size that is not a multiple of the range.
  const uint64_t blocks = 300;
  CreateFilled("a", blocks);
  LunSpec spec;
  spec.name = "b";
  spec.size_bytes = blocks * kBs;
  ASSERT_TRUE(src_->CreateLun(spec).ok());
  auto b = *src_->OpenVolume("b");
  for (uint64_t i = 0; i < blocks; ++i) {
    std::string d(kBs, i % 7 == 3 ? '\0' : static_cast<char>('a' + i % 26));
    ASSERT_TRUE(b->Write(i * kBs, std::span<const char>(d.data(), d.size()), false).ok());
  }
  auto sa = src_->LunChecksums("a", 64 * kBs, 0, blocks * kBs);
  auto sb = src_->LunChecksums("b", 64 * kBs, 0, blocks * kBs);
  ASSERT_TRUE(sa.ok()) << sa.status().ToString();
  ASSERT_TRUE(sb.ok()) << sb.status().ToString();
  EXPECT_EQ(sa->size(), 5u);  // 4 whole ranges and a 44-block tail
  EXPECT_EQ(*sa, *sb);
  // A window of ranges is the same as the ranges of the whole.
  auto part = src_->LunChecksums("a", 64 * kBs, 128 * kBs, 1ull << 40);
  ASSERT_TRUE(part.ok());
  EXPECT_EQ(*part, std::vector<uint64_t>(sa->begin() + 2, sa->end()));
  // One byte changed shows in its range only.
  std::string x(1, '!');
  ASSERT_TRUE(b->Write(70 * kBs + 9, std::span<const char>(x.data(), 1), false).ok());
  auto sb2 = *src_->LunChecksums("b", 64 * kBs, 0, blocks * kBs);
  for (size_t i = 0; i < sb2.size(); ++i) EXPECT_EQ(sb2[i] == (*sa)[i], i != 1) << i;
  // Bad arguments name the field.
  EXPECT_NE(src_->LunChecksums("a", 1000, 0, 1).status().message().find("range_bytes"),
            std::string::npos);
  EXPECT_NE(src_->LunChecksums("a", kBs, 1, 1).status().message().find("offset"),
            std::string::npos);
  EXPECT_EQ(src_->LunChecksums("nope", kBs, 0, 1).status().code(), StatusCode::kNotFound);
}

TEST_F(DeviceMigrationTest, OutOfOrderArrivalUnderClientWritesEndsEqual) {
  // Blocks of each pass land on the target in shuffled order (as over several
  // streams) while a client (an NBD-style volume: its requests count as client I/O
  // the copy yields to) keeps writing; the copy still ends equal and verified.
  const uint64_t blocks = 2048;
  CreateFilled("db", blocks);
  ClientInfo client;
  client.peer_address = "10.1.2.3";
  auto v = *src_->Open("db", client);
  remote_->reorder = true;
  std::vector<std::atomic<char>> expect(blocks);
  for (uint64_t i = 0; i < blocks; ++i)
    expect[i] = i % 7 == 3 ? 0 : static_cast<char>('a' + i % 26);
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::thread writer([&] {
    std::mt19937 rng(5);
    while (!stop) {
      uint64_t lba = rng() % blocks;
      char c = static_cast<char>('A' + rng() % 26);
      std::string d(kBs, c);
      if (!v->Write(lba * kBs, std::span<const char>(d.data(), d.size()), false).ok()) ++errors;
      expect[lba] = c;
    }
  });
  Status s = MoveLunToDevice(src_.get(), "db", remote_.get(), {}, nullptr);
  stop = true;
  writer.join();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(src_->GetLun("db")->move.verified_bytes, blocks * kBs);
  auto dv = *dst_->OpenVolume("db");
  for (uint64_t i = 0; i < blocks; ++i) ASSERT_EQ(At(*dv, i), expect[i].load()) << i;
}

TEST_F(DeviceMigrationTest, StreamBreakingMidPipelineFailsCleanlyAndARetryMoves) {
  const uint64_t blocks = 1024;
  auto v = CreateFilled("db", blocks);
  remote_->reorder = true;
  remote_->fail_in_finish_after = 300;  // part of the first pass landed, then the break
  Status s = MoveLunToDevice(src_.get(), "db", remote_.get(), {}, nullptr);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("stream broken"), std::string::npos) << s.ToString();
  auto l = src_->GetLun("db");
  EXPECT_TRUE(l->moved_to.empty());
  EXPECT_EQ(l->move.state, TierMove::State::kFailed);
  EXPECT_EQ(dst_->GetLun("db").status().code(), StatusCode::kNotFound);  // partial copy gone
  for (uint64_t i = 0; i < blocks; ++i) {
    ASSERT_EQ(At(*v, i), i % 7 == 3 ? 0 : static_cast<char>('a' + i % 26)) << i;
  }
  remote_->fail_in_finish_after = -1;
  ASSERT_TRUE(MoveLunToDevice(src_.get(), "db", remote_.get(), {}, nullptr).ok());
  EXPECT_EQ(src_->GetLun("db")->move.verified_bytes, blocks * kBs);
  auto dv = *dst_->OpenVolume("db");
  for (uint64_t i = 0; i < blocks; ++i) {
    ASSERT_EQ(At(*dv, i), i % 7 == 3 ? 0 : static_cast<char>('a' + i % 26)) << i;
  }
}

TEST_F(DeviceMigrationTest, HolesAreNotCopiedAndStayHoles) {
  // 64 MiB with 3 written blocks: only those go over, the target allocates only
  // them, and the verification of the all-zero ranges still passes.
  LunSpec spec;
  spec.name = "sparse";
  spec.size_bytes = 64ull << 20;
  ASSERT_TRUE(src_->CreateLun(spec).ok());
  auto v = *src_->OpenVolume("sparse");
  const uint64_t written[] = {0, 4000, 16383};
  for (uint64_t lba : written) {
    std::string d(kBs, 'x');
    ASSERT_TRUE(v->Write(lba * kBs, std::span<const char>(d.data(), d.size()), false).ok());
  }
  ASSERT_TRUE(MoveLunToDevice(src_.get(), "sparse", remote_.get(), {}, nullptr).ok());
  EXPECT_EQ(remote_->puts, 3u);
  EXPECT_EQ(src_->GetLun("sparse")->move.verified_bytes, 64ull << 20);
  auto there = dst_->GetLun("sparse");
  ASSERT_TRUE(there.ok());
  EXPECT_EQ(there->space.logical_bytes, 3 * kBs);
  auto dv = *dst_->OpenVolume("sparse");
  EXPECT_EQ(At(*dv, 4000), 'x');
  EXPECT_EQ(At(*dv, 4001), 0);
}

TEST_F(DeviceMigrationTest, RangeSentAgainAfterItWasHashedIsComparedAgain) {
  // The source's hashes come from the first pass's reads. A block rewritten after
  // that pass goes over again in the second; if the target then held the OLD bytes
  // (what the first pass hashed), its range would compare equal to the stale hash:
  // the range must be hashed again (I/O paused), which finds the difference.
  const uint64_t blocks = 1024;
  auto v = CreateFilled("db", blocks);
  const uint64_t lba = 600;  // range 2
  const std::string old_bytes(kBs, static_cast<char>('a' + lba % 26));
  int passes = 0;
  remote_->after_pass = [&](Volume& target) {
    ++passes;
    if (passes == 1) {  // a client write between the first and the second pass
      std::string d(kBs, 'N');
      ASSERT_TRUE(v->Write(lba * kBs, std::span<const char>(d.data(), d.size()), false).ok());
    } else if (passes == 2) {  // the second pass sent 'N'; the target loses it
      ASSERT_TRUE(
          target.Write(lba * kBs, std::span<const char>(old_bytes.data(), kBs), false).ok());
    }
  };
  DeviceMoveOptions opts;
  opts.switch_threshold_blocks = 0;  // a second pass for the one dirty block
  Status s = MoveLunToDevice(src_.get(), "db", remote_.get(), opts, nullptr);
  EXPECT_GE(passes, 2);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
  EXPECT_NE(s.message().find("range 2 "), std::string::npos) << s.ToString();
  EXPECT_TRUE(src_->GetLun("db")->moved_to.empty());
  EXPECT_EQ(At(*v, lba), 'N');
  // Without the damage the same sequence moves, with the new bytes.
  passes = 0;
  remote_->after_pass = [&](Volume&) {
    if (++passes == 1) {
      std::string d(kBs, 'M');
      ASSERT_TRUE(v->Write(lba * kBs, std::span<const char>(d.data(), d.size()), false).ok());
    }
  };
  ASSERT_TRUE(MoveLunToDevice(src_.get(), "db", remote_.get(), opts, nullptr).ok());
  EXPECT_EQ(At(**dst_->OpenVolume("db"), lba), 'M');
}

TEST_F(DeviceMigrationTest, PassHashesEqualLunChecksums) {
  // What the full pass hashes is what LunChecksums gives: the verification compares
  // like with like (ranges smaller and larger than a 256-block group, a short tail).
  // The "target" here answers with the source's own LunChecksums: the switch happens
  // with one checksum call only if every pass hash equalled it (a different range is
  // hashed again, paused, which this target refuses).
  const uint64_t blocks = 1300;
  for (uint64_t range : {uint64_t{16 * kBs}, uint64_t{1} << 20, uint64_t{2} << 20}) {
    const std::string name = "db" + std::to_string(range);
    CreateFilled(name, blocks);
    ASSERT_TRUE(src_->StartExport(name, "x").ok());
    ASSERT_TRUE(src_->ExportPass(
                        name, true, [](uint64_t, const char*) { return Status::Ok(); }, range)
                    .ok());
    int calls = 0;
    Status s = src_->CompleteExport(
        name, nullptr, [](uint64_t, const char*) { return Status::Ok(); },
        [] { return Status::Ok(); },
        [&](uint64_t rb, uint64_t off, uint64_t len) -> Result<std::vector<uint64_t>> {
          if (calls++ > 0) return InternalError("a range was hashed again");
          return src_->LunChecksums(name, rb, off, len);
        },
        range);
    EXPECT_TRUE(s.ok()) << range << ": " << s.ToString();
    EXPECT_EQ(calls, 1) << range;
  }
}

// The target's copy is incoming until the source accepts it, with I/O paused, after
// the flush and the verification: never exported over NBD before that.
TEST_F(DeviceMigrationTest, CopyIsIncomingOnTheTargetUntilTheSourceAcceptsIt) {
  const uint64_t blocks = 256;
  CreateFilled("db", blocks);
  const ClientInfo client{"10.1.2.3", "10.0.0.2:10809"};
  bool checked = false;
  remote_->before_accept = [&]() -> Status {
    auto l = dst_->GetLun("db");
    EXPECT_TRUE(l.ok());
    EXPECT_TRUE(l->incoming);
    EXPECT_TRUE(dst_->List(client).empty());
    EXPECT_EQ(dst_->Open("db", client).status().code(), StatusCode::kNotFound);
    // Nor does another device's stub pass its clients' I/O into it (it reaches a LUN by
    // name: a LUN moved A -> B -> C, then C -> B, must not land in B's copy under way).
    auto proxied = dst_->OpenVolumeForProxy("db");
    EXPECT_EQ(proxied.status().code(), StatusCode::kUnavailable);
    EXPECT_NE(proxied.status().message().find("incoming copy"), std::string::npos)
        << proxied.status().ToString();
    EXPECT_TRUE(dst_->OpenVolume("db").ok());              // the move's own writes go in
    EXPECT_EQ(remote_->checksum_calls.load() >= 1, true);  // verified before the accept
    EXPECT_TRUE(src_->GetLun("db")->moved_to.empty());     // and not switched yet
    checked = true;
    return Status::Ok();
  };
  ASSERT_TRUE(MoveLunToDevice(src_.get(), "db", remote_.get(), {}, nullptr).ok());
  EXPECT_TRUE(checked);
  EXPECT_EQ(remote_->accepts, 1);
  auto there = dst_->GetLun("db");
  EXPECT_FALSE(there->incoming);
  ASSERT_EQ(dst_->List(client).size(), 1u);
  EXPECT_TRUE(dst_->Open("db", client).ok());
  EXPECT_TRUE(dst_->OpenVolumeForProxy("db").ok());  // the LUN now: stubs reach it
  // Accepting again is a no-op; another WWN is refused, naming the field.
  EXPECT_TRUE(dst_->AcceptLun("db", there->wwn).ok());
  auto wrong = dst_->AcceptLun("db", "naa.3000000000000001");
  EXPECT_EQ(wrong.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(wrong.status().message().find("wwn"), std::string::npos);
  EXPECT_EQ(dst_->AcceptLun("nope", there->wwn).status().code(), StatusCode::kNotFound);
  // Accepted is durable: a restart keeps the LUN.
  dst_env_.SimulatePowerLoss();
  remote_.reset();
  dst_.reset();
  dst_ = Open(&dst_env_, false);
  remote_ = std::make_unique<EngineRemoteDevice>(dst_.get(), "10.0.0.2:7400");
  EXPECT_TRUE(dst_->IncomingDroppedAtOpen().empty());
  EXPECT_FALSE(dst_->GetLun("db")->incoming);
  EXPECT_TRUE(dst_->Open("db", client).ok());
}

TEST_F(DeviceMigrationTest, RefusedAcceptFailsTheMoveAndLeavesTheLunWholeOnTheSource) {
  const uint64_t blocks = 256;
  auto v = CreateFilled("db", blocks);
  remote_->before_accept = [] { return Status(StatusCode::kUnavailable, "target went away"); };
  Status s = MoveLunToDevice(src_.get(), "db", remote_.get(), {}, nullptr);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_TRUE(src_->GetLun("db")->moved_to.empty());
  EXPECT_EQ(dst_->GetLun("db").status().code(), StatusCode::kNotFound);  // copy deleted
  for (uint64_t i = 0; i < blocks; i += 3) {
    ASSERT_EQ(At(*v, i), i % 7 == 3 ? 0 : static_cast<char>('a' + i % 26));
  }
}

// A target that restarts mid-move (kill -9, power loss) deletes the incoming copy;
// the next move creates it again.
TEST_F(DeviceMigrationTest, IncomingCopyCutByATargetRestartIsDeletedAtOpen) {
  const uint64_t blocks = 256;
  CreateFilled("db", blocks);
  const std::string wwn = src_->GetLun("db")->wwn;
  // What a move leaves on the target when it dies mid-copy: CreateLun with the WWN
  // and some blocks written, never accepted.
  LunSpec spec;
  spec.name = "db";
  spec.size_bytes = blocks * kBs;
  spec.wwn = wwn;
  spec.dedup = true;
  spec.owner = "team";
  ASSERT_TRUE(dst_->CreateLun(spec).ok());
  {
    auto dv = *dst_->OpenVolume("db");  // the move's own writes still work
    std::string d(kBs, 'p');
    ASSERT_TRUE(dv->Write(0, std::span<const char>(d.data(), d.size()), true).ok());
  }
  EXPECT_TRUE(dst_->GetLun("db")->incoming);
  const uint64_t used = Used(*dst_);
  EXPECT_GT(used, 0u);
  dst_env_.SimulatePowerLoss();
  remote_.reset();
  dst_.reset();
  dst_ = Open(&dst_env_, false);
  remote_ = std::make_unique<EngineRemoteDevice>(dst_.get(), "10.0.0.2:7400");
  EXPECT_EQ(dst_->IncomingDroppedAtOpen(), std::vector<std::string>{"db"});
  EXPECT_EQ(dst_->GetLun("db").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Used(*dst_), 0u);  // its blocks are free again
  // Durable: another restart does not bring it back.
  remote_.reset();
  dst_.reset();
  dst_ = Open(&dst_env_, false);
  remote_ = std::make_unique<EngineRemoteDevice>(dst_.get(), "10.0.0.2:7400");
  EXPECT_EQ(dst_->GetLun("db").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(MoveLunToDevice(src_.get(), "db", remote_.get(), {}, nullptr).ok());
  EXPECT_FALSE(dst_->GetLun("db")->incoming);
}

}  // namespace
}  // namespace strata::storage
