// strata-bench-operator: how long a StorageDevice change takes to show up in its status, beside
// the floor of one watch round trip on the same apiserver, and the operator's resident memory.
//
//   strata-bench-operator --kubeconfig PATH --device NAME [--changes N] [--interval-ms MS]
//                         [--operator-pid PID]
//
// Changes are paced (--interval-ms, default 200) so that what is measured is the latency of one
// change, not the operator's client-side QPS limit (20/s by default: back-to-back changes queue
// behind it at 50 ms each).
// The StorageDevice NAME must exist and be reconciled by a running strata-operator. Each change
// is a spec edit (tier capacity, so metadata.generation moves); it is "reflected" when a watch
// event shows status.observedGeneration at the new generation. The floor: a metadata-only patch
// of the same object, timed to the watch event carrying it (the operator ignores such edits).
#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "strata/common/env.h"
#include "strata/kube/client.h"
#include "strata/kube/config.h"
#include "strata/kube/http_client.h"
#include "strata/kube/store.h"

using namespace strata;
using Clock = std::chrono::steady_clock;

namespace {

struct Watcher {
  std::mutex mu;
  std::condition_variable cv;
  kube::Json last;
  uint64_t seq = 0;

  // Waits until pred(last object) holds.
  template <typename Pred>
  bool WaitFor(Pred pred, std::chrono::seconds timeout) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [&] { return !last.is_null() && pred(last); });
  }
};

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

std::string ProcStatus(int pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      auto pos = line.find_first_not_of(" \t", field.size() + 1);
      return line.substr(pos);
    }
  }
  return "?";
}

void Report(const char* what, const std::vector<double>& ms) {
  std::printf("%-44s n=%zu  p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms\n", what, ms.size(),
              Percentile(ms, 50), Percentile(ms, 99), *std::max_element(ms.begin(), ms.end()));
}

}  // namespace

int main(int argc, char** argv) {
  std::string kubeconfig, device;
  int changes = 100, operator_pid = 0, interval_ms = 200;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--kubeconfig")
      kubeconfig = argv[i + 1];
    else if (a == "--device")
      device = argv[i + 1];
    else if (a == "--changes")
      changes = std::stoi(argv[i + 1]);
    else if (a == "--operator-pid")
      operator_pid = std::stoi(argv[i + 1]);
    else if (a == "--interval-ms")
      interval_ms = std::stoi(argv[i + 1]);
  }
  if (kubeconfig.empty() || device.empty() || changes < 2) {
    std::fprintf(stderr,
                 "usage: %s --kubeconfig PATH --device NAME [--changes N] [--interval-ms MS] "
                 "[--operator-pid PID]\n",
                 argv[0]);
    return 2;
  }
  auto config = kube::LoadKubeconfig(Env::Default(), kubeconfig);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.status().ToString().c_str());
    return 1;
  }
  config->qps = 1000;
  config->burst = 1000;
  auto client = kube::NewHttpApiClient(*config, Env::Default());
  if (!client.ok()) return 1;
  kube::ApiClient& api = **client;
  const kube::Resource sd = kube::resources::StorageDevices();

  auto current = api.Get(sd, "", device);
  if (!current.ok()) {
    std::fprintf(stderr, "%s\n", current.status().ToString().c_str());
    return 1;
  }
  Watcher w;
  std::jthread watch([&](std::stop_token stop) {
    kube::WatchOptions o;
    o.resource_version = kube::ResourceVersionOf(*current);
    o.field_selector = "metadata.name=" + device;
    while (!stop.stop_requested()) {
      Status st = api.Watch(
          sd, "", o,
          [&](kube::WatchEvent&& ev) {
            if (ev.type == kube::WatchEventType::kBookmark) return true;
            o.resource_version = kube::ResourceVersionOf(ev.object);
            std::lock_guard g(w.mu);
            w.last = std::move(ev.object);
            w.seq++;
            w.cv.notify_all();
            return true;
          },
          stop);
      (void)st;
    }
  });
  {
    std::lock_guard g(w.mu);
    w.last = *current;
  }
  // Let the watch connect before timing anything.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));

  // Floor: a metadata-only change and its watch event.
  std::vector<double> floor_ms;
  for (int i = 0; i < changes; ++i) {
    const std::string mark =
        std::to_string(i) + "-" + std::to_string(Clock::now().time_since_epoch().count());
    const auto t0 = Clock::now();
    auto r = api.Patch(sd, "", device, kube::PatchType::kMerge,
                       {{"metadata", {{"annotations", {{"bench.strata.io/mark", mark}}}}}}, false);
    if (!r.ok()) {
      std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
      return 1;
    }
    if (!w.WaitFor(
            [&](const kube::Json& o) {
              return o["metadata"].contains("annotations") &&
                     o["metadata"]["annotations"].value("bench.strata.io/mark", "") == mark;
            },
            std::chrono::seconds(10))) {
      std::fprintf(stderr, "watch event %d never arrived\n", i);
      return 1;
    }
    floor_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
  }

  // Spec changes until the status shows them.
  std::vector<double> status_ms;
  for (int i = 0; i < changes; ++i) {
    const int64_t capacity = (int64_t{1} << 30) + 4096 * (i + 1) +
                             (Clock::now().time_since_epoch().count() % 1000) * 4096 * 1000;
    const auto t0 = Clock::now();
    auto r = api.Patch(
        sd, "", device, kube::PatchType::kJson,
        kube::Json::array(
            {{{"op", "replace"}, {"path", "/spec/tiers/0/capacityBytes"}, {"value", capacity}}}),
        false);
    if (!r.ok()) {
      std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
      return 1;
    }
    const int64_t gen = (*r)["metadata"].value("generation", int64_t{0});
    if (!w.WaitFor(
            [&](const kube::Json& o) {
              return o.contains("status") &&
                     o["status"].value("observedGeneration", int64_t{0}) >= gen;
            },
            std::chrono::seconds(30))) {
      std::fprintf(stderr, "status never reached generation %lld\n", static_cast<long long>(gen));
      return 1;
    }
    status_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
  }
  watch.request_stop();

  Report("watch round trip (patch -> watch event)", floor_ms);
  Report("StorageDevice spec change -> status update", status_ms);
  if (operator_pid > 0) {
    std::printf("strata-operator resident memory: VmRSS %s, VmHWM (peak) %s\n",
                ProcStatus(operator_pid, "VmRSS").c_str(),
                ProcStatus(operator_pid, "VmHWM").c_str());
  }
  std::fflush(stdout);
  std::_Exit(0);  // the watch thread may be blocked in a read; nothing left to clean up
}
