#include "strata/vnc/resolve.h"

#include <cctype>
#include <thread>

namespace strata::vnc {
namespace {

constexpr std::string_view kLauncherPrefix = "virt-launcher-";
// generateName's random suffix (k8s.io/apiserver names.SimpleNameGenerator): 5 characters.
constexpr size_t kRandomSuffix = 5;

// The record of `key`: a config, or nullopt when there is none. A corrupt one is an error.
Result<std::optional<WorkloadConfig>> Lookup(const NodeStore& store, const WorkloadKey& key) {
  if (!ValidateWorkloadKey(key, "workload").ok()) return std::optional<WorkloadConfig>();
  auto config = store.Get(key);
  if (config.ok()) return std::optional<WorkloadConfig>(std::move(*config));
  if (config.status().code() == StatusCode::kNotFound) return std::optional<WorkloadConfig>();
  return config.status();
}

// The agent's entry for the pod, when it is about this very pod (uid).
std::optional<PodEntry> PodIndex(const NodeStore& store, const ResolveRequest& r) {
  auto entry = store.GetPod(r.pod_namespace, r.pod_name);
  if (!entry.ok()) return std::nullopt;
  if (!r.pod_uid.empty() && !entry->uid.empty() && entry->uid != r.pod_uid) return std::nullopt;
  return *entry;
}

}  // namespace

WorkloadKey WorkloadOfPod(const std::string& ns, const std::string& pod_name,
                          const std::map<std::string, std::string>& labels) {
  for (const char* label : {kLabelVmName, kLabelDomain}) {
    auto it = labels.find(label);
    if (it != labels.end() && !it->second.empty()) {
      return {ns, std::string(kKindVirtualMachine), it->second};
    }
  }
  auto it = labels.find(kLabelWorkload);
  if (it != labels.end() && !it->second.empty()) return {ns, std::string(kKindPod), it->second};
  return {ns, std::string(kKindPod), pod_name};
}

std::optional<std::string> VmFromLauncherPodName(std::string_view pod_name) {
  if (pod_name.substr(0, kLauncherPrefix.size()) != kLauncherPrefix) return std::nullopt;
  std::string_view rest = pod_name.substr(kLauncherPrefix.size());
  if (rest.size() < kRandomSuffix + 2 || rest[rest.size() - kRandomSuffix - 1] != '-') {
    return std::nullopt;
  }
  for (char c : rest.substr(rest.size() - kRandomSuffix)) {
    if (!std::islower(static_cast<unsigned char>(c)) &&
        !std::isdigit(static_cast<unsigned char>(c)))
      return std::nullopt;
  }
  return std::string(rest.substr(0, rest.size() - kRandomSuffix - 1));
}

std::string_view ResolutionName(Resolution r) {
  switch (r) {
    case Resolution::kExplicit:
      return "explicit";
    case Resolution::kPodIndex:
      return "podIndex";
    case Resolution::kLauncherName:
      return "launcherPodName";
    case Resolution::kPodName:
      return "podName";
    case Resolution::kNone:
      break;
  }
  return "none";
}

Result<Resolved> ResolveForPod(const NodeStore& store, const ResolveRequest& r) {
  Resolved out;
  if (r.explicit_key) {
    out.key = *r.explicit_key;
    STRATA_RETURN_IF_ERROR(ValidateWorkloadKey(out.key, "workload"));
    STRATA_ASSIGN_OR_RETURN(out.config, Lookup(store, out.key));
    if (!out.config) {
      return NotFoundError("workload " + out.key.ToString() +
                           ": no VirtualNetworkConfig for it in the node-local store " +
                           store.root());
    }
    out.how = Resolution::kExplicit;
    return out;
  }
  auto from_index = [&](const PodEntry& entry) -> Result<Resolved> {
    Resolved res;
    res.key = entry.workload;
    STRATA_ASSIGN_OR_RETURN(res.config, Lookup(store, res.key));
    res.how = res.config ? Resolution::kPodIndex : Resolution::kNone;
    return res;
  };
  if (auto entry = PodIndex(store, r)) return from_index(*entry);

  if (auto vm = VmFromLauncherPodName(r.pod_name)) {
    out.key = {r.pod_namespace, std::string(kKindVirtualMachine), *vm};
    STRATA_ASSIGN_OR_RETURN(out.config, Lookup(store, out.key));
    if (out.config) {
      out.how = Resolution::kLauncherName;
      return out;
    }
  }
  out.key = {r.pod_namespace, std::string(kKindPod), r.pod_name};
  STRATA_ASSIGN_OR_RETURN(out.config, Lookup(store, out.key));
  if (out.config) {
    out.how = Resolution::kPodName;
    return out;
  }

  // Polled: the agent writes the entry with one rename, and a CNI process has no event loop to
  // wait on; 20 ms steps keep the cost of a pod without configuration small.
  auto deadline = std::chrono::steady_clock::now() + r.pod_index_wait;
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (auto entry = PodIndex(store, r)) return from_index(*entry);
  }
  out.how = Resolution::kNone;
  return out;
}

}  // namespace strata::vnc
