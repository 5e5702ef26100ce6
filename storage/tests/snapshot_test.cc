// Engine snapshots: isolation, copy-on-write, delete orders, restores, journal
// replay (restart, power cut, checkpoint) and torn journal tails.

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

#include "strata/common/mem_env.h"
#include "strata/storage/engine.h"

namespace strata::storage {
namespace {

constexpr uint32_t kBs = 4096;

std::string Pattern(char c, size_t n = kBs) { return std::string(n, c); }

class SnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override { NewDevice("/d"); }

  void NewDevice(const std::string& root) {
    engine_.reset();
    graveyard_.clear();
    root_ = root;
    ASSERT_TRUE(env_.CreateDirectories(root_ + "/ssd").ok());
    ASSERT_TRUE(env_.CreateDirectories(root_ + "/sata").ok());
    Reopen();
  }

  void Reopen() {
    engine_.reset();
    EngineOptions o;
    o.state_dir = root_ + "/ssd";
    o.tiers = {*ParseTierFlag("ssd=" + root_ + "/ssd"), *ParseTierFlag("sata=" + root_ + "/sata")};
    o.tier_capacity_bytes = {256ull << 20, 256ull << 20};
    o.device_id = 0x5a5;
    o.checkpoint_bytes = checkpoint_bytes_;
    auto e = Engine::Open(&env_, o);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e);
  }

  // The process dies: no clean shutdown, files fall back to what was synced.
  void PowerLossAndReopen() {
    graveyard_.push_back(std::move(engine_));
    env_.SimulatePowerLoss();
    Reopen();
  }

  void TearDown() override {
    engine_.reset();
    graveyard_.clear();
  }

  std::shared_ptr<Volume> Create(const std::string& name, uint64_t size, bool dedup = false) {
    LunSpec spec;
    spec.name = name;
    spec.size_bytes = size;
    spec.dedup = dedup;
    spec.owner = "team-a";
    auto lun = engine_->CreateLun(spec);
    EXPECT_TRUE(lun.ok()) << lun.status().ToString();
    return Vol(name);
  }
  std::shared_ptr<Volume> Vol(const std::string& name) {
    auto v = engine_->OpenVolume(name);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? *v : nullptr;
  }
  Result<SnapshotInfo> Snap(const std::string& source, const std::string& name) {
    return engine_->CreateSnapshot(source, name, {});
  }
  Result<LunInfo> Restore(const std::string& snap, const std::string& name, uint64_t size,
                          std::optional<TierClass> tier = std::nullopt) {
    LunSpec spec;
    spec.name = name;
    spec.size_bytes = size;
    spec.tier = tier;
    return engine_->RestoreSnapshot(snap, spec);
  }
  static std::string ReadStr(Volume& v, uint64_t off, size_t n = kBs) {
    std::string out(n, '?');
    Status s = v.Read(off, std::span<char>(out.data(), n));
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }
  static void WriteStr(Volume& v, uint64_t off, const std::string& data) {
    Status s = v.Write(off, std::span<const char>(data.data(), data.size()), false);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  uint64_t Used(TierClass c = TierClass::kSsd) {
    for (const auto& t : engine_->Tiers()) {
      if (t.tier_class == c) return t.used_bytes;
    }
    return ~0ull;
  }
  void WriteA(Volume& v, int blocks = 8) {
    for (int i = 0; i < blocks; ++i) WriteStr(v, i * kBs, Pattern(static_cast<char>('a' + i)));
  }
  void ExpectA(Volume& v, int blocks = 8) {
    for (int i = 0; i < blocks; ++i) {
      ASSERT_EQ(ReadStr(v, i * kBs), Pattern(static_cast<char>('a' + i))) << "block " << i;
    }
  }

  MemEnv env_;
  std::string root_;
  uint64_t checkpoint_bytes_ = 64ull << 20;
  std::unique_ptr<Engine> engine_;
  std::vector<std::unique_ptr<Engine>> graveyard_;
};

TEST_F(SnapshotTest, WriteASnapshotWriteBRestoreReadsA) {
  auto src = Create("vol", 1 << 20);
  WriteA(*src);
  const uint64_t used = Used();
  auto s = engine_->CreateSnapshot("vol", "s1", {{"k", "v"}});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->source_lun, "vol");
  EXPECT_EQ(s->size_bytes, 1u << 20);
  EXPECT_EQ(s->tier, TierClass::kSsd);
  EXPECT_EQ(s->owner, "team-a");
  EXPECT_EQ(s->metadata.at("k"), "v");
  EXPECT_GT(s->created_unix_nanos, 0u);
  EXPECT_FALSE(s->id.empty());
  EXPECT_EQ(Used(), used);               // nothing copied
  EXPECT_EQ(s->space.shared_bytes, 0u);  // not computed by CreateSnapshot
  auto got = engine_->GetSnapshot("s1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->id, s->id);
  EXPECT_EQ(got->space.shared_bytes, 8u * kBs);
  EXPECT_EQ(got->space.exclusive_bytes, 0u);

  for (int i = 0; i < 4; ++i) WriteStr(*src, i * kBs, Pattern('B'));  // B over half of A
  auto r = Restore("s1", "restored", 1 << 20);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto restored = Vol("restored");
  ExpectA(*restored);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(ReadStr(*src, i * kBs), Pattern('B'));
  for (int i = 4; i < 8; ++i)
    EXPECT_EQ(ReadStr(*src, i * kBs), Pattern(static_cast<char>('a' + i)));
  EXPECT_EQ(Used(), used + 4u * kBs);  // only B took new space

  // The restore writes on its own; the snapshot stays as it was.
  WriteStr(*restored, 7 * kBs, Pattern('R'));
  auto again = Restore("s1", "restored2", 2 << 20);
  ASSERT_TRUE(again.ok());
  auto r2 = Vol("restored2");
  ExpectA(*r2);
  EXPECT_EQ(ReadStr(*r2, 1 << 20), std::string(kBs, '\0'));  // past the snapshot's size

  // Space: blocks 0-3 (A) are held by the snapshot and the restores only.
  auto info = engine_->GetLun("vol");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->space.exclusive_bytes, 4u * kBs);  // B
  EXPECT_EQ(info->space.shared_bytes, 4u * kBs);     // A 4-7
  auto owners = engine_->OwnerSpace();
  EXPECT_GT(owners["team-a"].shared_bytes, 0u);
}

