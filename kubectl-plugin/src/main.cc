// kubectl-strata: the `kubectl strata` plugin (kubectl runs kubectl-strata found on PATH).
// Parses nothing itself: Run() dispatches to one file per command group.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "strata/common/process.h"
#include "strata/device/channel.h"
#include "strata/kube/http_client.h"
#include "strata/kubectl/cli.h"

int main(int argc, char** argv) {
  strata::IgnoreSigpipe();
  // Log lines (the device channel's, the Kubernetes client's) go to stderr, never into the
  // command's output.
  spdlog::set_default_logger(spdlog::stderr_color_st("kubectl-strata"));
  std::vector<std::string> args(argv + 1, argv + argc);
  strata::Env* env = strata::Env::Default();
  const bool interactive = isatty(STDOUT_FILENO) != 0;
  const int rc = strata::kubectl::Run(
      args, std::cout, std::cerr, env, [](const char* n) { return std::getenv(n); },
      [env](const strata::kube::ClientConfig& config) {
        return strata::kube::NewHttpApiClient(config, env);
      },
      // `volumes` asks the devices where each LUN lives now; a device that does not answer
      // within this shows "?" rather than holding up the listing.
      [](const strata::device::ClientTls& tls) {
        strata::device::SetClientTls(tls);  // once: the context makes one locator
        return strata::kubectl::NewGrpcLunLocator(std::chrono::seconds(2));
      },
      interactive);
  // A short-lived CLI: flush and leave without running static destructors. cpprestsdk's and
  // gRPC's pool threads may still be running at exit, and tearing their statics down under them
  // corrupted the heap once in CI ("malloc_consolidate(): unaligned fastbin chunk detected",
  // with the buffered -o json output lost).
  std::cout.flush();
  std::cerr.flush();
  std::_Exit(rc);
}
