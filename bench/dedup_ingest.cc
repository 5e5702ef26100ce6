// Dedup ingest: 4 KiB blocks written through the engine with inline dedup at 0 %,
// 50 % and 90 % duplicates, beside memcpy, XXH3-128 and SHA-256 alone over the
// same bytes on the same core. Says what the figure depends on (CPU, build type,
// the tier's file system, whether the tier's slots were pre-faulted) and splits
// the work into its phases, each timed alone over the same bytes: hash (XXH3-128),
// index (DedupIndex lookups + inserts), compare (memcmp with the candidate through
// a mapping of the file, as the engine does; with a pread first, as it did before)
// and slot write (the unique blocks into the tier's file system as the engine stores them:
// on tmpfs, pages allocated ahead 32 slots a call and the blocks copied in through the
// mapping; elsewhere one pwrite each). Also reports dedup
// index memory per unique block and index lookups/s.
//
//   strata-bench-dedup [--dir /dev/shm] [--mib 256] [--pct 0,50,90]
//                      [--prefault both|yes|no] [--engine-only] [--request-kib 4]
//                      [--over-other-data] [--index-only]
//
// The engine writes to files in a directory of its own that it makes under --dir (tmpfs
// by default, so the figure is the engine's CPU cost, not a disk's) and removes after;
// nothing else under --dir is touched. --engine-only runs only the engine rows (for
// perf record); with --request-kib (a multiple of 4) those rows write requests of that
// size (1024: what sequential NBD clients send), 4 KiB otherwise, and with
// --over-other-data over a LUN first written whole with other data (every block
// replaced, as fio's timed runs over a prefilled LUN do).
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "engine/dedup_index.h"
#include "strata/common/env.h"
#include "strata/storage/engine.h"

#ifndef STRATA_BUILD_TYPE
#define STRATA_BUILD_TYPE "unknown"
#endif

// This thread's CPU time: the engine works on the calling thread (its system calls
// included), so bytes per CPU second is the rate per core even while other
// processes share the cores; wall-clock rates swing with the machine's load.
struct Clock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<Clock>;
  static constexpr bool is_steady = true;
  static time_point now() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return time_point(duration(static_cast<rep>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec));
  }
};
using strata::storage::Engine;
using strata::storage::EngineOptions;
using strata::storage::engine::DedupIndex;
using strata::storage::engine::Fingerprint;
using strata::storage::engine::FingerprintOf;

