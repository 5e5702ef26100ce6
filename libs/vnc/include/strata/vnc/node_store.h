#pragma once

// The node-local store of VirtualNetworkConfig (issue #12): strata-netd replicates every
// VirtualNetworkConfig of the cluster into it, so the strata-vnc CNI plugin reads a workload's
// interface configuration from a local file and never waits on the apiserver (ADD works while the
// apiserver is unreachable, as long as the agent replicated the object before).
//
// Layout under the root directory (default /var/lib/strata-netd/vnc: strata-netd's --state-dir
// + "/vnc", a host path, so the CNI binary, run by the container runtime on the host, reads it):
//   configs/<kind>_<namespace>_<name>.json   one WorkloadConfig per workload key (kind lower
//                                            case; namespaces are DNS labels and names DNS
//                                            subdomains, neither has '_': unambiguous)
//   pods/<namespace>_<pod>.json              the agent's pod -> workload resolution (PodEntry)
//   applied/<containerID>_<ifname>.json      what the CNI applied, removed at DEL (AppliedRecord)
//   .lock                                    flock(2) held by writers of configs/
// Every file is written atomically (temp + fsync + rename + fsync of the directory,
// WriteFileAtomically), so a reader sees the old record or the new one, never a mix, and a crash
// leaves one of them. Readers take no lock.
//
// Thread-safety: methods are thread-safe and safe across processes (configs/ writes are
// serialized by the flock; pods/ has one writer, the agent; applied/ one writer per attachment).

#include <optional>
#include <string>
#include <vector>

#include "strata/common/result.h"
#include "strata/vnc/workload_config.h"

namespace strata::vnc {

inline constexpr char kDefaultStoreDir[] = "/var/lib/strata-netd/vnc";

// The agent's resolution of one pod on its node: which workload key it is (labels read from the
// Pod object: vm.kubevirt.io/name or kubevirt.io/domain for a virt-launcher pod,
// strata.io/workload for a pod workload, else the pod's own name).
struct PodEntry {
  std::string namespace_;
  std::string name;
  std::string uid;
  WorkloadKey workload;
  friend bool operator==(const PodEntry&, const PodEntry&) = default;
};

// One attachment the CNI configured from a record.
struct AppliedRecord {
  std::string container_id;
  std::string ifname;  // CNI_IFNAME
  std::string pod_namespace;
  std::string pod_name;
  std::string pod_uid;
  WorkloadKey workload;
  SourceObject source;     // the VirtualNetworkConfig the record came from
  std::string interface;   // the configuration's interface name
  std::string mac;         // as applied
  std::string applied_at;  // RFC 3339, UTC
  friend bool operator==(const AppliedRecord&, const AppliedRecord&) = default;
};

enum class PutOutcome { kWritten, kUnchanged, kStale };

class NodeStore {
 public:
  explicit NodeStore(std::string root);

  const std::string& root() const { return root_; }

  // Creates the directories. Writers call it once; readers do not need it.
  Status Init() const;

  // Writes `config` unless the stored record for its workload is newer (kStale) or the same
  // version with the same content (kUnchanged). IsNewer() decides.
  Result<PutOutcome> Put(const WorkloadConfig& config) const;
  // NOT_FOUND when there is none; DATA_LOSS when the file does not decode (naming the field).
  Result<WorkloadConfig> Get(const WorkloadKey& key) const;
  // Removes the record of `key`; with `only_uid` set, only when it came from that object (a
  // deletion of an old object never removes its successor's record). OK when absent.
  Status Remove(const WorkloadKey& key, const std::string& only_uid = "") const;
  // Every record; files that do not decode are skipped and their paths added to *corrupt.
  std::vector<WorkloadConfig> List(std::vector<std::string>* corrupt = nullptr) const;

  Status PutPod(const PodEntry& entry) const;
  Result<PodEntry> GetPod(const std::string& ns, const std::string& name) const;
  Status RemovePod(const std::string& ns, const std::string& name) const;
  std::vector<PodEntry> ListPods() const;

  // `record.container_id` and `record.ifname` may hold only [A-Za-z0-9._-] (INVALID_ARGUMENT).
  Status PutApplied(const AppliedRecord& record) const;
  Result<AppliedRecord> GetApplied(const std::string& container_id,
                                   const std::string& ifname) const;
  Status RemoveApplied(const std::string& container_id, const std::string& ifname) const;
  std::vector<AppliedRecord> ListApplied() const;

  // The file that holds `key`'s record (tests and debugging).
  std::string ConfigPath(const WorkloadKey& key) const;

 private:
  std::string root_;
};

}  // namespace strata::vnc