TEST_F(SnapshotTest, SnapshotsAreReadOnlyAndInTheirOwnNamespace) {
  auto src = Create("vol", 1 << 20);
  ASSERT_TRUE(Snap("vol", "vol").ok());  // a snapshot may have a LUN's name
  EXPECT_EQ(engine_->ListLuns().size(), 1u);
  EXPECT_EQ(engine_->ListSnapshots().size(), 1u);
  // Not a LUN: neither opened nor exported.
  ASSERT_TRUE(Snap("vol", "only-snap").ok());
  EXPECT_EQ(engine_->OpenVolume("only-snap").status().code(), StatusCode::kNotFound);
  ClientInfo client{"10.0.0.1", "127.0.0.1:10809"};
  for (const auto& e : engine_->List(client)) EXPECT_NE(e.name, "only-snap");
  EXPECT_EQ(engine_->GetLun("only-snap").status().code(), StatusCode::kNotFound);
}

TEST_F(SnapshotTest, ErrorsNameTheFieldAndCreateIsIdempotent) {
  auto src = Create("vol", 1 << 20);
  Create("other", 1 << 20);
  auto first = Snap("vol", "s");
  ASSERT_TRUE(first.ok());
  auto again = engine_->CreateSnapshot("vol", "s", {{"ignored", "x"}});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->id, first->id);
  EXPECT_TRUE(again->metadata.empty());

  auto taken = Snap("other", "s");
  EXPECT_EQ(taken.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(taken.status().message().find("name"), std::string::npos);
  auto missing = Snap("nope", "s2");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("source_lun"), std::string::npos);
  EXPECT_EQ(Snap("vol", "bad~name").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Snap("vol", "").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Snap("", "s3").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(engine_->CreateSnapshot("vol", "s4", {{"", "v"}}).status().code(),
            StatusCode::kInvalidArgument);

  auto small = Restore("s", "r", 4096);
  EXPECT_EQ(small.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(small.status().message().find("size_bytes"), std::string::npos);
  auto gone = Restore("nope", "r", 1 << 20);
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
  EXPECT_NE(gone.status().message().find("from_snapshot"), std::string::npos);
  auto r1 = Restore("s", "r", 1 << 20);
  ASSERT_TRUE(r1.ok());
  auto r2 = Restore("s", "r", 1 << 20);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r1->wwn, r2->wwn);
  EXPECT_EQ(Restore("s", "r", 2 << 20).status().code(), StatusCode::kAlreadyExists);

  EXPECT_EQ(engine_->DeleteSnapshot("nope").code(), StatusCode::kNotFound);
  EXPECT_EQ(engine_->GetSnapshot("nope").status().code(), StatusCode::kNotFound);
}

