#pragma once

// Pod attachment records: how strata-netd finds a pod's interfaces without asking the container
// runtime. The CNI plugins (strata-bandwidth; strata-sriov/-bond may too) write one record per
// (container id, ifname) at ADD, in a node-local dir, and remove it at DEL; the agent reads them.
//
// File: DIR/<containerId>_<ifname>.json, written atomically (temp + fsync + rename), e.g.
//   {"version":1,"containerId":"abc","ifname":"eth0","netns":"/var/run/netns/cni-1",
//    "podNamespace":"default","podName":"web-0","podUid":"7c1..","podInfraContainerId":"abc",
//    "hostInterface":"veth1a2b3c","plugin":"strata-bandwidth"}
// Pod fields come from CNI_ARGS (K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_UID,
// K8S_POD_INFRA_CONTAINER_ID) and are empty when the runtime passed none; hostInterface is the
// host-side veth peer ("" when there is none).
//
// Thread-safety: free functions, safe from any thread; a reader may see a record appear or
// disappear between listing and reading (ListAttachments skips it).

#include <map>
#include <string>
#include <vector>

#include "strata/common/result.h"

namespace strata::net {

inline constexpr char kDefaultAttachmentsDir[] = "/var/lib/cni/strata/attachments";
// Overrides the default for the CNI plugins (a conf field "attachmentsDir" wins over it).
inline constexpr char kAttachmentsDirEnv[] = "STRATA_CNI_ATTACHMENTS_DIR";

struct Attachment {
  std::string container_id;
  std::string ifname;
  std::string netns;
  std::string pod_namespace;
  std::string pod_name;
  std::string pod_uid;
  std::string pod_infra_container_id;
  std::string host_interface;
  std::string plugin;
  friend bool operator==(const Attachment&, const Attachment&) = default;
};

// "K=V;K=V" (CNI_ARGS) into a map; malformed items are skipped.
std::map<std::string, std::string> ParseCniArgs(const std::string& args);
// Fills the pod fields of `a` from CNI_ARGS.
void SetPodFromCniArgs(const std::string& cni_args, Attachment* a);

std::string AttachmentFileName(const std::string& container_id, const std::string& ifname);
std::string AttachmentToJson(const Attachment& a);
// INVALID_ARGUMENT naming the field when a required one (containerId, ifname, netns) is missing.
Result<Attachment> AttachmentFromJson(const std::string& text);

// Creates `dir` when missing. Replaces an existing record of the same (container id, ifname).
Status WriteAttachment(const std::string& dir, const Attachment& a);
// Idempotent: a missing record (or dir) is OK.
Status RemoveAttachment(const std::string& dir, const std::string& container_id,
                        const std::string& ifname);
// Every readable record in `dir` (a missing dir is an empty list); unreadable or foreign files
// are skipped.
Result<std::vector<Attachment>> ListAttachments(const std::string& dir);

}  // namespace strata::net
