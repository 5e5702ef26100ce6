#pragma once

// Which devices of an extended resource the kubelet allocated to a pod, for strata-sriov given a
// `resourceName` and no deviceID (no Multus in front of it to pass runtimeConfig.deviceID).
//
// The kubelet tells through its PodResources API (gRPC, v1 List on
// /var/lib/kubelet/pod-resources/kubelet.sock). gRPC is not linked into strata-cni: every CNI
// call of every strata plugin would pay for loading it. The lookup runs a small helper instead,
// strata-podresources, installed beside the plugins and found in CNI_PATH like an IPAM plugin.

#include <memory>
#include <string>
#include <vector>

#include "strata/cni/netconf.h"
#include "strata/common/result.h"

namespace strata::cni {

inline constexpr char kDefaultPodResourcesSocket[] = "/var/lib/kubelet/pod-resources/kubelet.sock";
inline constexpr char kPodResourcesHelper[] = "strata-podresources";

class PodDeviceLookup {
 public:
  virtual ~PodDeviceLookup() = default;
  // Device IDs of `resource` allocated to any container of pod `ns`/`pod`, in the kubelet's order.
  // Errors keep the helper's code: NOT_FOUND (the pod holds no such device), UNAVAILABLE (the
  // kubelet's socket does not answer), NOT_FOUND naming CNI_PATH (no helper).
  virtual Result<std::vector<std::string>> DeviceIds(const CniArgs& args, const std::string& socket,
                                                     const std::string& ns, const std::string& pod,
                                                     const std::string& resource) = 0;
};

// Runs strata-podresources from CNI_PATH: `--socket S --namespace NS --pod P --resource R`; it
// prints {"deviceIDs":[...]} or, failing, {"code":<gRPC code>,"msg":"..."} and exits non-zero.
std::unique_ptr<PodDeviceLookup> NewExecPodDeviceLookup();

// K8S_POD_NAMESPACE and K8S_POD_NAME from CNI_ARGS ("K=V;K=V"); empty when absent.
std::pair<std::string, std::string> PodFromCniArgs(const std::string& cni_args);

}  // namespace strata::cni
