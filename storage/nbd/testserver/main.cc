// strata-nbd-testserver: the NBD server over in-memory volumes, for interop tests
// with real NBD clients until the storage engine serves NBD in strata-stored.
// Thin main: parse flags, build the catalog, serve until SIGINT/SIGTERM.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "strata/common/file_util.h"
#include "strata/common/logging.h"
#include "strata/common/net_address.h"
#include "strata/common/process.h"
#include "strata/nbd/server.h"
#include "strata/nbd/testing/export_flag.h"
#include "strata/nbd/testing/mem_volume.h"
#include "strata/nbd/testing/static_export_catalog.h"

namespace po = boost::program_options;

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

struct Flags {
  std::vector<strata::nbd::ExportFlag> exports;
  std::vector<strata::HostPort> portals;
  std::string ready_file;
  std::string log_level;
  int threads = 16;
};

strata::Result<Flags> ParseFlags(int argc, char** argv, bool* help) {
  Flags f;
  std::vector<std::string> exports, portals;
  po::options_description desc(
      "strata-nbd-testserver: NBD server over in-memory volumes (for tests)\n\n"
      "Usage: strata-nbd-testserver --export NAME=SIZE[:ro][:bs=N][:allow=IP,...]... "
      "--portal HOST:PORT... [--ready-file PATH]\n\nOptions");
  desc.add_options()("help,h", "show this help")(
      "export", po::value(&exports)->required(),
      "an in-memory export: NAME=SIZE[:ro][:bs=BLOCK][:allow=IP,IP...]; repeatable")(
      "portal", po::value(&portals)->required(),
      "listen on HOST:PORT (port 0: any free port); repeatable")(
      "ready-file", po::value(&f.ready_file),
      "once serving, write {\"portals\":[\"HOST:PORT\",...]} here")(
      "threads-per-connection", po::value(&f.threads)->default_value(16),
      "most threads serving one connection (its parallel requests)")(
      "log-level", po::value(&f.log_level)->default_value("info"),
      "trace|debug|info|warn|error|critical|off");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
    if (vm.count("help")) {
      std::cout << desc << "\n";
      *help = true;
      return f;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    return strata::InvalidArgumentError(std::string(e.what()) + " (see --help)");
  }
  for (const std::string& e : exports) {
    STRATA_ASSIGN_OR_RETURN(auto ex, strata::nbd::ParseExportFlag(e));
    f.exports.push_back(std::move(ex));
  }
  for (const std::string& p : portals) {
    STRATA_ASSIGN_OR_RETURN(auto hp, strata::ParseHostPort(p, "--portal", true));
    f.portals.push_back(std::move(hp));
  }
  if (f.threads < 1) {
    return strata::InvalidArgumentError("--threads-per-connection: must be at least 1");
  }
  return f;
}

std::string ReadyJson(const std::vector<strata::HostPort>& portals) {
  std::string out = "{\"portals\":[";
  for (size_t i = 0; i < portals.size(); ++i) {
    if (i > 0) out += ",";
    out += "\"" + portals[i].ToString() + "\"";
  }
  return out + "]}\n";
}

int Run(int argc, char** argv) {
  bool help = false;
  auto flags = ParseFlags(argc, argv, &help);
  if (!flags.ok()) {
    std::fprintf(stderr, "strata-nbd-testserver: %s\n", flags.status().message().c_str());
    return kExitUsage;
  }
  if (help) return 0;
  if (auto s = strata::InitLogging(flags->log_level, "text"); !s.ok()) {
    std::fprintf(stderr, "strata-nbd-testserver: %s\n", s.message().c_str());
    return kExitUsage;
  }

  strata::IgnoreSigpipe();
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  strata::nbd::StaticExportCatalog catalog;
  for (const auto& e : flags->exports) {
    catalog.Add(e.name,
                std::make_shared<strata::nbd::MemVolume>(e.size_bytes, e.block_size, e.read_only),
                e.allowed, "in-memory test export");
  }
  strata::nbd::NbdServer::Options options;
  options.threads_per_connection = flags->threads;
  auto server = strata::nbd::NbdServer::Start(&catalog, flags->portals, options);
  if (!server.ok()) {
    spdlog::critical("cannot serve: {}", server.status().ToString());
    return kExitFailure;
  }
  if (!flags->ready_file.empty()) {
    auto s = strata::WriteFileAtomically(flags->ready_file, ReadyJson((*server)->bound_portals()));
    if (!s.ok()) {
      spdlog::critical("--ready-file: {}", s.ToString());
      return kExitFailure;
    }
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("signal {}: stopping", sig);
  (*server)->Stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
