// Snapshot creation time against the amount of data written to the LUN, beside
// CloneLun (which copies the block map: the engine's other copy-on-write image) in
// the same run, and write latency on the source just before and just after a
// snapshot (the first write to each 1024-block leaf after it copies the leaf).
//
//   strata-bench-snapshot [--dir /dev/shm/strata-snapbench] [--gib 1,4,16,64] [--reps 5]
//
// Each size: a fresh engine on --dir (tmpfs: the figure is the engine's, not a
// disk's), one LUN of that size written whole in 1 MiB requests with dedup on and
// 256 distinct block contents, so the block map has one entry per 4 KiB (what
// snapshot cost could scale with) while the data takes 1 MiB of tmpfs. The source is
// flushed, then CreateSnapshot/DeleteSnapshot run --reps times (median and max),
// then one CloneLun. Then 20000 random 4 KiB QD1 writes (Volume::Write, dedup
// off for them: unique contents) before a snapshot and 20000 right after it.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "strata/common/env.h"
#include "strata/storage/engine.h"

using Clock = std::chrono::steady_clock;
using strata::storage::Engine;
using strata::storage::EngineOptions;
using strata::storage::LunSpec;

namespace {

constexpr size_t kBs = 4096;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Lat {
  double p50 = 0, p99 = 0, p999 = 0, max = 0;
};

Lat Percentiles(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  auto at = [&](double q) {
    return us[static_cast<size_t>(q * static_cast<double>(us.size() - 1))];
  };
  return {at(0.5), at(0.99), at(0.999), us.back()};
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// 20000 random 4 KiB writes of unique contents, one at a time; latencies in µs.
std::vector<double> RandomWrites(strata::storage::Volume& v, uint64_t blocks, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<char> buf(kBs);
  std::vector<double> us;
  us.reserve(20000);
  for (int i = 0; i < 20000; ++i) {
    for (size_t o = 0; o < kBs; o += 8) {
      uint64_t x = rng();
      std::memcpy(buf.data() + o, &x, 8);
    }
    const uint64_t lba = rng() % blocks;
    auto t0 = Clock::now();
    auto s = v.Write(lba * kBs, std::span<const char>(buf.data(), kBs), false);
    us.push_back(Ms(Clock::now() - t0) * 1000.0);
    if (!s.ok()) {
      std::fprintf(stderr, "write: %s\n", s.ToString().c_str());
      std::exit(1);
    }
  }
  return us;
}

int Run(const std::string& dir, const std::vector<uint64_t>& gibs, int reps) {
  std::printf(
      "| written GiB | map entries | write s | snapshot median ms | snapshot max ms | delete "
      "median ms | CloneLun ms | 4k write p50/p99/p99.9/max µs before | right after |\n"
      "|---|---|---|---|---|---|---|---|---|\n");
  for (uint64_t gib : gibs) {
    std::system(("rm -rf " + dir + " && mkdir -p " + dir).c_str());
    EngineOptions o;
    o.state_dir = dir;
    o.tiers = {*strata::storage::ParseTierFlag("ssd=" + dir)};
    o.tier_capacity_bytes = {(gib << 30) + (1ull << 30)};
    auto engine = Engine::Open(strata::Env::Default(), o);
    if (!engine.ok()) {
      std::fprintf(stderr, "open: %s\n", engine.status().ToString().c_str());
      return 1;
    }
    Engine& e = **engine;
    LunSpec spec;
    spec.name = "src";
    spec.size_bytes = gib << 30;
    spec.dedup = true;
    if (auto l = e.CreateLun(spec); !l.ok()) {
      std::fprintf(stderr, "create: %s\n", l.status().ToString().c_str());
      return 1;
    }
    auto vol = *e.OpenVolume("src");
    // 1 MiB requests cycling through 256 distinct blocks.
    std::vector<char> chunk(1 << 20);
    for (size_t b = 0; b < chunk.size() / kBs; ++b) {
      std::memset(chunk.data() + b * kBs, static_cast<int>(b + 1), kBs);
    }
    const auto w0 = Clock::now();
    for (uint64_t off = 0; off < spec.size_bytes; off += chunk.size()) {
      auto s = vol->Write(off, chunk, false);
      if (!s.ok()) {
        std::fprintf(stderr, "write: %s\n", s.ToString().c_str());
        return 1;
      }
    }
    (void)vol->Flush();
    const double write_s = Ms(Clock::now() - w0) / 1000.0;

    std::vector<double> create_ms, delete_ms;
    for (int r = 0; r < reps; ++r) {
      auto t0 = Clock::now();
      auto snap = e.CreateSnapshot("src", "s", {});
      create_ms.push_back(Ms(Clock::now() - t0));
      if (!snap.ok()) {
        std::fprintf(stderr, "snapshot: %s\n", snap.status().ToString().c_str());
        return 1;
      }
      t0 = Clock::now();
      (void)e.DeleteSnapshot("s");
      delete_ms.push_back(Ms(Clock::now() - t0));
    }
    LunSpec clone;
    clone.name = "clone";
    clone.size_bytes = spec.size_bytes;
    auto c0 = Clock::now();
    if (auto c = e.CloneLun("src", clone); !c.ok()) {
      std::fprintf(stderr, "clone: %s\n", c.status().ToString().c_str());
      return 1;
    }
    const double clone_ms = Ms(Clock::now() - c0);
    (void)e.DeleteLun("clone");

    const uint64_t blocks = spec.size_bytes / kBs;
    Lat before = Percentiles(RandomWrites(*vol, blocks, 1));
    (void)vol->Flush();
    (void)e.CreateSnapshot("src", "after", {});
    Lat after = Percentiles(RandomWrites(*vol, blocks, 2));
    std::printf(
        "| %llu | %llu | %.1f | %.3f | %.3f | %.3f | %.1f | %.1f / %.1f / %.1f / %.0f | %.1f / "
        "%.1f / %.1f / %.0f |\n",
        static_cast<unsigned long long>(gib), static_cast<unsigned long long>(blocks), write_s,
        Median(create_ms), *std::max_element(create_ms.begin(), create_ms.end()), Median(delete_ms),
        clone_ms, before.p50, before.p99, before.p999, before.max, after.p50, after.p99, after.p999,
        after.max);
    std::fflush(stdout);
    vol.reset();
    engine->reset();
  }
  std::system(("rm -rf " + dir).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "/dev/shm/strata-snapbench";
  std::vector<uint64_t> gibs = {1, 4, 16, 64};
  int reps = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--dir") {
      dir = argv[i + 1];
    } else if (a == "--gib") {
      gibs.clear();
      std::stringstream in(argv[i + 1]);
      std::string item;
      while (std::getline(in, item, ',')) gibs.push_back(std::stoull(item));
    } else if (a == "--reps") {
      reps = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "usage: %s [--dir DIR] [--gib 1,4,16,64] [--reps N]\n", argv[0]);
      return 2;
    }
  }
  return Run(dir, gibs, reps);
}