namespace {

constexpr size_t kBs = 4096;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

uint64_t SplitMix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Blocks where `dup_pct` % repeat an earlier block (uniformly chosen). `dup_of[b]`:
// the earlier block it repeats, or SIZE_MAX for a unique block.
std::vector<char> MakeData(size_t blocks, int dup_pct, uint64_t seed, std::vector<size_t>* dup_of) {
  std::vector<char> data(blocks * kBs);
  dup_of->assign(blocks, SIZE_MAX);
  uint64_t s = seed;
  size_t uniques = 0;
  for (size_t b = 0; b < blocks; ++b) {
    char* p = data.data() + b * kBs;
    if (uniques > 0 && static_cast<int>(SplitMix(s) % 100) < dup_pct) {
      size_t src = SplitMix(s) % b;
      while ((*dup_of)[src] != SIZE_MAX) src = (*dup_of)[src];
      std::memcpy(p, data.data() + src * kBs, kBs);
      (*dup_of)[b] = src;
    } else {
      for (size_t i = 0; i < kBs; i += 8) {
        uint64_t v = SplitMix(s);
        std::memcpy(p + i, &v, 8);
      }
      ++uniques;
    }
  }
  return data;
}

double Rate(size_t bytes, Clock::time_point t0) {
  return static_cast<double>(bytes) / Seconds(t0, Clock::now()) / 1e9;
}

double MemcpyRate(const std::vector<char>& data) {
  std::vector<char> dst(kBs);
  auto t0 = Clock::now();
  for (size_t off = 0; off < data.size(); off += kBs) {
    std::memcpy(dst.data(), data.data() + off, kBs);
    asm volatile("" : : "r"(dst.data()) : "memory");
  }
  return Rate(data.size(), t0);
}

double Xxh3Rate(const std::vector<char>& data) {
  uint64_t sink = 0;
  auto t0 = Clock::now();
  for (size_t off = 0; off < data.size(); off += kBs) {
    sink ^= XXH3_128bits(data.data() + off, kBs).low64;
  }
  double r = Rate(data.size(), t0);
  asm volatile("" : : "r"(sink));
  return r;
}

// What the engine's FingerprintOf uses: libxxhash picks AVX2/AVX-512 at run time.
double Xxh3DispatchRate(const std::vector<char>& data) {
  uint64_t sink = 0;
  auto t0 = Clock::now();
  for (size_t off = 0; off < data.size(); off += kBs) {
    sink ^= FingerprintOf(data.data() + off, kBs).lo;
  }
  double r = Rate(data.size(), t0);
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
  double r = Rate(data.size(), t0);
  EVP_MD_CTX_free(ctx);
  return r;
}

void Run(const std::string& cmd) {
  if (std::system(cmd.c_str()) != 0) {
    std::fprintf(stderr, "failed: %s\n", cmd.c_str());
    std::exit(1);
  }
}

// Allocates every page of [0, bytes) of `path` (posix_fallocate: on tmpfs this is
// the page allocation and zeroing a first write would otherwise pay).
void Prefault(const std::string& path, size_t bytes) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 || ::posix_fallocate(fd, 0, static_cast<off_t>(bytes)) != 0) {
    std::fprintf(stderr, "pre-fault %s failed\n", path.c_str());
    std::exit(1);
  }
  ::close(fd);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

// True when fd's file lives on tmpfs (what File::InMemory says for the engine's tier).
bool InMemory(int fd) {
  struct statfs fs {};
  return ::fstatfs(fd, &fs) == 0 && static_cast<unsigned long>(fs.f_type) == 0x01021994;
}

// The phases, each alone over the same bytes, in ns per block of the input.
struct Phases {
  double hash_ns = 0;           // XXH3-128 of every block
  double index_ns = 0;          // DedupIndex::Find for every block, InsertIfAbsent for uniques
  double compare_ns = 0;        // duplicates: memcmp with the candidate slot through a mapping
  double compare_pread_ns = 0;  // the same with a pread of the slot first (before #16)
  double write_ns = 0;          // uniques into a fresh (or pre-faulted) file, as the engine does
  double lookups_per_s = 0;
};

