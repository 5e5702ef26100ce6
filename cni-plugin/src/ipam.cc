#include "strata/cni/ipam.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "strata/cni/spec.h"

extern char** environ;

namespace strata::cni {
namespace {

using nlohmann::json;

class Pipe {
 public:
  Pipe() {
    if (::pipe2(fds_, O_CLOEXEC) != 0) fds_[0] = fds_[1] = -1;
  }
  ~Pipe() {
    CloseRead();
    CloseWrite();
  }
  bool ok() const { return fds_[0] >= 0; }
  int read_end() const { return fds_[0]; }
  int write_end() const { return fds_[1]; }
  void CloseRead() { Close(fds_[0]); }
  void CloseWrite() { Close(fds_[1]); }

 private:
  static void Close(int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  int fds_[2];
};

Result<std::string> FindInPath(const std::string& type, const std::string& cni_path) {
  size_t start = 0;
  while (start <= cni_path.size()) {
    size_t end = cni_path.find(':', start);
    if (end == std::string::npos) end = cni_path.size();
    std::string dir = cni_path.substr(start, end - start);
    if (!dir.empty()) {
      std::string candidate = dir + "/" + type;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    start = end + 1;
  }
  return NotFoundError("ipam.type: no executable '" + type + "' in CNI_PATH (" + cni_path + ")");
}

class ExecIpamRunner final : public IpamRunner {
 public:
  Result<json> Run(const std::string& command, const CniArgs& args, const std::string& type,
                   const json& conf) override {
    STRATA_ASSIGN_OR_RETURN(std::string path, FindInPath(type, args.path));
    // The caller's environment with the CNI_* of this invocation (CNI_COMMAND delegated).
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::strncmp(*e, "CNI_", 4) != 0) env_strings.emplace_back(*e);
    }
    env_strings.push_back("CNI_COMMAND=" + command);
    env_strings.push_back("CNI_CONTAINERID=" + args.container_id);
    env_strings.push_back("CNI_NETNS=" + args.netns);
    env_strings.push_back("CNI_IFNAME=" + args.ifname);
    env_strings.push_back("CNI_ARGS=" + args.args);
    env_strings.push_back("CNI_PATH=" + args.path);
    std::vector<char*> envp;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::string argv0 = path;
    char* argv[] = {argv0.data(), nullptr};

    Pipe in, out;
    if (!in.ok() || !out.ok()) return ErrnoError("ipam: pipe", errno);
    pid_t pid = ::fork();
    if (pid < 0) return ErrnoError("ipam: fork", errno);
    if (pid == 0) {
      // Child: only async-signal-safe calls from here.
      if (::dup2(in.read_end(), STDIN_FILENO) < 0 || ::dup2(out.write_end(), STDOUT_FILENO) < 0) {
        ::_exit(127);
      }
      ::execve(path.c_str(), argv, envp.data());
      ::_exit(127);
    }
    in.CloseRead();
    out.CloseWrite();
    // The config is small (well below the pipe buffer), but write and read together anyway so a
    // plugin that answers before reading all of stdin cannot deadlock us.
    const std::string input = conf.dump();
    size_t written = 0;
    std::string output;
    // A plugin that dies leaves EPIPE on our write; it must not kill us.
    struct sigaction ignore {
    }, old{};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ignore, &old);
    while (out.read_end() >= 0) {
      pollfd fds[2] = {{out.read_end(), POLLIN, 0}, {in.write_end(), POLLOUT, 0}};
      int n = in.write_end() >= 0 ? 2 : 1;
      if (::poll(fds, n, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (n == 2 && fds[1].revents != 0) {
        ssize_t w = ::write(in.write_end(), input.data() + written, input.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 || written == input.size()) in.CloseWrite();
      }
      if (fds[0].revents != 0) {
        char buf[4096];
        ssize_t r = ::read(out.read_end(), buf, sizeof(buf));
        if (r > 0) {
          output.append(buf, static_cast<size_t>(r));
        } else if (r == 0 || errno != EINTR) {
          out.CloseRead();
        }
      }
    }
    in.CloseWrite();
    ::sigaction(SIGPIPE, &old, nullptr);
    int wstatus = 0;
    while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
    const std::string who = "ipam " + type + " " + command;
    json parsed = output.empty() ? json() : json::parse(output, nullptr, false);
    if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) {
      if (parsed.is_discarded()) return InternalError(who + ": output is not JSON: " + output);
      return parsed;
    }
    if (!parsed.is_discarded() && parsed.is_object() && parsed.contains("msg")) {
      std::string msg = who + ": " + parsed.value("msg", std::string());
      if (parsed.contains("details") && parsed["details"].is_string()) {
        msg += " (" + parsed["details"].get<std::string>() + ")";
      }
      int code = parsed.value("code", 999);
      if (code == static_cast<int>(ErrorCode::kInvalidNetworkConfig)) {
        return InvalidArgumentError(msg);
      }
      if (code == static_cast<int>(ErrorCode::kTryAgainLater)) return UnavailableError(msg);
      return Status(StatusCode::kUnknown, msg);
    }
    if (WIFSIGNALED(wstatus)) {
      return InternalError(who + ": killed by signal " + std::to_string(WTERMSIG(wstatus)));
    }
    return InternalError(who + ": exit status " + std::to_string(WEXITSTATUS(wstatus)) +
                         (output.empty() ? "" : ": " + output));
  }
};

}  // namespace

std::unique_ptr<IpamRunner> NewExecIpamRunner() { return std::make_unique<ExecIpamRunner>(); }

Result<IpamConfig> ParseIpamResult(const json& result) {
  STRATA_ASSIGN_OR_RETURN(json r, ConvertResult(result, SpecVersion::k1_1_0, "ipam result"));
  IpamConfig c;
  if (r.contains("ips") && r["ips"].is_array()) {
    for (size_t i = 0; i < r["ips"].size(); ++i) {
      const std::string prefix = "ipam result: ips[" + std::to_string(i) + "].";
      STRATA_ASSIGN_OR_RETURN(auto address, GetString(r["ips"][i], "address", prefix));
      if (!address) return InvalidArgumentError(prefix + "address: required");
      STRATA_ASSIGN_OR_RETURN(auto gateway, GetString(r["ips"][i], "gateway", prefix));
      c.ips.push_back({*address, gateway.value_or("")});
    }
  }
  if (r.contains("routes") && r["routes"].is_array()) {
    for (size_t i = 0; i < r["routes"].size(); ++i) {
      const std::string prefix = "ipam result: routes[" + std::to_string(i) + "].";
      STRATA_ASSIGN_OR_RETURN(auto dst, GetString(r["routes"][i], "dst", prefix));
      if (!dst) return InvalidArgumentError(prefix + "dst: required");
      STRATA_ASSIGN_OR_RETURN(auto gw, GetString(r["routes"][i], "gw", prefix));
      c.routes.push_back({*dst, gw.value_or("")});
    }
  }
  if (r.contains("dns")) c.dns = r["dns"];
  return c;
}

}  // namespace strata::cni
