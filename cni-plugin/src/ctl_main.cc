// strata-cni-ctl: what a node agent uses on running pods, without recreating anything.
//   strata-cni-ctl bandwidth set --netns PATH --ifname IF [--ingress-rate BITS --ingress-burst
//   BITS]
//                                [--egress-rate BITS --egress-burst BITS]
//   strata-cni-ctl bandwidth get --netns PATH --ifname IF
//   strata-cni-ctl counters --netns PATH --ifname IF
// Rates in bit/s and bursts in bits, with an optional k/m/g suffix (powers of 1000). A direction
// not named keeps its shaping; a rate of 0 removes it. Prints JSON. Exit: 0 ok, 1 failure, 2 usage.
#include <cctype>
#include <cstdint>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "strata/cni/bandwidth.h"
#include "strata/net/linux_netlink.h"

namespace {

using namespace strata;
using namespace strata::cni;

constexpr char kUsage[] =
    "usage: strata-cni-ctl bandwidth set --netns PATH --ifname IF [--ingress-rate R "
    "--ingress-burst B] [--egress-rate R --egress-burst B]\n"
    "       strata-cni-ctl bandwidth get --netns PATH --ifname IF\n"
    "       strata-cni-ctl counters --netns PATH --ifname IF\n";

int Usage(const std::string& why) {
  std::cerr << "strata-cni-ctl: " << why << "\n" << kUsage;
  return 2;
}

int Fail(const Status& s) {
  std::cerr << "strata-cni-ctl: " << s.ToString() << "\n";
  return 1;
}

std::optional<uint64_t> ParseBits(const std::string& text) {
  if (text.empty() || !std::isdigit(static_cast<unsigned char>(text[0]))) return std::nullopt;
  size_t pos = 0;
  uint64_t v = 0;
  try {
    v = std::stoull(text, &pos);
  } catch (...) {
    return std::nullopt;
  }
  std::string unit = text.substr(pos);
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  uint64_t mult = unit.empty()  ? 1
                  : unit == "k" ? 1000
                  : unit == "m" ? 1000000
                  : unit == "g" ? 1000000000
                                : 0;
  if (mult == 0 || v > UINT64_MAX / mult) return std::nullopt;
  return v * mult;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::vector<std::string> words;
  std::map<std::string, std::string> flags;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "-h" || args[i] == "--help") {
      std::cout << kUsage;
      return 0;
    }
    if (args[i].rfind("--", 0) == 0) {
      if (i + 1 >= args.size()) return Usage(args[i] + " needs a value");
      flags[args[i].substr(2)] = args[i + 1];
      ++i;
    } else {
      words.push_back(args[i]);
    }
  }
  const bool set = words == std::vector<std::string>{"bandwidth", "set"};
  const bool get = words == std::vector<std::string>{"bandwidth", "get"};
  const bool counters = words == std::vector<std::string>{"counters"};
  if (!set && !get && !counters) return Usage("unknown command");
  if (!flags.count("netns") || !flags.count("ifname")) return Usage("--netns and --ifname needed");
  std::map<std::string, uint64_t> values;
  for (const auto& [k, v] : flags) {
    if (k == "netns" || k == "ifname") continue;
    if (!set || (k != "ingress-rate" && k != "ingress-burst" && k != "egress-rate" &&
                 k != "egress-burst")) {
      return Usage("unknown flag --" + k);
    }
    auto bits = ParseBits(v);
    if (!bits) return Usage("--" + k + ": '" + v + "' is not a number of bits (e.g. 10m)");
    values[k] = *bits;
  }

  auto factory = net::NewLinuxNetlinkFactory();
  auto host = factory->Open("");
  if (!host.ok()) return Fail(host.status());
  auto pod = factory->Open(flags["netns"]);
  if (!pod.ok()) return Fail(pod.status());
  auto target = ResolveShapingTarget(**host, **pod, flags["ifname"]);
  if (!target.ok()) return Fail(target.status());

  if (counters) {
    auto j = ReadCounters(*target);
    if (!j.ok()) return Fail(j.status());
    std::cout << j->dump() << "\n";
    return 0;
  }
  auto current = ReadLimits(*target);
  if (!current.ok()) return Fail(current.status());
  if (get) {
    std::cout << LimitsToJson(*current).dump() << "\n";
    return 0;
  }
  BandwidthLimits want = *current;
  auto pick = [&](const char* k, uint64_t* field) {
    if (values.count(k)) *field = values[k];
  };
  pick("ingress-rate", &want.ingress_rate);
  pick("ingress-burst", &want.ingress_burst);
  pick("egress-rate", &want.egress_rate);
  pick("egress-burst", &want.egress_burst);
  // "rate 0" switches a direction off whatever its burst was.
  if (values.count("ingress-rate") && want.ingress_rate == 0) want.ingress_burst = 0;
  if (values.count("egress-rate") && want.egress_rate == 0) want.egress_burst = 0;
  Status s = ValidateLimits(want, "--");
  if (!s.ok()) return Fail(s);
  s = ApplyLimits(*target, want);
  if (!s.ok()) return Fail(s);
  auto now = ReadLimits(*target);
  if (!now.ok()) return Fail(now.status());
  std::cout << LimitsToJson(*now).dump() << "\n";
  return 0;
}
