#pragma once

// The node's CNI install step: strata-netd copies the CNI plugin binaries out of its image into
// the host's CNI bin dir and keeps the network config list in the host's CNI conf dir, so the
// chart needs nothing else on the node (what Calico's and Cilium's install containers do, kept
// running here so a removed or edited file comes back).
//
// Every write is atomic (temp file beside the target, fsync, rename): a container runtime that
// execs a plugin or reads the conf dir meanwhile sees the old file or the new one, never a torn
// one, and a running plugin keeps its (now unlinked) inode. A file is rewritten only when its
// content (or a link's target) differs, so a steady node sees no writes.
//
// Thread-safety: Sync() and Run() from one thread at a time; last_status() from any thread.

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <chrono>
#include <mutex>
#include <stop_token>
#include <string>
#include <vector>

#include "strata/common/result.h"

namespace strata::netd {

class CniInstaller {
 public:
  struct Options {
    // Where the image keeps the plugins (the Dockerfile's /opt/strata/cni).
    std::string source_dir;
    // Names to install from source_dir. A regular file is copied (mode 0755); a symbolic link
    // to a name in the same directory (the plugin names of the multi-call strata-cni) is
    // installed as the same link.
    std::vector<std::string> names;
    std::string bin_dir;   // the host's CNI bin dir (e.g. /opt/cni/bin)
    std::string conf_dir;  // the host's CNI conf dir (e.g. /etc/cni/net.d)
    std::string conf_name = "10-strata.conflist";
    // The network config list to keep in conf_dir/conf_name; empty: none is written.
    std::string conf_contents;
    // Between full checks; inotify on both dirs brings a removed or changed file back sooner.
    std::chrono::milliseconds period{std::chrono::seconds(30)};
    // Optional: strata_netd_cni_install_ok (1 after a good pass) and
    // strata_netd_cni_install_writes_total (files rewritten: a steady node stays flat).
    prometheus::Registry* registry = nullptr;
  };

  struct Report {
    std::vector<std::string> written;  // paths (re)written by this Sync
  };

  explicit CniInstaller(Options options);

  // INVALID_ARGUMENT naming the field when the options cannot work (a name with '/', a conf
  // that is not a JSON object with "cniVersion", "name" and "plugins").
  Status Validate() const;
  // One pass: installs what is missing or different. Idempotent; on error, what was already
  // correct stays, and the next pass retries.
  Result<Report> Sync();
  // Sync() now, then on every inotify event in bin_dir/conf_dir and every `period`, until
  // `stop`. Failures are logged and retried.
  void Run(std::stop_token stop);

  // OK once a Sync succeeded and none failed since (readiness).
  Status last_status() const;

 private:
  Status InstallName(const std::string& name, Report* report);
  Status InstallConf(Report* report);
  void Record(const Status& s);

  const Options options_;
  prometheus::Gauge* ok_gauge_ = nullptr;
  prometheus::Counter* writes_ = nullptr;
  mutable std::mutex mu_;
  Status last_status_ = UnavailableError("CNI install: not run yet");  // guarded by mu_
};

}  // namespace strata::netd
