#include "strata/storage/io_stats.h"

#include <bit>

namespace strata::storage {

int LunIoStats::BucketFor(uint64_t ns) {
  if (ns < kSubBuckets) return static_cast<int>(ns);
  int msb = 63 - std::countl_zero(ns);  // >= 3
  int sub = static_cast<int>((ns >> (msb - 3)) & (kSubBuckets - 1));
  int bucket = (msb - 2) * kSubBuckets + sub;
  return bucket < kBuckets ? bucket : kBuckets - 1;
}

uint64_t LunIoStats::BucketUpperBound(int bucket) {
  if (bucket < kSubBuckets) return static_cast<uint64_t>(bucket);
  int msb = bucket / kSubBuckets + 2;
  uint64_t sub = static_cast<uint64_t>(bucket % kSubBuckets);
  if (msb >= 63) return UINT64_MAX;
  return ((kSubBuckets + sub + 1) << (msb - 3)) - 1;
}

void LunIoStats::Record(IoKind kind, uint64_t bytes, std::chrono::nanoseconds latency, bool ok) {
  PerKind& k = kinds_[static_cast<int>(kind)];
  uint64_t ns = latency.count() > 0 ? static_cast<uint64_t>(latency.count()) : 0;
  k.ops.fetch_add(1, std::memory_order_relaxed);
  if (ok) {
    k.bytes.fetch_add(bytes, std::memory_order_relaxed);
  } else {
    k.errors.fetch_add(1, std::memory_order_relaxed);
  }
  k.buckets[BucketFor(ns)].fetch_add(1, std::memory_order_relaxed);
  uint64_t prev = k.max_ns.load(std::memory_order_relaxed);
  while (ns > prev && !k.max_ns.compare_exchange_weak(prev, ns, std::memory_order_relaxed)) {
  }
  if (ok) {
    if (Listener* l = listener_.load(std::memory_order_acquire)) l->OnRequest(kind, bytes, latency);
  }
}

LunIoStats::Snapshot LunIoStats::Take() const {
  Snapshot out;
  for (int i = 0; i < kIoKinds; ++i) {
    const PerKind& k = kinds_[i];
    KindSnapshot& s = out.kinds[i];
    s.ops = k.ops.load(std::memory_order_relaxed);
    s.bytes = k.bytes.load(std::memory_order_relaxed);
    s.errors = k.errors.load(std::memory_order_relaxed);
    s.max_ns = k.max_ns.load(std::memory_order_relaxed);
    std::array<uint64_t, kBuckets> counts;
    uint64_t total = 0;
    for (int b = 0; b < kBuckets; ++b) {
      counts[b] = k.buckets[b].load(std::memory_order_relaxed);
      total += counts[b];
    }
    if (total == 0) continue;
    auto percentile = [&](double q) {
      uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(total - 1)) + 1;
      uint64_t seen = 0;
      for (int b = 0; b < kBuckets; ++b) {
        seen += counts[b];
        if (seen >= rank) {
          uint64_t upper = BucketUpperBound(b);
          return upper < s.max_ns ? upper : s.max_ns;
        }
      }
      return s.max_ns;
    };
    s.p50_ns = percentile(0.50);
    s.p90_ns = percentile(0.90);
    s.p99_ns = percentile(0.99);
    s.p999_ns = percentile(0.999);
  }
  return out;
}

void IoRateWindow::Add(Clock::time_point at, const LunIoStats::Snapshot& counters) {
  Sample s;
  s.at = at;
  for (int k = 0; k < kIoKinds; ++k) {
    s.ops[k] = counters.kinds[k].ops;
    s.bytes[k] = counters.kinds[k].bytes;
  }
  samples_.push_back(s);
  while (samples_.size() > max_samples_) samples_.pop_front();
}

IoRates IoRateWindow::Rates(Clock::time_point at, const LunIoStats::Snapshot& counters) const {
  IoRates out;
  if (samples_.empty()) return out;
  const Sample& oldest = samples_.front();
  double secs = std::chrono::duration<double>(at - oldest.at).count();
  if (secs <= 0) return out;
  auto rate = [secs](uint64_t now, uint64_t then) {
    return now >= then ? static_cast<double>(now - then) / secs : 0.0;  // reset: no rate
  };
  for (int k = 0; k < kIoKinds; ++k) {
    out.ops_per_second[k] = rate(counters.kinds[k].ops, oldest.ops[k]);
    out.bytes_per_second[k] = rate(counters.kinds[k].bytes, oldest.bytes[k]);
  }
  return out;
}

}  // namespace strata::storage
