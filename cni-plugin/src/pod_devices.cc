#include "strata/cni/pod_devices.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>

extern char** environ;

namespace strata::cni {
namespace {

using nlohmann::json;

Result<std::string> FindHelper(const std::string& cni_path) {
  size_t start = 0;
  while (start <= cni_path.size()) {
    size_t end = cni_path.find(':', start);
    if (end == std::string::npos) end = cni_path.size();
    std::string dir = cni_path.substr(start, end - start);
    if (!dir.empty()) {
      std::string candidate = dir + "/" + kPodResourcesHelper;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    start = end + 1;
  }
  return NotFoundError(std::string("resourceName: no executable '") + kPodResourcesHelper +
                       "' in CNI_PATH (" + cni_path + ") to ask the kubelet's PodResources API");
}

class ExecPodDeviceLookup final : public PodDeviceLookup {
 public:
  Result<std::vector<std::string>> DeviceIds(const CniArgs& args, const std::string& socket,
                                             const std::string& ns, const std::string& pod,
                                             const std::string& resource) override {
    STRATA_ASSIGN_OR_RETURN(std::string path, FindHelper(args.path));
    std::vector<std::string> argv_s = {path,    "--socket", socket,       "--namespace", ns,
                                       "--pod", pod,        "--resource", resource};
    std::vector<char*> argv;
    for (auto& s : argv_s) argv.push_back(s.data());
    argv.push_back(nullptr);
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoError("pipe", errno);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    pid_t pid = -1;
    int rc = ::posix_spawn(&pid, path.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[1]);
    if (rc != 0) {
      ::close(fds[0]);
      return ErrnoError("run " + path, rc);
    }
    std::string out;
    char buf[4096];
    while (true) {
      ssize_t n = ::read(fds[0], buf, sizeof(buf));
      if (n > 0) {
        out.append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        break;
      }
    }
    ::close(fds[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    json j = json::parse(out, nullptr, false);
    const std::string who = std::string(kPodResourcesHelper) + ": ";
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      if (!j.is_object() || !j.contains("deviceIDs") || !j["deviceIDs"].is_array()) {
        return InternalError(who + "unexpected output: " + out);
      }
      std::vector<std::string> ids;
      for (const auto& id : j["deviceIDs"]) {
        if (id.is_string()) ids.push_back(id.get<std::string>());
      }
      return ids;
    }
    if (j.is_object() && j.contains("msg") && j["msg"].is_string()) {
      int code = j.value("code", static_cast<int>(StatusCode::kUnknown));
      if (code <= 0 || code > static_cast<int>(StatusCode::kUnauthenticated)) {
        code = static_cast<int>(StatusCode::kUnknown);
      }
      return Status(static_cast<StatusCode>(code), j["msg"].get<std::string>());
    }
    return InternalError(who + (WIFSIGNALED(status)
                                    ? "killed by signal " + std::to_string(WTERMSIG(status))
                                    : "exit status " + std::to_string(WEXITSTATUS(status))));
  }
};

}  // namespace

std::unique_ptr<PodDeviceLookup> NewExecPodDeviceLookup() {
  return std::make_unique<ExecPodDeviceLookup>();
}

std::pair<std::string, std::string> PodFromCniArgs(const std::string& cni_args) {
  std::string ns, pod;
  size_t start = 0;
  while (start < cni_args.size()) {
    size_t end = cni_args.find(';', start);
    if (end == std::string::npos) end = cni_args.size();
    std::string kv = cni_args.substr(start, end - start);
    size_t eq = kv.find('=');
    if (eq != std::string::npos) {
      std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
      if (k == "K8S_POD_NAMESPACE") ns = v;
      if (k == "K8S_POD_NAME") pod = v;
    }
    start = end + 1;
  }
  return {ns, pod};
}

}  // namespace strata::cni
