#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "strata/common/result.h"

namespace strata::storage {

// How a device's background copies (device moves out and in) are held back while its
// NBD clients are busy (a request in flight or started in the last 100 ms); an idle
// device always copies at full speed. strata-stored's --copy-rate-with-clients,
// --copy-rate-floor, --copy-rate-ceiling and --copy-client-latency-target.
struct CopyPacing {
  enum class Mode {
    kNone,      // no cap (only the short waits for requests in flight)
    kFixed,     // at most fixed_bytes_per_second, all copies together
    kAdaptive,  // a rate that follows the clients' latency (CopyRateController)
  };
  Mode mode = Mode::kNone;
  uint64_t fixed_bytes_per_second = 0;
  // kAdaptive: the rate stays within [floor, ceiling] (ceiling 0: none) and is raised
  // while the clients' p99 request latency stays under the target, cut when over:
  // target_latency when set, else target_factor x the clients' p99 seen without a copy.
  uint64_t floor_bytes_per_second = 32ull << 20;
  uint64_t ceiling_bytes_per_second = 0;
  double target_factor = 2.0;  // kDefaultCopyClientLatencyTarget
  std::chrono::nanoseconds target_latency{0};
};

// strata-stored's --copy-client-latency-target unless set: 2x the clients' p99 without
// a copy. The target bounds the NBD server's service time, which leaves out what a client
// adds on its own side of the connection (its wake-ups behind the copies' threads), and
// the rate follows it up and down (AIMD), so about half the windows end over it: aimed at
// 3x, a client's own p99 during moves read 2.6-4.4x idle (median 3.5x, 12 runs on a 2-CPU
// host), aimed at 2x 1.8-4.8x (median 2.9x; #11's bound is 3x), the moves while the client
// ran somewhat slower (docs/benchmarks.md, "Drain rate (issue #11, drain, eleventh session)").
inline constexpr char kDefaultCopyClientLatencyTarget[] = "2x";

// From the flags' text: `rate` "auto" (adaptive), "0" (none) or a size per second
// ("128MiB": fixed); `floor` and `ceiling` sizes per second (ceiling "0": none);
// `target` "3x" (a factor of the idle p99, > 1) or a latency ("2ms", "500us", "1s").
// INVALID_ARGUMENT naming the flag and the reason otherwise.
Result<CopyPacing> ParseCopyPacing(const std::string& rate, const std::string& floor,
                                   const std::string& ceiling, const std::string& target);

}  // namespace strata::storage
