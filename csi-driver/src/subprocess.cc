#include "subprocess.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>

extern char** environ;

namespace strata::csi {

std::string JoinArgs(const std::vector<std::string>& args) {
  std::string cmd;
  for (const auto& a : args) cmd += (cmd.empty() ? "" : " ") + a;
  return cmd;
}

Result<int> RunStatus(const std::vector<std::string>& args, std::string* out) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int pipefd[2] = {-1, -1};
  if (pipe2(pipefd, O_CLOEXEC) != 0) return ErrnoError("pipe for " + args[0], errno);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(pipefd[1]);
  if (rc != 0) {
    close(pipefd[0]);
    return ErrnoError("spawn " + args[0], rc);
  }
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = read(pipefd[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (text.size() < (1u << 20)) text.append(buf, static_cast<size_t>(n));
  }
  close(pipefd[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoError("waitpid " + args[0], errno);
  }
  if (out != nullptr) *out = std::move(text);
  if (!WIFEXITED(status)) return InternalError("'" + JoinArgs(args) + "' was killed");
  return WEXITSTATUS(status);
}

Status Run(const std::vector<std::string>& args, std::string* out) {
  std::string text;
  auto rc = RunStatus(args, &text);
  if (!rc.ok()) return rc.status();
  if (*rc != 0) {
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    return InternalError("'" + JoinArgs(args) + "' failed (exit " + std::to_string(*rc) + ")" +
                         (text.empty() ? "" : ": " + text));
  }
  if (out != nullptr) *out = std::move(text);
  return Status::Ok();
}

}  // namespace strata::csi