TEST_F(SnapshotTest, DeleteInAnyOrderFreesExactlyWhatNothingElseHolds) {
  for (int order = 0; order < 3; ++order) {
    SCOPED_TRACE("order " + std::to_string(order));
    NewDevice("/order" + std::to_string(order));
    auto src = Create("vol", 1 << 20);
    WriteA(*src, 16);
    ASSERT_TRUE(Snap("vol", "s1").ok());
    for (int i = 0; i < 4; ++i) WriteStr(*src, i * kBs, Pattern('B'));
    ASSERT_TRUE(Snap("vol", "s2").ok());
    for (int i = 0; i < 2; ++i) WriteStr(*src, i * kBs, Pattern('C'));
    EXPECT_EQ(Used(), (16u + 4 + 2) * kBs);
    auto s1 = engine_->GetSnapshot("s1");
    EXPECT_EQ(s1->space.exclusive_bytes, 4u * kBs);  // A 0-3
    auto s2 = engine_->GetSnapshot("s2");
    EXPECT_EQ(s2->space.exclusive_bytes, 2u * kBs);  // B 0-1
    EXPECT_EQ(engine_->GetLun("vol")->space.snapshot_bytes, 6u * kBs);
    src.reset();
    if (order == 0) {
      ASSERT_TRUE(engine_->DeleteLun("vol").ok());  // the snapshots stay
      EXPECT_EQ(Used(), 20u * kBs);
      ASSERT_TRUE(Restore("s1", "r1", 1 << 20).ok());
      ExpectA(*Vol("r1"), 16);
      ASSERT_TRUE(engine_->DeleteSnapshot("s1").ok());
      ASSERT_TRUE(engine_->DeleteSnapshot("s2").ok());
      ExpectA(*Vol("r1"), 16);
      ASSERT_TRUE(engine_->DeleteLun("r1").ok());
    } else if (order == 1) {
      ASSERT_TRUE(engine_->DeleteSnapshot("s1").ok());
      EXPECT_EQ(Used(), 18u * kBs);
      ASSERT_TRUE(engine_->DeleteSnapshot("s2").ok());
      EXPECT_EQ(Used(), 16u * kBs);
      ASSERT_TRUE(engine_->DeleteLun("vol").ok());
    } else {
      // Across a restart: reference counts are rebuilt from shared leaves.
      ASSERT_TRUE(engine_->Flush().ok());
      Reopen();
      EXPECT_EQ(Used(), 22u * kBs);
      ASSERT_TRUE(engine_->DeleteSnapshot("s2").ok());
      EXPECT_EQ(Used(), 20u * kBs);
      ASSERT_TRUE(engine_->DeleteLun("vol").ok());
      Reopen();
      EXPECT_EQ(Used(), 16u * kBs);
      ASSERT_TRUE(engine_->DeleteSnapshot("s1").ok());
    }
    ASSERT_TRUE(engine_->Flush().ok());  // frees pending slots
    EXPECT_EQ(Used(), 0u);
    Reopen();
    EXPECT_EQ(Used(), 0u);
    EXPECT_TRUE(engine_->ListSnapshots().empty());
  }
}

TEST_F(SnapshotTest, SurvivesRestartPowerCutAndCheckpoints) {
  checkpoint_bytes_ = 8192;  // checkpoints every few flushes
  Reopen();
  auto src = Create("vol", 4 << 20, /*dedup=*/true);
  WriteA(*src, 64);
  ASSERT_TRUE(Snap("vol", "s1").ok());  // durable when it returns
  const std::string id = engine_->GetSnapshot("s1")->id;
  for (int i = 0; i < 64; ++i) WriteStr(*src, i * kBs, Pattern('B'));
  ASSERT_TRUE(src->Flush().ok());
  PowerLossAndReopen();
  auto s = engine_->GetSnapshot("s1");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->id, id);
  ASSERT_TRUE(Restore("s1", "r", 4 << 20).ok());
  ExpectA(*Vol("r"), 64);
  src = Vol("vol");
  for (int i = 0; i < 64; ++i) ASSERT_EQ(ReadStr(*src, i * kBs), Pattern('B'));
  // Checkpoints (many flushes) and restarts keep everything and the exact counts.
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 16; ++i)
      WriteStr(*src, (64 + i) * kBs, Pattern(static_cast<char>('0' + round)));
    ASSERT_TRUE(src->Flush().ok());
  }
  src.reset();
  Reopen();
  ExpectA(*Vol("r"), 64);
  ASSERT_TRUE(engine_->DeleteLun("r").ok());
  ASSERT_TRUE(engine_->DeleteSnapshot("s1").ok());
  ASSERT_TRUE(engine_->DeleteLun("vol").ok());
  ASSERT_TRUE(engine_->Flush().ok());
  EXPECT_EQ(Used(), 0u);
}

