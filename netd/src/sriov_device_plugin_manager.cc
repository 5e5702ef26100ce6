#include "strata/netd/sriov_device_plugin_manager.h"

#include <grpcpp/grpcpp.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "strata/common/file_util.h"

namespace strata::netd {
namespace {

constexpr char kKubeletSocket[] = "kubelet.sock";

// The inode of a unix socket file; 0 when it is absent or not a socket.
ino_t SocketInode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) return 0;
  return st.st_ino;
}

}  // namespace

SriovDevicePluginManager::SriovDevicePluginManager(SriovDevicePluginOptions options,
                                                   cni::Sysfs* sysfs, LinkProbe* links)
    : options_(std::move(options)), inventory_(sysfs, links) {
  for (const auto& spec : options_.pools) {
    Pool p;
    p.spec = spec;
    p.resource = SriovResourceName(options_.resource_prefix, spec);
    p.endpoint = "strata-sriov-" + spec.name + ".sock";
    pools_.push_back(std::move(p));
  }
}

SriovDevicePluginManager::~SriovDevicePluginManager() { Stop(); }

Status SriovDevicePluginManager::Serve(Pool& pool) {
  const std::string path = options_.device_plugin_dir + "/" + pool.endpoint;
  // A socket left by an earlier run (or a stale one after a kubelet restart) would make bind fail.
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoError("remove stale socket " + path, errno);
  }
  auto plugin = std::make_shared<SriovDevicePlugin>(pool.resource);
  // VFs seen before and missing now stay advertised (unhealthy) across a restart of the server.
  if (pool.plugin) plugin->SetVfs(pool.plugin->Vfs());
  plugin->SetVfs(inventory_.Scan(pool.spec));
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix://" + path, grpc::InsecureServerCredentials());
  builder.RegisterService(plugin.get());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) return UnavailableError("serve the device plugin " + pool.resource + " on " + path);
  pool.plugin = std::move(plugin);
  pool.server = std::move(server);
  pool.socket_ino = SocketInode(path);
  pool.registered_kubelet = 0;
  spdlog::info("sriov {}: serving {}", pool.resource, path);
  return Status::Ok();
}

void SriovDevicePluginManager::StopServing(Pool& pool) {
  if (!pool.server) return;
  pool.plugin->Shutdown();
  pool.server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  pool.server->Wait();
  pool.server.reset();
  const std::string path = options_.device_plugin_dir + "/" + pool.endpoint;
  // Only our own socket: after a kubelet restart the path may already be someone else's.
  if (pool.socket_ino != 0 && SocketInode(path) == pool.socket_ino) ::unlink(path.c_str());
  pool.socket_ino = 0;
  pool.registered_kubelet = 0;
}

Status SriovDevicePluginManager::Register(Pool& pool) {
  const std::string kubelet = options_.device_plugin_dir + "/" + kKubeletSocket;
  ino_t ino = SocketInode(kubelet);
  if (ino == 0) return UnavailableError("no kubelet socket at " + kubelet);
  auto channel = grpc::CreateChannel("unix://" + kubelet, grpc::InsecureChannelCredentials());
  auto stub = v1beta1::Registration::NewStub(channel);
  v1beta1::RegisterRequest req;
  req.set_version(kDevicePluginApiVersion);
  req.set_endpoint(pool.endpoint);
  req.set_resource_name(pool.resource);
  req.mutable_options()->set_pre_start_required(false);
  req.mutable_options()->set_get_preferred_allocation_available(true);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1beta1::Empty resp;
  grpc::Status s = stub->Register(&ctx, req, &resp);
  if (!s.ok()) {
    return Status(static_cast<StatusCode>(s.error_code()),
                  "register " + pool.resource + " with " + kubelet + ": " + s.error_message());
  }
  pool.registered_kubelet = ino;
  registrations_.fetch_add(1);
  spdlog::info("sriov {}: registered with the kubelet ({})", pool.resource, pool.endpoint);
  return Status::Ok();
}

void SriovDevicePluginManager::Reconcile() {
  const std::string kubelet = options_.device_plugin_dir + "/" + kKubeletSocket;
  for (Pool& pool : pools_) {
    const std::string path = options_.device_plugin_dir + "/" + pool.endpoint;
    if (pool.server && SocketInode(path) != pool.socket_ino) {
      // The kubelet removes every plugin socket when it starts: serve again, then register.
      spdlog::info("sriov {}: socket {} removed; serving again", pool.resource, path);
      StopServing(pool);
    }
    if (!pool.server) {
      Status s = Serve(pool);
      if (!s.ok()) {
        spdlog::error("sriov {}: {}", pool.resource, s.ToString());
        continue;
      }
    } else {
      pool.plugin->SetVfs(inventory_.Scan(pool.spec));
    }
    ino_t kubelet_ino = SocketInode(kubelet);
    if (kubelet_ino != 0 && kubelet_ino != pool.registered_kubelet) {
      Status s = Register(pool);
      if (!s.ok()) spdlog::warn("sriov {}: {}", pool.resource, s.ToString());
    }
  }
}

Status SriovDevicePluginManager::Start() {
  if (thread_.joinable()) return FailedPreconditionError("sriov device plugins already started");
  STRATA_RETURN_IF_ERROR(CreateDirectories(options_.device_plugin_dir));
  inotify_fd_ = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (inotify_fd_ < 0) return ErrnoError("inotify_init1", errno);
  if (::inotify_add_watch(inotify_fd_, options_.device_plugin_dir.c_str(),
                          IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM) < 0) {
    int err = errno;
    ::close(inotify_fd_);
    inotify_fd_ = -1;
    return ErrnoError("watch " + options_.device_plugin_dir, err);
  }
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    int err = errno;
    ::close(inotify_fd_);
    inotify_fd_ = -1;
    return ErrnoError("eventfd", err);
  }
  for (Pool& pool : pools_) {
    Status s = Serve(pool);
    if (!s.ok()) {
      for (Pool& p : pools_) StopServing(p);
      ::close(inotify_fd_);
      ::close(wake_fd_);
      inotify_fd_ = wake_fd_ = -1;
      return s;
    }
  }
  for (Pool& pool : pools_) {
    Status s = Register(pool);
    if (!s.ok())
      spdlog::warn("sriov {}: {}; will register when the kubelet is back", pool.resource,
                   s.ToString());
  }
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void SriovDevicePluginManager::Loop() {
  const int timeout_ms = static_cast<int>(options_.health_interval.count());
  while (!stopping_.load()) {
    pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int n = ::poll(fds, 2, timeout_ms);
    if (n < 0 && errno != EINTR) {
      spdlog::error("sriov: poll: errno {}", errno);
    }
    if (stopping_.load()) break;
    if (n > 0 && (fds[0].revents & POLLIN)) {
      // Drain: what changed is re-read from the directory itself in Reconcile.
      alignas(inotify_event) char buf[4096];
      while (::read(inotify_fd_, buf, sizeof(buf)) > 0) {
      }
    }
    Reconcile();
  }
}

void SriovDevicePluginManager::Stop() {
  if (thread_.joinable()) {
    stopping_ = true;
    uint64_t one = 1;
    ssize_t ignored = ::write(wake_fd_, &one, sizeof(one));
    (void)ignored;
    thread_.join();
  }
  for (Pool& pool : pools_) StopServing(pool);
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  inotify_fd_ = wake_fd_ = -1;
}

}  // namespace strata::netd
