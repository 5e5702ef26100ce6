#include "strata/netd/cni_installer.h"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <nlohmann/json.hpp>

#include "strata/common/file_util.h"
#include "strata/common/result.h"

namespace strata::netd {
namespace {

Status WriteAll(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write " + what, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Status SyncDir(const std::string& dir) {
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return ErrnoError("open " + dir, errno);
  Status s;
  if (::fsync(dfd) != 0) s = ErrnoError("fsync " + dir, errno);
  ::close(dfd);
  return s;
}

// temp + fsync + rename + directory fsync, with `mode` (WriteFileAtomically's is 0644, a plugin
// needs to be executable). The temp name starts with '.': the runtime lists neither dir's dot
// files, and a crash leaves at most one stale temp file that the next write truncates.
Status InstallFileAtomically(const std::string& dir, const std::string& name,
                             std::string_view contents, mode_t mode) {
  const std::string path = dir + "/" + name;
  const std::string tmp = dir + "/." + name + ".strata-tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoError("open " + tmp, errno);
  Status s = WriteAll(fd, contents, tmp);
  // O_CREAT's mode is filtered by the umask and ignored for an existing temp file.
  if (s.ok() && ::fchmod(fd, mode) != 0) s = ErrnoError("chmod " + tmp, errno);
  if (s.ok() && ::fsync(fd) != 0) s = ErrnoError("fsync " + tmp, errno);
  if (::close(fd) != 0 && s.ok()) s = ErrnoError("close " + tmp, errno);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = ErrnoError("rename " + tmp, errno);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  return SyncDir(dir);
}

Status InstallSymlinkAtomically(const std::string& dir, const std::string& name,
                                const std::string& target) {
  const std::string path = dir + "/" + name;
  const std::string tmp = dir + "/." + name + ".strata-tmp";
  ::unlink(tmp.c_str());
  if (::symlink(target.c_str(), tmp.c_str()) != 0) return ErrnoError("symlink " + tmp, errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = ErrnoError("rename " + tmp, errno);
    ::unlink(tmp.c_str());
    return s;
  }
  return SyncDir(dir);
}

Result<std::string> ReadLink(const std::string& path) {
  char buf[PATH_MAX];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
  if (n < 0) return ErrnoError("readlink " + path, errno);
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace

CniInstaller::CniInstaller(Options options) : options_(std::move(options)) {
  if (options_.registry != nullptr) {
    ok_gauge_ = &prometheus::BuildGauge()
                     .Name("strata_netd_cni_install_ok")
                     .Help("1 when the last CNI install pass succeeded")
                     .Register(*options_.registry)
                     .Add({});
    writes_ = &prometheus::BuildCounter()
                   .Name("strata_netd_cni_install_writes_total")
                   .Help("CNI plugin and conf files (re)written on the host")
                   .Register(*options_.registry)
                   .Add({});
  }
}

Status CniInstaller::Validate() const {
  if (options_.source_dir.empty()) return InvalidArgumentError("cni source dir: empty");
  if (options_.bin_dir.empty()) return InvalidArgumentError("cni bin dir: empty");
  for (const auto& n : options_.names) {
    if (n.empty() || n.find('/') != std::string::npos || n == "." || n == "..") {
      return InvalidArgumentError("cni plugin name '" + n + "': must be a plain file name");
    }
  }
  if (!options_.conf_contents.empty()) {
    if (options_.conf_dir.empty()) return InvalidArgumentError("cni conf dir: empty");
    const std::string& c = options_.conf_name;
    if (c.empty() || c.find('/') != std::string::npos || !c.ends_with(".conflist")) {
      return InvalidArgumentError("cni conf name '" + c +
                                  "': must be a file name ending .conflist");
    }
    auto j = nlohmann::json::parse(options_.conf_contents, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return InvalidArgumentError("cni conf: not a JSON object");
    }
    for (const char* field : {"cniVersion", "name"}) {
      if (!j.contains(field) || !j[field].is_string() || j[field].get<std::string>().empty()) {
        return InvalidArgumentError(std::string("cni conf: ") + field +
                                    ": missing or not a string");
      }
    }
    if (!j.contains("plugins") || !j["plugins"].is_array() || j["plugins"].empty()) {
      return InvalidArgumentError("cni conf: plugins: missing or not a non-empty list");
    }
  }
  return Status::Ok();
}

Status CniInstaller::InstallName(const std::string& name, Report* report) {
  const std::string src = options_.source_dir + "/" + name;
  const std::string dst = options_.bin_dir + "/" + name;
  struct stat st {};
  if (::lstat(src.c_str(), &st) != 0) return ErrnoError("cni source " + src, errno);
  if (S_ISLNK(st.st_mode)) {
    auto target = ReadLink(src);
    if (!target.ok()) return target.status();
    if (target->find('/') != std::string::npos) {
      return FailedPreconditionError("cni source " + src + ": links to '" + *target +
                                     "', not to a name in the same directory");
    }
    auto current = ReadLink(dst);
    if (current.ok() && *current == *target) return Status::Ok();
    if (Status s = InstallSymlinkAtomically(options_.bin_dir, name, *target); !s.ok()) return s;
    report->written.push_back(dst);
    return Status::Ok();
  }
  if (!S_ISREG(st.st_mode)) return FailedPreconditionError("cni source " + src + ": not a file");
  auto contents = ReadFileToString(src);
  if (!contents.ok()) return contents.status();
  struct stat dst_st {};
  // lstat: a link the host put there is replaced by our file, not followed.
  if (::lstat(dst.c_str(), &dst_st) == 0 && S_ISREG(dst_st.st_mode) &&
      static_cast<size_t>(dst_st.st_size) == contents->size() && (dst_st.st_mode & 0111) != 0) {
    auto current = ReadFileToString(dst);
    if (current.ok() && *current == *contents) return Status::Ok();
  }
  if (Status s = InstallFileAtomically(options_.bin_dir, name, *contents, 0755); !s.ok()) return s;
  report->written.push_back(dst);
  return Status::Ok();
}

Status CniInstaller::InstallConf(Report* report) {
  if (options_.conf_contents.empty()) return Status::Ok();
  const std::string dst = options_.conf_dir + "/" + options_.conf_name;
  auto current = ReadFileToString(dst);
  if (current.ok() && *current == options_.conf_contents) return Status::Ok();
  if (Status s = InstallFileAtomically(options_.conf_dir, options_.conf_name,
                                       options_.conf_contents, 0644);
      !s.ok()) {
    return s;
  }
  report->written.push_back(dst);
  return Status::Ok();
}

Result<CniInstaller::Report> CniInstaller::Sync() {
  Report report;
  Status result;
  for (const auto& name : options_.names) {
    Status s = InstallName(name, &report);
    if (!s.ok() && result.ok()) result = s;
  }
  if (Status s = InstallConf(&report); !s.ok() && result.ok()) result = s;
  Record(result);
  if (writes_ != nullptr) writes_->Increment(static_cast<double>(report.written.size()));
  if (!result.ok()) return result;
  return report;
}

void CniInstaller::Record(const Status& s) {
  if (ok_gauge_ != nullptr) ok_gauge_->Set(s.ok() ? 1 : 0);
  std::lock_guard g(mu_);
  last_status_ = s;
}

Status CniInstaller::last_status() const {
  std::lock_guard g(mu_);
  return last_status_;
}

void CniInstaller::Run(std::stop_token stop) {
  int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) spdlog::warn("cni install: inotify: {}; checking every period only", errno);
  auto watch = [fd](const std::string& dir) {
    if (fd < 0 || dir.empty()) return;
    if (::inotify_add_watch(
            fd, dir.c_str(),
            IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ATTRIB | IN_CREATE) < 0) {
      spdlog::warn("cni install: inotify on {}: errno {}", dir, errno);
    }
  };
  watch(options_.bin_dir);
  if (!options_.conf_contents.empty()) watch(options_.conf_dir);

  auto pass = [this] {
    auto r = Sync();
    if (!r.ok()) {
      spdlog::warn("cni install: {}", r.status().ToString());
      return;
    }
    for (const auto& p : r->written) spdlog::info("cni install: wrote {}", p);
  };
  pass();
  auto next_full = std::chrono::steady_clock::now() + options_.period;
  // Poll in short slices so `stop` is seen within 200 ms (the stop token has no fd to poll).
  while (!stop.stop_requested()) {
    pollfd p{fd, POLLIN, 0};
    int n = fd >= 0 ? ::poll(&p, 1, 200) : (::poll(nullptr, 0, 200), 0);
    bool changed = false;
    if (n > 0) {
      char buf[4096];
      while (::read(fd, buf, sizeof buf) > 0) changed = true;
    }
    if (changed || std::chrono::steady_clock::now() >= next_full) {
      pass();
      next_full = std::chrono::steady_clock::now() + options_.period;
    }
  }
  if (fd >= 0) ::close(fd);
}

}  // namespace strata::netd
