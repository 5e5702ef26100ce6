#pragma once

// Which workload a pod is, from the agent's side (the Pod object's labels) and from the CNI's
// side (what CNI_ARGS and the store tell it: the CNI gets no labels).
//
// KubeVirt's virt-launcher pods carry `vm.kubevirt.io/name` and `kubevirt.io/domain` (both the
// VMI's name, which is the VM's name for a VM-owned VMI) and are named by generateName
// "virt-launcher-<vmi>-" + 5 random characters.

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "strata/common/result.h"
#include "strata/vnc/node_store.h"
#include "strata/vnc/workload_config.h"

namespace strata::vnc {

inline constexpr char kLabelVmName[] = "vm.kubevirt.io/name";
inline constexpr char kLabelDomain[] = "kubevirt.io/domain";
inline constexpr char kLabelWorkload[] = "strata.io/workload";

// The agent's rule, from the pod's labels: vm.kubevirt.io/name, then kubevirt.io/domain ->
// VirtualMachine; strata.io/workload -> Pod of that name; else Pod named as the pod itself.
WorkloadKey WorkloadOfPod(const std::string& ns, const std::string& pod_name,
                          const std::map<std::string, std::string>& labels);

// The VM name a virt-launcher pod name implies ("virt-launcher-db-vm-x7k2p" -> "db-vm"), or
// nullopt when the name does not have that shape.
std::optional<std::string> VmFromLauncherPodName(std::string_view pod_name);

// How the CNI found the workload (reported in its result and logs).
enum class Resolution { kExplicit, kPodIndex, kLauncherName, kPodName, kNone };
std::string_view ResolutionName(Resolution r);

struct Resolved {
  Resolution how = Resolution::kNone;
  std::optional<WorkloadConfig> config;  // unset with kNone: the pod has no configuration
  WorkloadKey key;                       // the key looked up last
};

struct ResolveRequest {
  std::string pod_namespace;  // K8S_POD_NAMESPACE
  std::string pod_name;       // K8S_POD_NAME
  std::string pod_uid;        // K8S_POD_UID (may be empty)
  // A key given explicitly (the network config's `workload`): wins over everything.
  std::optional<WorkloadKey> explicit_key;
  // How long to wait for the agent's pod entry when no other rule finds a configuration: the
  // Pod object exists before the runtime calls ADD, so the agent's watch normally has it
  // already; this covers an agent a little behind. 0: do not wait.
  std::chrono::milliseconds pod_index_wait{0};
};

// The CNI's rule, each step only from local files:
//   1. explicit_key -> its record (NOT_FOUND when there is none: a key given by hand that does
//      not exist is an error, not "no configuration");
//   2. the agent's pod entry (pods/), when its uid matches K8S_POD_UID (or either is empty);
//   3. a virt-launcher pod name -> VirtualMachine <vm>;
//   4. Pod <pod name>;
//   5. wait up to pod_index_wait for the agent's pod entry, then step 2 again;
//   6. none.
// A corrupt record is DATA_LOSS (never silently "no configuration").
Result<Resolved> ResolveForPod(const NodeStore& store, const ResolveRequest& request);

}  // namespace strata::vnc