Phases MeasurePhases(const std::vector<char>& data, const std::vector<size_t>& dup_of,
                     const std::string& dir, bool prefault) {
  const size_t blocks = dup_of.size();
  Phases p;
  std::vector<Fingerprint> fps(blocks);
  auto t0 = Clock::now();
  for (size_t b = 0; b < blocks; ++b) fps[b] = FingerprintOf(data.data() + b * kBs, kBs);
  p.hash_ns = Seconds(t0, Clock::now()) * 1e9 / static_cast<double>(blocks);

  DedupIndex index;
  std::vector<uint64_t> slot_of(blocks, 0);
  uint64_t next_slot = 1, found = 0;
  t0 = Clock::now();
  for (size_t b = 0; b < blocks; ++b) {
    uint64_t hit = 0;
    index.Find(fps[b], [&](uint64_t slot) {
      hit = slot;
      return true;  // the engine would compare bytes here; timed as "compare"
    });
    if (hit != 0) {
      ++found;
      slot_of[b] = hit;
    } else {
      slot_of[b] = next_slot;
      index.Insert(fps[b], next_slot++);
    }
  }
  double secs = Seconds(t0, Clock::now());
  p.index_ns = secs * 1e9 / static_cast<double>(blocks);
  p.lookups_per_s = static_cast<double>(blocks) / secs;
  if (found + next_slot - 1 != blocks) std::abort();

  Run("rm -rf '" + dir + "' && mkdir -p '" + dir + "'");
  const std::string path = dir + "/phase.dat";
  if (prefault) Prefault(path, (next_slot + 1) * kBs);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) std::exit(1);
  // The engine's one mapping of the tier file: on tmpfs it stores new blocks through
  // it into pages allocated ahead (EngineImpl::RefillReserveLocked: the never-used
  // slots of a refill, about 32, one MADV_POPULATE_WRITE), and compares through it.
  const size_t file_bytes = next_slot * kBs;
  const bool in_memory = InMemory(fd);
  if (in_memory && ::ftruncate(fd, static_cast<off_t>(file_bytes)) != 0) std::exit(1);
  void* view = ::mmap(nullptr, file_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (view == MAP_FAILED) std::exit(1);
  char* const base = static_cast<char*>(view);
  constexpr uint64_t kAhead = 32;
  t0 = Clock::now();
  for (size_t b = 0; b < blocks; ++b) {
    if (dup_of[b] != SIZE_MAX) continue;
    const uint64_t slot = slot_of[b];
    if (in_memory) {
      if ((slot - 1) % kAhead == 0) {
        const uint64_t n = std::min<uint64_t>(kAhead, next_slot - slot);
        if (::madvise(base + slot * kBs, n * kBs, MADV_POPULATE_WRITE) != 0) std::exit(1);
      }
      std::memcpy(base + slot * kBs, data.data() + b * kBs, kBs);
    } else if (::pwrite(fd, data.data() + b * kBs, kBs, static_cast<off_t>(slot * kBs)) !=
               static_cast<ssize_t>(kBs)) {
      std::exit(1);
    }
  }
  p.write_ns = Seconds(t0, Clock::now()) * 1e9 / static_cast<double>(blocks);
  std::vector<char> have(kBs);
  size_t equal = 0;
  t0 = Clock::now();
  for (size_t b = 0; b < blocks; ++b) {
    if (dup_of[b] == SIZE_MAX) continue;
    if (::pread(fd, have.data(), kBs, static_cast<off_t>(slot_of[b] * kBs)) !=
        static_cast<ssize_t>(kBs)) {
      std::exit(1);
    }
    equal += std::memcmp(have.data(), data.data() + b * kBs, kBs) == 0;
  }
  p.compare_pread_ns = Seconds(t0, Clock::now()) * 1e9 / static_cast<double>(blocks);
  // What the engine does now: compare through the shared mapping of the file.
  t0 = Clock::now();
  for (size_t b = 0; b < blocks; ++b) {
    if (dup_of[b] == SIZE_MAX) continue;
    equal += std::memcmp(static_cast<const char*>(view) + slot_of[b] * kBs, data.data() + b * kBs,
                         kBs) == 0;
  }
  p.compare_ns = Seconds(t0, Clock::now()) * 1e9 / static_cast<double>(blocks);
  asm volatile("" : : "r"(equal));  // the compares are used
  ::munmap(view, file_bytes);
  ::close(fd);
  Run("rm -rf '" + dir + "'");
  return p;
}

// The index as it was before issue #16 (12-byte buckets: 64-bit tag + 32-bit slot,
// power-of-two table doubled at 85 % load), kept here as the peer of DedupIndex's
// lookups/s and bytes per entry.
class IndexBefore {
 public:
  IndexBefore() : tags_(1024, 0), slots_(1024, 0) {}
  uint64_t Find(const Fingerprint& fp) const {
    const size_t mask = tags_.size() - 1;
    for (size_t i = Home(fp.lo);; i = (i + 1) & mask) {
      if (slots_[i] == 0) return 0;
      if (tags_[i] == fp.lo) return slots_[i];
    }
  }
  void Insert(const Fingerprint& fp, uint64_t slot) {
    if ((size_ + 1) * 100 > tags_.size() * 85) Grow();
    const size_t mask = tags_.size() - 1;
    for (size_t i = Home(fp.lo);; i = (i + 1) & mask) {
      if (slots_[i] == 0) {
        tags_[i] = fp.lo;
        slots_[i] = static_cast<uint32_t>(slot);
        ++size_;
        return;
      }
      if (tags_[i] == fp.lo) return;
    }
  }
  double bytes_per_entry() const {
    return static_cast<double>(tags_.size() * 12) / static_cast<double>(size_);
  }