// The journal cut at every tenth of what CreateSnapshot (or a restore) appended:
// after the restart the snapshot is absent or whole, the source untouched, the
// counts exact.
TEST_F(SnapshotTest, TornJournalLeavesNoHalfSnapshotOrRestore) {
  int absent = 0, whole = 0;
  for (int what = 0; what < 2; ++what) {
    for (int cut = 0; cut <= 10; ++cut) {
      SCOPED_TRACE("what " + std::to_string(what) + " cut " + std::to_string(cut));
      NewDevice("/cut" + std::to_string(what) + "-" + std::to_string(cut));
      auto src = Create("vol", 1 << 20);
      WriteA(*src, 64);
      if (what == 1) {
        ASSERT_TRUE(Snap("vol", "s").ok());
      }
      ASSERT_TRUE(engine_->Flush().ok());
      std::string journal;
      for (int gen = 1; gen < 100 && journal.empty(); ++gen) {
        std::string p = root_ + "/ssd/journal." + std::to_string(gen);
        if (env_.Exists(p)) journal = p;
      }
      ASSERT_FALSE(journal.empty());
      const size_t before = env_.ReadFile(journal)->size();
      if (what == 0) {
        ASSERT_TRUE(Snap("vol", "s").ok());
      } else {
        ASSERT_TRUE(Restore("s", "r", 1 << 20).ok());
      }
      const std::string after = *env_.ReadFile(journal);
      ASSERT_GT(after.size(), before);
      src.reset();
      graveyard_.push_back(std::move(engine_));
      const size_t keep = before + (after.size() - before) * static_cast<size_t>(cut) / 10;
      ASSERT_TRUE(env_.WriteFileAtomically(journal, after.substr(0, keep)).ok());
      Reopen();
      ExpectA(*Vol("vol"), 64);
      const bool made = what == 0 ? engine_->GetSnapshot("s").ok() : engine_->GetLun("r").ok();
      (made ? whole : absent)++;
      EXPECT_EQ(engine_->ListLuns().size(), what == 1 && made ? 2u : 1u);  // nothing hidden
      if (what == 0 && !made) {
        ASSERT_TRUE(Snap("vol", "s").ok());
      }
      if (what == 1 && !made) {
        ASSERT_TRUE(Restore("s", "r", 1 << 20).ok());
      }
      if (what == 1) ExpectA(*Vol("r"), 64);
      EXPECT_EQ(Used(), 64u * kBs);
      for (const auto& l : engine_->ListLuns()) ASSERT_TRUE(engine_->DeleteLun(l.name).ok());
      ASSERT_TRUE(engine_->DeleteSnapshot("s").ok());
      ASSERT_TRUE(engine_->Flush().ok());
      EXPECT_EQ(Used(), 0u);
    }
  }
  EXPECT_GT(absent, 0);
  EXPECT_GT(whole, 0);
}

TEST_F(SnapshotTest, RestoreToAnotherTierMovesItAndLeavesTheSnapshot) {
  auto src = Create("vol", 1 << 20);
  WriteA(*src);
  ASSERT_TRUE(Snap("vol", "s").ok());
  auto r = Restore("s", "cold", 1 << 20, TierClass::kSata);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(engine_->WaitTierMove("cold").ok());
  auto info = engine_->GetLun("cold");
  EXPECT_EQ(info->tier, TierClass::kSata);
  ExpectA(*Vol("cold"));
  EXPECT_EQ(Used(TierClass::kSata), 8u * kBs);
  EXPECT_EQ(Used(TierClass::kSsd), 8u * kBs);  // the source's and snapshot's blocks
  // A retry of the same restore converges.
  auto again = Restore("s", "cold", 1 << 20, TierClass::kSata);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->wwn, r->wwn);
  // A tier move of the source leaves the snapshot's blocks where they are.
  ASSERT_TRUE(engine_->StartTierMove("vol", TierClass::kSata).ok());
  ASSERT_TRUE(engine_->WaitTierMove("vol").ok());
  EXPECT_EQ(engine_->GetSnapshot("s")->tier, TierClass::kSsd);
  ASSERT_TRUE(Restore("s", "again", 1 << 20).ok());
  ExpectA(*Vol("again"));
}

