// NodeHost on Linux: the NBD handshake in userspace (nbd_client.h), then the socket
// handed to the kernel over generic netlink family "nbd" (genetlink.h); dm-multipath
// through dmsetup (subprocess.h); bind mounts through mount(2).
#include <fcntl.h>
#include <linux/nbd-netlink.h>
#include <linux/netlink.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "genetlink.h"
#include "nbd_client.h"
#include "strata/common/fd.h"
#include "strata/csi/node_host.h"
#include "subprocess.h"

namespace strata::csi {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kBlockSize = 4096;
constexpr uint64_t kRequestTimeoutSec = 5;

// NBD_ATTR_SOCKETS with the one socket `fd`.
void PutSocket(GenlMessage* msg, int fd) {
  size_t socks = msg->BeginNest(NBD_ATTR_SOCKETS);
  size_t item = msg->BeginNest(NBD_SOCK_ITEM);
  msg->PutU32(NBD_SOCK_FD, static_cast<uint32_t>(fd));
  msg->EndNest(item);
  msg->EndNest(socks);
}

Result<uint16_t> NbdFamily() { return GenlFamilyId(NBD_GENL_FAMILY_NAME); }

std::string ReadFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// "MAJ:MIN" of a dev_t.
std::string DevString(dev_t d) { return std::to_string(major(d)) + ":" + std::to_string(minor(d)); }

class LinuxNodeHost final : public NodeHost {
 public:
  explicit LinuxNodeHost(NbdClientTls tls) : tls_(std::move(tls)) {}

  bool HasModule(const std::string& module) override {
    std::error_code ec;
    return fs::exists("/sys/module/" + module, ec);
  }

  Result<NbdAttachment> ConnectNbd(const std::string& portal,
                                   const std::string& export_name) override {
    NbdExportInfo einfo;
    auto sock = OpenNbdExport(portal, export_name, tls_, &einfo);
    if (!sock.ok()) return sock.status();
    const NbdExportInfo* info = &einfo;
    auto family = NbdFamily();
    if (!family.ok()) return family.status();

    GenlMessage msg(*family, NLM_F_REQUEST | NLM_F_ACK, NBD_CMD_CONNECT);
    msg.PutU64(NBD_ATTR_SIZE_BYTES, info->size);
    msg.PutU64(NBD_ATTR_BLOCK_SIZE_BYTES, kBlockSize);
    msg.PutU64(NBD_ATTR_SERVER_FLAGS, info->flags);
    msg.PutU64(NBD_ATTR_TIMEOUT, kRequestTimeoutSec);
    msg.PutU64(NBD_ATTR_DEAD_CONN_TIMEOUT, 0);
    PutSocket(&msg, sock->get());
    auto attrs = GenlTransact(msg, "NBD_CMD_CONNECT");
    if (!attrs.ok()) return attrs.status();
    NbdAttachment a;
    a.size = info->size;
    for (const auto& [type, data] : *attrs) {
      if (type == NBD_ATTR_INDEX && data.size() >= 4) {
        uint32_t idx = 0;
        std::memcpy(&idx, data.data(), 4);
        a.index = static_cast<int>(idx);
      }
    }
    if (a.index < 0) return InternalError("NBD_CMD_CONNECT: no device index in the reply");
    a.dev = ReadFirstLine("/sys/block/nbd" + std::to_string(a.index) + "/dev");
    if (a.dev.empty()) {
      (void)DisconnectNbd(a.index);
      return InternalError("nbd" + std::to_string(a.index) + ": no /sys/block/.../dev");
    }
    return a;
  }

  bool NbdConnected(int index) override {
    std::error_code ec;
    return fs::exists("/sys/block/nbd" + std::to_string(index) + "/pid", ec);
  }

  Status DisconnectNbd(int index) override {
    auto family = NbdFamily();
    if (!family.ok()) return family.status();
    GenlMessage msg(*family, NLM_F_REQUEST | NLM_F_ACK, NBD_CMD_DISCONNECT);
    msg.PutU32(NBD_ATTR_INDEX, static_cast<uint32_t>(index));
    auto attrs = GenlTransact(msg, "NBD_CMD_DISCONNECT");
    return attrs.ok() ? Status::Ok() : attrs.status();
  }

