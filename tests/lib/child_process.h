// A child process for tests and benchmarks that start real daemons (strata-stored,
// strata-csi): spawned with its output in a log file, reaped, killed at the end.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace strata::testing {

class ChildProcess {
 public:
  // argv[0] is a path (no PATH search); stdout and stderr are appended to `log`.
  ChildProcess(const std::vector<std::string>& argv, const std::string& log) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
  }
  // Killed with `stop_signal_` (SIGKILL unless set_stop_signal) if still running.
  ~ChildProcess() { Stop(stop_signal_); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  void set_stop_signal(int sig) { stop_signal_ = sig; }

  bool Running() {
    if (pid_ <= 0) return false;
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return false;
    }
    return true;
  }
  // The exit code once Running() has returned false (128+N for signal N).
  int exit_code() const { return exit_code_; }
  // Sends `sig` and reaps the process. One still running `grace` later is killed (SIGKILL): a
  // daemon that hangs in its shutdown fails the test instead of hanging it.
  void Stop(int sig, std::chrono::seconds grace = std::chrono::seconds(30)) {
    if (pid_ <= 0) return;
    kill(pid_, sig);
    int status;
    const auto deadline = std::chrono::steady_clock::now() + grace;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int exit_code_ = -1;
  int stop_signal_ = SIGKILL;
};

// Polls `done` every 10 ms for at most `seconds` (a bounded wait on a condition); gives up
// early when `child` (if any) has exited.
template <typename F>
bool WaitFor(F done, int seconds, ChildProcess* child) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (!done()) {
    if (child && !child->Running()) return false;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace strata::testing
