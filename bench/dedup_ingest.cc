// Dedup ingest: 4 KiB blocks written through the engine with inline dedup at 0 %,
// 50 % and 90 % duplicates, beside memcpy, XXH3-128 and SHA-256 alone over the
// same bytes on the same core. Also reports dedup index memory per unique block.
//
//   strata-bench-dedup [--dir /dev/shm/strata-bench] [--mib 256]
//
// The engine writes to files in --dir (tmpfs by default, so the figure is the
// engine's CPU cost, not a disk's).
#include <openssl/evp.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "strata/common/env.h"
#include "strata/storage/engine.h"

using Clock = std::chrono::steady_clock;
using strata::storage::Engine;
using strata::storage::EngineOptions;

namespace {

constexpr size_t kBs = 4096;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Blocks where `dup_pct` % repeat an earlier block (uniformly chosen).
std::vector<char> MakeData(size_t blocks, int dup_pct, uint64_t seed) {
  std::vector<char> data(blocks * kBs);
  std::mt19937_64 rng(seed);
  size_t uniques = 0;
  for (size_t b = 0; b < blocks; ++b) {
    char* p = data.data() + b * kBs;
    if (uniques > 0 && static_cast<int>(rng() % 100) < dup_pct) {
      size_t src = rng() % b;
      std::memcpy(p, data.data() + src * kBs, kBs);
    } else {
      for (size_t i = 0; i < kBs; i += 8) {
        uint64_t v = rng();
        std::memcpy(p + i, &v, 8);
      }
      ++uniques;
    }
  }
  return data;
}

double MemcpyRate(const std::vector<char>& data) {
  std::vector<char> dst(kBs);
  auto t0 = Clock::now();
  for (size_t off = 0; off < data.size(); off += kBs) {
    std::memcpy(dst.data(), data.data() + off, kBs);
    asm volatile("" : : "r"(dst.data()) : "memory");
  }
  return static_cast<double>(data.size()) / Seconds(t0, Clock::now()) / 1e9;
}

double Xxh3Rate(const std::vector<char>& data) {
  uint64_t sink = 0;
  auto t0 = Clock::now();
  for (size_t off = 0; off < data.size(); off += kBs) {
    sink ^= XXH3_128bits(data.data() + off, kBs).low64;
  }
  double r = static_cast<double>(data.size()) / Seconds(t0, Clock::now()) / 1e9;
  asm volatile("" : : "r"(sink));
  return r;
}

double Sha256Rate(const std::vector<char>& data) {
  unsigned char out[32];
  unsigned int len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  auto t0 = Clock::now();
  for (size_t off = 0; off < data.size(); off += kBs) {
    EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
    EVP_DigestUpdate(ctx, data.data() + off, kBs);
    EVP_DigestFinal_ex(ctx, out, &len);
  }
  double r = static_cast<double>(data.size()) / Seconds(t0, Clock::now()) / 1e9;
  EVP_MD_CTX_free(ctx);
  return r;
}

struct IngestResult {
  double gbps = 0;
  double ratio = 0;
  double index_bytes_per_unique = 0;
  uint64_t unique_blocks = 0;
};

IngestResult EngineIngest(const std::vector<char>& data, const std::string& dir,
                          size_t request_bytes = kBs, bool dedup = true) {
  std::string cmd = "rm -rf '" + dir + "' && mkdir -p '" + dir + "'";
  if (std::system(cmd.c_str()) != 0) std::abort();
  EngineOptions o;
  o.state_dir = dir;
  o.tiers = {*strata::storage::ParseTierFlag("ssd=" + dir)};
  o.tier_capacity_bytes = {data.size() * 2};
  auto engine = Engine::Open(strata::Env::Default(), o);
  if (!engine.ok()) {
    std::fprintf(stderr, "engine: %s\n", engine.status().ToString().c_str());
    std::exit(1);
  }
  strata::storage::LunSpec spec;
  spec.name = "bench";
  spec.size_bytes = data.size();
  spec.dedup = dedup;
  if (!(*engine)->CreateLun(spec).ok()) std::abort();
  auto vol = *(*engine)->OpenVolume("bench");
  auto t0 = Clock::now();
  for (size_t off = 0; off < data.size(); off += request_bytes) {
    if (!vol->Write(off, std::span<const char>(data.data() + off, request_bytes), false).ok()) {
      std::abort();
    }
  }
  if (!vol->Flush().ok()) std::abort();
  IngestResult r;
  r.gbps = static_cast<double>(data.size()) / Seconds(t0, Clock::now()) / 1e9;
  auto space = (*engine)->DeviceSpace();
  r.ratio = space.ratio();
  auto tiers = (*engine)->Tiers();
  r.unique_blocks = tiers[0].used_bytes / kBs;
  r.index_bytes_per_unique = static_cast<double>(tiers[0].index_memory_bytes) /
                             static_cast<double>(tiers[0].indexed_blocks);
  vol.reset();
  engine->reset();
  cmd = "rm -rf '" + dir + "'";
  if (std::system(cmd.c_str()) != 0) std::abort();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "/dev/shm/strata-bench-dedup";
  size_t mib = 256;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--dir")
      dir = argv[i + 1];
    else if (a == "--mib")
      mib = std::strtoul(argv[i + 1], nullptr, 10);
  }
  const size_t blocks = mib * 1024 * 1024 / kBs;
  std::printf("dedup ingest, %zu MiB of 4 KiB blocks, one thread, engine files in %s\n\n", mib,
              dir.c_str());
  std::printf(
      "| duplicates | memcpy GB/s | XXH3-128 GB/s | SHA-256 GB/s | engine ingest GB/s | "
      "ratio | index B/unique block |\n|---|---|---|---|---|---|---|\n");
  for (int pct : {0, 50, 90}) {
    auto data = MakeData(blocks, pct, 1234 + static_cast<uint64_t>(pct));
    double mc = MemcpyRate(data);
    double xx = Xxh3Rate(data);
    double sha = Sha256Rate(data);
    IngestResult ing = EngineIngest(data, dir);
    std::printf("| %d %% | %.2f | %.2f | %.2f | %.2f | %.2f | %.1f |\n", pct, mc, xx, sha, ing.gbps,
                ing.ratio, ing.index_bytes_per_unique);
    std::fflush(stdout);
  }
  // The same engine path with 1 MiB requests (what sequential NBD clients send).
  auto data = MakeData(blocks, 50, 99);
  std::printf("\n| 1 MiB requests, 50 %% duplicates | engine ingest GB/s |\n|---|---|\n");
  std::printf("| dedup off | %.2f |\n", EngineIngest(data, dir, 1 << 20, false).gbps);
  std::printf("| dedup on | %.2f |\n", EngineIngest(data, dir, 1 << 20, true).gbps);
  return 0;
}