  bool DmExists(const std::string& name) override {
    std::error_code ec;
    for (fs::directory_iterator it("/sys/block", ec), end; !ec && it != end; it.increment(ec)) {
      if (it->path().filename().string().rfind("dm-", 0) != 0) continue;
      if (ReadFirstLine((it->path() / "dm" / "name").string()) == name) return true;
    }
    return false;
  }

  Status DmCreate(const std::string& name, const std::string& table, bool readonly) override {
    std::vector<std::string> args{"dmsetup", "create", name, "--noudevsync", "--verifyudev"};
    if (readonly) args.push_back("--readonly");
    args.push_back("--table");
    args.push_back(table);
    return Run(args);
  }

  Status DmRemove(const std::string& name) override {
    return Run({"dmsetup", "remove", "--noudevsync", "--verifyudev", name});
  }

  bool IsMountPoint(const std::string& path) override {
    std::error_code ec;
    const fs::path want = fs::weakly_canonical(path, ec);
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string id, parent, devno, root, mount_point;
      fields >> id >> parent >> devno >> root >> mount_point;
      if (mount_point == want.string()) return true;
    }
    return false;
  }

  Status BindMount(const std::string& source, const std::string& target, bool readonly) override {
    if (mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      return ErrnoError("bind mount " + source + " on " + target, errno);
    }
    if (readonly &&
        mount(nullptr, target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
      const int err = errno;
      umount2(target.c_str(), MNT_DETACH);
      return ErrnoError("remount read-only " + target, err);
    }
    return Status::Ok();
  }

  Status Unmount(const std::string& target) override {
    if (umount2(target.c_str(), 0) != 0 && errno != EINVAL) {
      return ErrnoError("unmount " + target, errno);
    }
    return Status::Ok();
  }

  Status ReconnectNbd(int index, const std::string& portal,
                      const std::string& export_name) override {
    NbdExportInfo info;
    auto sock = OpenNbdExport(portal, export_name, tls_, &info);
    if (!sock.ok()) return sock.status();
    auto family = NbdFamily();
    if (!family.ok()) return family.status();
    GenlMessage msg(*family, NLM_F_REQUEST | NLM_F_ACK, NBD_CMD_RECONFIGURE);
    msg.PutU32(NBD_ATTR_INDEX, static_cast<uint32_t>(index));
    PutSocket(&msg, sock->get());
    auto attrs = GenlTransact(msg, "NBD_CMD_RECONFIGURE");
    return attrs.ok() ? Status::Ok() : attrs.status();
  }

  Status ProbeNbd(int index) override {
    const std::string dev = "/dev/nbd" + std::to_string(index);
    Fd fd(open(dev.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC));
    if (!fd.valid()) return ErrnoError("open " + dev, errno);
    void* buf = nullptr;
    if (posix_memalign(&buf, kBlockSize, kBlockSize) != 0) return InternalError("out of memory");
    const ssize_t n = pread(fd.get(), buf, kBlockSize, 0);
    const int err = errno;
    free(buf);
    if (n < 0) return ErrnoError("read " + dev, err);
    if (n != static_cast<ssize_t>(kBlockSize)) return InternalError("short read from " + dev);
    return Status::Ok();
  }

  Result<std::vector<DmPath>> DmPaths(const std::string& name) override {
    std::string out;
    STRATA_RETURN_IF_ERROR(Run({"dmsetup", "status", name}, &out));
    return ParseMultipathStatus(out);
  }

  Status DmMessage(const std::string& name, const std::string& message) override {
    std::vector<std::string> args{"dmsetup", "message", name, "0"};
    std::istringstream words(message);
    for (std::string w; words >> w;) args.push_back(w);
    return Run(args);
  }

  Status DmReload(const std::string& name, const std::string& table, bool readonly) override {
    std::vector<std::string> args{"dmsetup", "reload", name};
    if (readonly) args.push_back("--readonly");
    args.push_back("--table");
    args.push_back(table);
    STRATA_RETURN_IF_ERROR(Run(args));
    return Run({"dmsetup", "resume", "--noudevsync", name});
  }

  Result<std::string> FsTypeOf(const std::string& dev) override {
    std::string out;
    // -p: probe the device itself, not the cache; exit 2: nothing found (blank).
    auto rc = RunStatus({"blkid", "-p", "-o", "export", dev}, &out);
    if (!rc.ok()) return rc.status();
    if (*rc == 2) return std::string();
    if (*rc != 0)
      return InternalError("blkid -p " + dev + " failed (exit " + std::to_string(*rc) +
                           "): " + out);
    std::istringstream lines(out);
    std::string type, pttype;
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("TYPE=", 0) == 0) type = line.substr(5);
      if (line.rfind("PTTYPE=", 0) == 0) pttype = line.substr(7);
    }
    if (type.empty() && !pttype.empty()) return "partition table " + pttype;
    if (type.empty()) return std::string("unknown signature");
    return type;
  }

  Status MakeFs(const std::string& dev, const std::string& fs_type) override {
    if (fs_type == "ext4") {
      return Run({"mkfs.ext4", "-F", "-q", "-E", "nodiscard,lazy_itable_init=1", dev});
    }
    if (fs_type == "xfs") return Run({"mkfs.xfs", "-f", "-q", "-K", dev});
    return InvalidArgumentError("file system type '" + fs_type + "' is not supported");
  }

  Status MountFs(const std::string& dev, const std::string& target, const std::string& fs_type,
                 const std::string& options) override {
    std::vector<std::string> args{"mount", "-t", fs_type};
    if (!options.empty()) {
      args.push_back("-o");
      args.push_back(options);
    }
    args.push_back(dev);
    args.push_back(target);
    return Run(args);
  }

  Status GrowFs(const std::string& dev, const std::string& mount_point,
                const std::string& fs_type) override {
    if (fs_type == "ext4") return Run({"resize2fs", dev});
    if (fs_type == "xfs") return Run({"xfs_growfs", mount_point});
    return InvalidArgumentError("file system type '" + fs_type + "' cannot be grown");
  }

  Result<FsUsage> StatFs(const std::string& path) override {
    struct statvfs sv {};
    if (statvfs(path.c_str(), &sv) != 0) return ErrnoError("statvfs " + path, errno);
    FsUsage u;
    u.total_bytes = static_cast<uint64_t>(sv.f_blocks) * sv.f_frsize;
    u.available_bytes = static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize;
    u.used_bytes = static_cast<uint64_t>(sv.f_blocks - sv.f_bfree) * sv.f_frsize;
    u.total_inodes = sv.f_files;
    u.free_inodes = sv.f_ffree;
    u.used_inodes = sv.f_files - sv.f_ffree;
    return u;
  }

  Result<uint64_t> BlockDeviceSize(const std::string& path) override {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) return NotFoundError(path + " does not exist");
      return ErrnoError("stat " + path, errno);
    }
    const dev_t d = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev;
    const std::string line = ReadFirstLine("/sys/dev/block/" + DevString(d) + "/size");
    if (line.empty()) return FailedPreconditionError(path + " is not on a block device");
    return std::strtoull(line.c_str(), nullptr, 10) * 512;
  }

  Result<std::string> DmNameOf(const std::string& path) override {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) return NotFoundError(path + " does not exist");
      return ErrnoError("stat " + path, errno);
    }
    const dev_t d = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev;
    std::string name = ReadFirstLine("/sys/dev/block/" + DevString(d) + "/dm/name");
    if (name.empty()) {
      return FailedPreconditionError(path + " is not on a device-mapper device (" + DevString(d) +
                                     ")");
    }
    return name;
  }

 private:
  const NbdClientTls tls_;
};

}  // namespace

std::unique_ptr<NodeHost> MakeLinuxNodeHost(NbdClientTls tls) {
  return std::make_unique<LinuxNodeHost>(std::move(tls));
}

}  // namespace strata::csi