 private:
  size_t Home(uint64_t tag) const { return (tag * 0x9e3779b97f4a7c15ull) >> shift_; }
  void Grow() {
    std::vector<uint64_t> old_tags(tags_.size() * 2, 0);
    std::vector<uint32_t> old_slots(slots_.size() * 2, 0);
    old_tags.swap(tags_);
    old_slots.swap(slots_);
    --shift_;
    size_ = 0;
    for (size_t i = 0; i < old_tags.size(); ++i) {
      if (old_slots[i] != 0) Insert(Fingerprint{old_tags[i], 0}, old_slots[i]);
    }
  }
  std::vector<uint64_t> tags_;
  std::vector<uint32_t> slots_;
  int shift_ = 64 - 10;
  size_t size_ = 0;
};

// Index alone at `n` unique blocks: inserts, then lookups of present blocks (hits)
// and of absent ones (misses: what every unique block costs), before and after.
void IndexTable(const std::vector<size_t>& sizes) {
  std::printf(
      "\nDedup index alone (random fingerprints; M lookups/s, one thread; replaces/s: a "
      "slot's entry erased and the slot indexed again under a new fingerprint, what each "
      "overwrite of a dedup block costs the index)\n\n"
      "| unique blocks | index | B/unique block | inserts/s | hits/s | misses/s | replaces/s |\n"
      "|---|---|---|---|---|---|---|\n");
  for (size_t n : sizes) {
    std::vector<Fingerprint> fps(2 * n);
    uint64_t seed = n;
    for (auto& f : fps) f = Fingerprint{SplitMix(seed), SplitMix(seed)};
    auto time_it = [&](auto&& body) {
      auto t0 = Clock::now();
      uint64_t sink = 0;
      for (size_t i = 0; i < n; ++i) sink += body(i);
      double secs = Seconds(t0, Clock::now());
      asm volatile("" : : "r"(sink));
      return static_cast<double>(n) / secs / 1e6;
    };
    {
      IndexBefore idx;
      double ins = time_it([&](size_t i) {
        idx.Insert(fps[i], i + 1);
        return 0;
      });
      double hit = time_it([&](size_t i) { return idx.Find(fps[(i * 7919) % n]); });
      double miss = time_it([&](size_t i) { return idx.Find(fps[n + i]); });
      std::printf("| %zu | before (12 B buckets, x2) | %.1f | %.1f M | %.1f M | %.1f M | - |\n", n,
                  idx.bytes_per_entry(), ins, hit, miss);
    }
    {
      DedupIndex idx;
      auto first = [&](const Fingerprint& fp) {
        uint64_t found = 0;
        idx.Find(fp, [&](uint64_t slot) {
          found = slot;
          return true;
        });
        return found;
      };
      double ins = time_it([&](size_t i) { return idx.Insert(fps[i], i + 1) ? 1 : 0; });
      double hit = time_it([&](size_t i) { return first(fps[(i * 7919) % n]); });
      double miss = time_it([&](size_t i) { return first(fps[n + i]); });
      // Slot i + 1 (i in a scattered order) leaves the index and comes back with the
      // fingerprint of a block not seen yet.
      double replace = time_it([&](size_t i) {
        const size_t k = (i * 7919) % n;
        idx.EraseSlot(k + 1);
        return idx.Insert(fps[n + i], k + 1) ? 1 : 0;
      });
      std::printf(
          "| %zu | now (6 B buckets + 4 B tag a slot, x1.5) | %.1f | %.1f M | %.1f M | %.1f M | "
          "%.1f M |\n",
          n, idx.bytes_per_entry(), ins, hit, miss, replace);
    }
    std::fflush(stdout);
  }
}

struct IngestResult {
  double gbps = 0;
  double ratio = 0;
  double index_bytes_per_unique = 0;
};