TEST_F(SnapshotTest, MovingALunWithSnapshotsToAnotherDeviceIsRefusedNamingThem) {
  Create("vol", 1 << 20);
  ASSERT_TRUE(Snap("vol", "daily-1").ok());
  ASSERT_TRUE(Snap("vol", "daily-2").ok());
  Status s = engine_->StartExport("vol", "10.0.0.9:7000");
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("daily-1, daily-2"), std::string::npos) << s.message();
  ASSERT_TRUE(engine_->DeleteSnapshot("daily-1").ok());
  ASSERT_TRUE(engine_->DeleteSnapshot("daily-2").ok());
  EXPECT_TRUE(engine_->StartExport("vol", "10.0.0.9:7000").ok());
  engine_->AbortExport("vol", Status::Ok());
}

// Random writes, snapshots, restores, deletes and power cuts against a model.
TEST_F(SnapshotTest, RandomOpsMatchTheModel) {
  checkpoint_bytes_ = 16 << 10;
  Reopen();
  std::mt19937 rng(17);
  const uint64_t blocks = 64;
  std::map<std::string, std::vector<char>> luns;  // durable contents (we flush)
  std::map<std::string, std::vector<char>> snaps;
  luns["v0"].assign(blocks, 0);
  Create("v0", blocks * kBs, true);
  int next = 1;
  for (int op = 0; op < 400; ++op) {
    const int kind = static_cast<int>(rng() % 20);
    auto pick = [&](auto& m) {
      auto it = m.begin();
      std::advance(it, static_cast<long>(rng() % m.size()));
      return it->first;
    };
    if (kind < 12 && !luns.empty()) {
      std::string n = pick(luns);
      uint64_t lba = rng() % blocks;
      char c = static_cast<char>(1 + rng() % 6);
      WriteStr(*Vol(n), lba * kBs, Pattern(c));
      luns[n][lba] = c;
    } else if (kind < 15 && !luns.empty()) {
      std::string n = pick(luns);
      std::string s = "s" + std::to_string(next++);
      ASSERT_TRUE(Snap(n, s).ok());
      snaps[s] = luns[n];
    } else if (kind < 17 && !snaps.empty()) {
      std::string s = pick(snaps);
      std::string n = "v" + std::to_string(next++);
      ASSERT_TRUE(Restore(s, n, blocks * kBs).ok());
      luns[n] = snaps[s];
    } else if (kind == 17 && luns.size() > 1) {
      std::string n = pick(luns);
      ASSERT_TRUE(engine_->DeleteLun(n).ok());
      luns.erase(n);
    } else if (kind == 18 && !snaps.empty()) {
      std::string s = pick(snaps);
      ASSERT_TRUE(engine_->DeleteSnapshot(s).ok());
      snaps.erase(s);
    } else {
      ASSERT_TRUE(engine_->Flush().ok());
      PowerLossAndReopen();
    }
  }
  ASSERT_TRUE(engine_->Flush().ok());
  Reopen();
  for (const auto& [s, content] : snaps) {
    ASSERT_TRUE(Restore(s, "check-" + s, blocks * kBs).ok());
    luns["check-" + s] = content;
  }
  for (const auto& [n, content] : luns) {
    auto v = Vol(n);
    for (uint64_t i = 0; i < blocks; ++i) {
      ASSERT_EQ(ReadStr(*v, i * kBs), Pattern(content[i])) << n << " block " << i;
    }
  }
  for (const auto& [n, content] : luns) ASSERT_TRUE(engine_->DeleteLun(n).ok());
  for (const auto& [s, content] : snaps) ASSERT_TRUE(engine_->DeleteSnapshot(s).ok());
  ASSERT_TRUE(engine_->Flush().ok());
  EXPECT_EQ(Used(), 0u);
  Reopen();
  EXPECT_EQ(Used(), 0u);
}

}  // namespace
}  // namespace strata::storage
