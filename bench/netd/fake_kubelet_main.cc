// strata-bench-fake-kubelet: the test kubelet (tests/netd/fake_kubelet.h) as a process, serving
// PodResources List with allocations given on the command line, for benchmarks of strata-sriov's
// resourceName lookup.
//   strata-bench-fake-kubelet DEVICE_PLUGIN_DIR POD_RESOURCES_SOCKET READY_FILE
//       NS/POD/RESOURCE=ID[,ID...]...
// Writes READY_FILE once serving; runs until SIGTERM/SIGINT.
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "fake_kubelet.h"
#include "strata/common/process.h"

int main(int argc, char** argv) {
  strata::IgnoreSigpipe();
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s DP_DIR PODRES_SOCKET READY_FILE NS/POD/RESOURCE=IDS...\n",
                 argv[0]);
    return 2;
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  strata::testing::FakeKubelet kubelet(argv[1], argv[2]);
  if (auto st = kubelet.Start(); !st.ok()) {
    std::fprintf(stderr, "%s\n", st.ToString().c_str());
    return 1;
  }
  for (int i = 4; i < argc; ++i) {
    std::string a = argv[i];
    size_t s1 = a.find('/'), s2 = a.find('/', s1 + 1), eq = a.rfind('=');
    if (s1 == std::string::npos || s2 == std::string::npos || eq == std::string::npos) {
      std::fprintf(stderr, "'%s' is not NS/POD/RESOURCE=IDS\n", a.c_str());
      return 2;
    }
    std::vector<std::string> ids;
    for (size_t p = eq + 1; p <= a.size();) {
      size_t c = a.find(',', p);
      if (c == std::string::npos) c = a.size();
      ids.push_back(a.substr(p, c - p));
      p = c + 1;
    }
    kubelet.RecordAllocation(a.substr(s2 + 1, eq - s2 - 1), a.substr(0, s1),
                             a.substr(s1 + 1, s2 - s1 - 1), "ctr", ids);
  }
  std::ofstream(argv[3]) << "ready\n";
  int sig = 0;
  sigwait(&signals, &sig);
  kubelet.Stop();
  return 0;
}