// With `overwrite`, the LUN is first written whole with `overwrite`'s bytes and
// flushed, and the rate is that of writing `data` over it (every block replaced: the
// replaced blocks leave the dedup index).
IngestResult EngineIngest(const std::vector<char>& data, const std::string& dir, bool prefault,
                          size_t request_bytes = kBs, bool dedup = true,
                          const std::vector<char>* overwrite = nullptr) {
  Run("rm -rf '" + dir + "' && mkdir -p '" + dir + "'");
  const size_t capacity = data.size() * 2;
  if (prefault) Prefault(dir + "/blocks.dat", capacity);
  EngineOptions o;
  o.state_dir = dir;
  o.tiers = {*strata::storage::ParseTierFlag("ssd=" + dir)};
  o.tier_capacity_bytes = {capacity};
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
  if (overwrite != nullptr) {
    for (size_t off = 0; off < data.size(); off += request_bytes) {
      if (!vol->Write(off, std::span<const char>(overwrite->data() + off, request_bytes), false)
               .ok()) {
        std::abort();
      }
    }
    if (!vol->Flush().ok()) std::abort();
  }
  auto t0 = Clock::now();
  for (size_t off = 0; off < data.size(); off += request_bytes) {
    if (!vol->Write(off, std::span<const char>(data.data() + off, request_bytes), false).ok()) {
      std::abort();
    }
  }
  if (!vol->Flush().ok()) std::abort();
  IngestResult r;
  r.gbps = Rate(data.size(), t0);
  r.ratio = (*engine)->DeviceSpace().ratio();
  auto tiers = (*engine)->Tiers();
  if (tiers[0].indexed_blocks > 0) {
    r.index_bytes_per_unique = static_cast<double>(tiers[0].index_memory_bytes) /
                               static_cast<double>(tiers[0].indexed_blocks);
  }
  vol.reset();
  engine->reset();
  Run("rm -rf '" + dir + "'");
  return r;
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

std::string FirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line.empty() ? "unknown" : line;
}

