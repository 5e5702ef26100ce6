// strata-nbd-adversary: hostile and broken NBD clients against a live server (see
// scenarios.h). Thin main: parse flags, run one scenario.
//
//   strata-nbd-adversary SCENARIO --portal HOST:PORT --export NAME [--source IP]
//                        [--count N] [--depth N] [--hold-seconds S] [--ops N]
//   SCENARIO: bad-requests | after-disconnect | mid-write | idle | slow-readers | probe
//
// Exit codes: 0 the server behaved, 1 it did not (the reason on stderr), 2 bad flags.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "scenarios.h"

namespace {

constexpr int kExitMisbehaved = 1;
constexpr int kExitUsage = 2;

int Usage(const std::string& why) {
  std::fprintf(stderr,
               "strata-nbd-adversary: %s\nusage: strata-nbd-adversary "
               "bad-requests|after-disconnect|mid-write|idle|slow-readers|probe --portal "
               "HOST:PORT --export NAME [--source IP] [--count N] [--depth N] "
               "[--hold-seconds S] [--ops N]\n",
               why.c_str());
  return kExitUsage;
}

bool ParseInt(const std::string& text, int* out) {
  char* end = nullptr;
  long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v < 0 || v > 1'000'000) return false;
  *out = static_cast<int>(v);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  namespace adv = strata::nbd::adversary;
  if (argc < 2) return Usage("no scenario");
  std::string scenario = argv[1];
  adv::Target t;
  std::string portal;
  int count = 1, depth = 16, hold = 5, ops = 1000;
  for (int i = 2; i < argc; i += 2) {
    std::string flag = argv[i];
    if (i + 1 >= argc) return Usage(flag + ": missing value");
    std::string v = argv[i + 1];
    bool ok = true;
    if (flag == "--portal") {
      portal = v;
    } else if (flag == "--export") {
      t.export_name = v;
    } else if (flag == "--source") {
      t.source = v;
    } else if (flag == "--count") {
      ok = ParseInt(v, &count);
    } else if (flag == "--depth") {
      ok = ParseInt(v, &depth);
    } else if (flag == "--hold-seconds") {
      ok = ParseInt(v, &hold);
    } else if (flag == "--ops") {
      ok = ParseInt(v, &ops);
    } else {
      return Usage("unknown flag " + flag);
    }
    if (!ok) return Usage(flag + ": '" + v + "' is not an integer in [0, 1000000]");
  }
  auto hp = strata::ParseHostPort(portal, "--portal", false);
  if (!hp.ok()) return Usage(hp.status().message());
  t.portal = *hp;

  strata::Status st;
  if (scenario == "bad-requests") {
    st = adv::BadRequests(t);
  } else if (scenario == "after-disconnect") {
    st = adv::RequestsAfterDisconnect(t);
  } else if (scenario == "mid-write") {
    st = adv::DisconnectMidWrite(t, count);
  } else if (scenario == "idle") {
    st = adv::RaiseFileLimit();
    if (st.ok()) st = adv::IdleConnections(t, count, hold);
  } else if (scenario == "slow-readers") {
    st = adv::RaiseFileLimit();
    if (st.ok()) st = adv::SlowReaders(t, count, depth, hold);
  } else if (scenario == "probe") {
    st = adv::Probe(t, ops);
  } else {
    return Usage("unknown scenario '" + scenario + "'");
  }
  if (!st.ok()) {
    std::fprintf(stderr, "strata-nbd-adversary: %s: %s\n", scenario.c_str(), st.ToString().c_str());
    return kExitMisbehaved;
  }
  return 0;
}
