#include "strata/net/attachment.h"

#include <dirent.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>
#include <sstream>

#include "strata/common/file_util.h"

namespace strata::net {

using nlohmann::json;

std::map<std::string, std::string> ParseCniArgs(const std::string& args) {
  std::map<std::string, std::string> out;
  std::stringstream in(args);
  for (std::string item; std::getline(in, item, ';');) {
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

void SetPodFromCniArgs(const std::string& cni_args, Attachment* a) {
  auto args = ParseCniArgs(cni_args);
  a->pod_namespace = args["K8S_POD_NAMESPACE"];
  a->pod_name = args["K8S_POD_NAME"];
  a->pod_uid = args["K8S_POD_UID"];
  a->pod_infra_container_id = args["K8S_POD_INFRA_CONTAINER_ID"];
}

std::string AttachmentFileName(const std::string& container_id, const std::string& ifname) {
  return container_id + "_" + ifname + ".json";
}

std::string AttachmentToJson(const Attachment& a) {
  json j = {{"version", 1},
            {"containerId", a.container_id},
            {"ifname", a.ifname},
            {"netns", a.netns},
            {"podNamespace", a.pod_namespace},
            {"podName", a.pod_name},
            {"podUid", a.pod_uid},
            {"podInfraContainerId", a.pod_infra_container_id},
            {"hostInterface", a.host_interface},
            {"plugin", a.plugin}};
  return j.dump();
}

Result<Attachment> AttachmentFromJson(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgumentError("attachment: not JSON");
  Attachment a;
  auto str = [&j](const char* field, std::string* out, bool required) -> Status {
    auto it = j.find(field);
    if (it == j.end() || !it->is_string() || it->get<std::string>().empty()) {
      if (required) return InvalidArgumentError(std::string("attachment: ") + field + ": missing");
      return Status::Ok();
    }
    *out = it->get<std::string>();
    return Status::Ok();
  };
  STRATA_RETURN_IF_ERROR(str("containerId", &a.container_id, true));
  STRATA_RETURN_IF_ERROR(str("ifname", &a.ifname, true));
  STRATA_RETURN_IF_ERROR(str("netns", &a.netns, true));
  STRATA_RETURN_IF_ERROR(str("podNamespace", &a.pod_namespace, false));
  STRATA_RETURN_IF_ERROR(str("podName", &a.pod_name, false));
  STRATA_RETURN_IF_ERROR(str("podUid", &a.pod_uid, false));
  STRATA_RETURN_IF_ERROR(str("podInfraContainerId", &a.pod_infra_container_id, false));
  STRATA_RETURN_IF_ERROR(str("hostInterface", &a.host_interface, false));
  STRATA_RETURN_IF_ERROR(str("plugin", &a.plugin, false));
  return a;
}

Status WriteAttachment(const std::string& dir, const Attachment& a) {
  if (a.container_id.empty() || a.container_id.find('/') != std::string::npos) {
    return InvalidArgumentError("attachment: containerId '" + a.container_id + "' is not a name");
  }
  if (a.ifname.empty() || a.ifname.find('/') != std::string::npos) {
    return InvalidArgumentError("attachment: ifname '" + a.ifname + "' is not a name");
  }
  STRATA_RETURN_IF_ERROR(CreateDirectories(dir));
  return WriteFileAtomically(dir + "/" + AttachmentFileName(a.container_id, a.ifname),
                             AttachmentToJson(a));
}

Status RemoveAttachment(const std::string& dir, const std::string& container_id,
                        const std::string& ifname) {
  const std::string path = dir + "/" + AttachmentFileName(container_id, ifname);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoError("unlink " + path, errno);
  return Status::Ok();
}

Result<std::vector<Attachment>> ListAttachments(const std::string& dir) {
  std::vector<Attachment> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return out;
    return ErrnoError("opendir " + dir, errno);
  }
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.empty() || name[0] == '.' || !name.ends_with(".json")) continue;
    auto text = ReadFileToString(dir + "/" + name);
    if (!text.ok()) continue;  // removed by a DEL meanwhile
    auto a = AttachmentFromJson(*text);
    if (a.ok()) out.push_back(std::move(*a));
  }
  ::closedir(d);
  return out;
}

}  // namespace strata::net