// The file system holding `dir` (its parent when dir does not exist yet), and for
// tmpfs the huge= mount option and the shmem THP policy: they decide how slot pages
// are allocated on first write.
std::string FileSystemOf(const std::string& dir) {
  std::string probe = dir;
  struct statfs fs {};
  while (::statfs(probe.c_str(), &fs) != 0) {
    auto slash = probe.find_last_of('/');
    if (slash == std::string::npos || slash == 0) {
      probe = "/";
    } else {
      probe.resize(slash);
    }
    if (probe == "/" && ::statfs("/", &fs) == 0) break;
  }
  switch (static_cast<unsigned long>(fs.f_type)) {
    case 0x01021994: {
      // The mount's huge= option, from /proc/self/mounts (longest matching prefix).
      std::ifstream in("/proc/self/mounts");
      std::string dev, mnt, type, opts, best, huge = "huge=never (default)";
      while (in >> dev >> mnt >> type >> opts) {
        in.ignore(1024, '\n');
        if (type != "tmpfs" || probe.rfind(mnt, 0) != 0 || mnt.size() < best.size()) continue;
        best = mnt;
        huge = "huge=never (default)";
        auto h = opts.find("huge=");
        if (h != std::string::npos) huge = opts.substr(h, opts.find(',', h) - h);
      }
      return "tmpfs (" + huge +
             "; shmem THP: " + FirstLine("/sys/kernel/mm/transparent_hugepage/shmem_enabled") + ")";
    }
    case 0xEF53:
      return "ext4";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x794c7630:
      return "overlayfs";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "0x%lx", static_cast<unsigned long>(fs.f_type));
      return std::string("f_type ") + buf;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string parent = "/dev/shm";
  size_t mib = 256;
  std::vector<int> pcts = {0, 50, 90};
  std::vector<bool> prefaults = {false, true};
  bool engine_only = false;
  size_t request_kib = 4;
  bool over_other = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string v = i + 1 < argc ? argv[i + 1] : "";
    if (a == "--engine-only") {
      engine_only = true;
      continue;
    }
    if (a == "--over-other-data") {
      over_other = true;
      continue;
    }
    if (a == "--index-only") {  // only the index table (for A/B of the index)
      IndexTable({100'000, 1'000'000, 10'000'000});
      return 0;
    }
    if (a == "--dir") {
      parent = v;
    } else if (a == "--mib") {
      mib = std::strtoul(v.c_str(), nullptr, 10);
    } else if (a == "--request-kib") {
      request_kib = std::strtoul(v.c_str(), nullptr, 10);
    } else if (a == "--pct") {
      pcts.clear();
      for (size_t p = 0; p < v.size();) {
        pcts.push_back(std::atoi(v.c_str() + p));
        p = v.find(',', p);
        if (p == std::string::npos) break;
        ++p;
      }
    } else if (a == "--prefault") {
      prefaults = v == "yes"  ? std::vector<bool>{true}
                  : v == "no" ? std::vector<bool>{false}
                              : std::vector<bool>{false, true};
    } else {
      std::fprintf(stderr,
                   "usage: strata-bench-dedup [--dir D] [--mib N] [--pct 0,50,90] "
                   "[--prefault both|yes|no] [--engine-only] [--request-kib 4] "
                   "[--over-other-data]\n");
      return 2;
    }
    ++i;
  }
  if (mib == 0 || pcts.empty()) {
    std::fprintf(stderr, "--mib and --pct need positive values\n");
    return 2;
  }
  if (request_kib == 0 || request_kib % 4 != 0 || (mib * 1024) % request_kib != 0) {
    std::fprintf(stderr, "--request-kib: a multiple of 4 that divides --mib's KiB\n");
    return 2;
  }
  // A directory of its own under --dir: every phase empties and removes only that, never
  // what else the parent holds.
  std::string dir = parent + "/strata-bench-dedup.XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) {
    std::fprintf(stderr, "--dir %s: cannot make a directory in it: %s\n", parent.c_str(),
                 std::strerror(errno));
    return 2;
  }
  const size_t blocks = mib * 1024 * 1024 / kBs;
  double load[3] = {};
  if (::getloadavg(load, 3) < 0) load[0] = -1;
  std::printf(
      "dedup ingest, %zu MiB of 4 KiB blocks, one thread; rates and times in this thread's "
      "CPU time\n",
      mib);
  std::printf("cpu: %s (%ld online)\n", CpuModel().c_str(), ::sysconf(_SC_NPROCESSORS_ONLN));
  std::printf("build: %s (%s, %s)\n", STRATA_BUILD_TYPE,
#ifdef __OPTIMIZE__
              "optimized",
#else
              "NOT optimized",
#endif
#ifdef NDEBUG
              "NDEBUG"
#else
              "assertions on"
#endif
  );
  // Syscalls and page allocation cost what the CPU's mitigations and the kernel make
  // them cost: the engine allocates a page for each unique block (on tmpfs ahead, one
  // madvise per ~32 of them; elsewhere one pwrite each), the peers none.
  std::printf("mitigations: spectre_v2: %s; retbleed: %s\n",
              FirstLine("/sys/devices/system/cpu/vulnerabilities/spectre_v2").c_str(),
              FirstLine("/sys/devices/system/cpu/vulnerabilities/retbleed").c_str());
  std::printf("tier: %s on %s\n", dir.c_str(), FileSystemOf(dir).c_str());
  std::printf("load average at start: %.2f\n\n", load[0]);

  if (!engine_only) {
    std::printf(
        "| duplicates | memcpy GB/s | XXH3-128 GB/s | XXH3-128 dispatched GB/s | SHA-256 GB/s | "
        "slots pre-faulted | engine ingest GB/s | ratio | index B/unique block |\n"
        "|---|---|---|---|---|---|---|---|---|\n");
  }
  struct Row {
    int pct;
    bool prefault;
    Phases ph;
    double engine_ns;
  };
  std::vector<Row> rows;
  for (int pct : pcts) {
    std::vector<size_t> dup_of;
    auto data = MakeData(blocks, pct, 1234 + static_cast<uint64_t>(pct), &dup_of);
    double mc = 0, xx = 0, xd = 0, sha = 0;
    if (!engine_only) {
      mc = MemcpyRate(data);
      xx = Xxh3Rate(data);
      xd = Xxh3DispatchRate(data);
      sha = Sha256Rate(data);
    }
    std::vector<char> other;
    if (engine_only && over_other) {
      std::vector<size_t> unused;
      other = MakeData(blocks, pct, 4321 + static_cast<uint64_t>(pct), &unused);
    }
    for (bool pf : prefaults) {
      IngestResult ing = engine_only ? EngineIngest(data, dir, pf, request_kib * 1024, true,
                                                    over_other ? &other : nullptr)
                                     : EngineIngest(data, dir, pf);
      if (engine_only) {
        std::printf("%d %% duplicates, %zu KiB requests%s, pre-faulted %s: %.2f GB/s\n", pct,
                    request_kib, over_other ? " over other data" : "", pf ? "yes" : "no", ing.gbps);
      } else {
        std::printf("| %d %% | %.2f | %.2f | %.2f | %.2f | %s | %.2f | %.2f | %.1f |\n", pct, mc,
                    xx, xd, sha, pf ? "yes" : "no", ing.gbps, ing.ratio,
                    ing.index_bytes_per_unique);
        rows.push_back({pct, pf, MeasurePhases(data, dup_of, dir, pf), kBs / ing.gbps});
      }
      std::fflush(stdout);
    }
  }
  if (engine_only) {
    Run("rm -rf '" + dir + "'");
    return 0;
  }

  std::printf(
      "\nPhases alone, ns per 4 KiB block of input (the rest of the engine's time: locks, block "
      "map, journal records, zero check, request handling; slot write: pages allocated 32 "
      "slots ahead and stored through the mapping on tmpfs, as the engine does there, else "
      "one pwrite a unique block)\n\n"
      "| duplicates | slots pre-faulted | hash | index | compare (pread + memcmp) | compare "
      "(mapped) | slot write | sum | engine | rest | index lookups/s |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const Row& r : rows) {
    double sum = r.ph.hash_ns + r.ph.index_ns + r.ph.compare_ns + r.ph.write_ns;
    std::printf("| %d %% | %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.1f M |\n",
                r.pct, r.prefault ? "yes" : "no", r.ph.hash_ns, r.ph.index_ns,
                r.ph.compare_pread_ns, r.ph.compare_ns, r.ph.write_ns, sum, r.engine_ns,
                r.engine_ns - sum, r.ph.lookups_per_s / 1e6);
  }

  IndexTable({100'000, 1'000'000, 10'000'000});

  // The same engine path with 1 MiB requests (what sequential NBD clients send).
  std::vector<size_t> dup_of;
  auto data = MakeData(blocks, 50, 99, &dup_of);
  std::printf(
      "\n| 1 MiB requests, 50 %% duplicates | slots pre-faulted | engine ingest GB/s |\n"
      "|---|---|---|\n");
  std::vector<size_t> unused;
  auto first = MakeData(blocks, 50, 7, &unused);
  for (bool pf : prefaults) {
    std::printf("| dedup off | %s | %.2f |\n", pf ? "yes" : "no",
                EngineIngest(data, dir, pf, 1 << 20, false).gbps);
    std::printf("| dedup on | %s | %.2f |\n", pf ? "yes" : "no",
                EngineIngest(data, dir, pf, 1 << 20, true).gbps);
    std::printf("| dedup off, over other data | %s | %.2f |\n", pf ? "yes" : "no",
                EngineIngest(data, dir, pf, 1 << 20, false, &first).gbps);
    std::printf("| dedup on, over other data | %s | %.2f |\n", pf ? "yes" : "no",
                EngineIngest(data, dir, pf, 1 << 20, true, &first).gbps);
  }
  Run("rm -rf '" + dir + "'");
  return 0;
}
