#include "fake_kubelet.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

namespace strata::testing {

class FakeKubelet::RegistrationService final : public v1beta1::Registration::Service {
 public:
  explicit RegistrationService(FakeKubelet* k) : k_(k) {}
  grpc::Status Register(grpc::ServerContext*, const v1beta1::RegisterRequest* req,
                        v1beta1::Empty*) override {
    return k_->OnRegister(*req);
  }

 private:
  FakeKubelet* k_;
};

class FakeKubelet::PodResourcesService final : public v1::PodResourcesLister::Service {
 public:
  explicit PodResourcesService(FakeKubelet* k) : k_(k) {}
  grpc::Status List(grpc::ServerContext*, const v1::ListPodResourcesRequest*,
                    v1::ListPodResourcesResponse* resp) override {
    *resp = k_->ListPods();
    return grpc::Status::OK;
  }

 private:
  FakeKubelet* k_;
};

FakeKubelet::FakeKubelet(std::string device_plugin_dir, std::string pod_resources_socket)
    : dir_(std::move(device_plugin_dir)),
      pod_resources_socket_(std::move(pod_resources_socket)),
      registration_(std::make_unique<RegistrationService>(this)),
      pod_resources_(std::make_unique<PodResourcesService>(this)) {}

FakeKubelet::~FakeKubelet() { Stop(); }

Status FakeKubelet::Start() {
  const std::string sock = dir_ + "/kubelet.sock";
  ::unlink(sock.c_str());
  grpc::ServerBuilder b;
  b.AddListeningPort("unix://" + sock, grpc::InsecureServerCredentials());
  b.RegisterService(registration_.get());
  server_ = b.BuildAndStart();
  if (!server_) return InternalError("fake kubelet: cannot serve " + sock);
  if (!pod_resources_server_) {
    ::unlink(pod_resources_socket_.c_str());
    grpc::ServerBuilder p;
    p.AddListeningPort("unix://" + pod_resources_socket_, grpc::InsecureServerCredentials());
    p.RegisterService(pod_resources_.get());
    pod_resources_server_ = p.BuildAndStart();
    if (!pod_resources_server_) {
      return InternalError("fake kubelet: cannot serve " + pod_resources_socket_);
    }
  }
  return Status::Ok();
}

void FakeKubelet::StopPlugins() {
  std::map<std::string, std::unique_ptr<Plugin>> plugins;
  {
    std::lock_guard<std::mutex> lock(mu_);
    plugins.swap(plugins_);
  }
  for (auto& [resource, p] : plugins) {
    p->watch_ctx->TryCancel();
    if (p->watcher.joinable()) p->watcher.join();
  }
}

void FakeKubelet::Stop() {
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_.reset();
    ::unlink((dir_ + "/kubelet.sock").c_str());
  }
  StopPlugins();
  if (pod_resources_server_) {
    pod_resources_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    pod_resources_server_.reset();
    ::unlink(pod_resources_socket_.c_str());
  }
}

Status FakeKubelet::Restart() {
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_.reset();
    ::unlink((dir_ + "/kubelet.sock").c_str());
  }
  StopPlugins();
  // The kubelet's device manager removes everything in the directory but its checkpoint when it
  // starts; plugins notice their socket is gone.
  if (DIR* d = ::opendir(dir_.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == ".." || name == "kubelet_internal_checkpoint") continue;
      ::unlink((dir_ + "/" + name).c_str());
    }
    ::closedir(d);
  }
  return Start();
}

grpc::Status FakeKubelet::OnRegister(const v1beta1::RegisterRequest& req) {
  if (req.version() != "v1beta1") {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "version: '" + req.version() + "' is not supported");
  }
  const std::string& r = req.resource_name();
  size_t slash = r.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == r.size() ||
      r.find('/', slash + 1) != std::string::npos) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "resource_name: '" + r + "' is not domain/name");
  }
  const std::string endpoint = dir_ + "/" + req.endpoint();
  struct stat st {};
  if (req.endpoint().empty() || req.endpoint().find('/') != std::string::npos ||
      ::stat(endpoint.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "endpoint: no socket '" + req.endpoint() + "' in " + dir_);
  }
  // A plugin registering again replaces its earlier connection.
  std::unique_ptr<Plugin> old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = plugins_.find(r);
    if (it != plugins_.end()) {
      old = std::move(it->second);
      plugins_.erase(it);
    }
  }
  if (old) {
    old->watch_ctx->TryCancel();
    if (old->watcher.joinable()) old->watcher.join();
  }
  auto p = std::make_unique<Plugin>();
  p->channel = grpc::CreateChannel("unix://" + endpoint, grpc::InsecureChannelCredentials());
  p->watch_ctx = std::make_unique<grpc::ClientContext>();
  p->watcher = std::thread(&FakeKubelet::Watch, this, r, p->channel, p->watch_ctx.get());
  std::lock_guard<std::mutex> lock(mu_);
  registrations_.push_back({req.version(), req.endpoint(), r, req.options()});
  plugins_[r] = std::move(p);
  changed_.notify_all();
  return grpc::Status::OK;
}

void FakeKubelet::Watch(std::string resource, std::shared_ptr<grpc::Channel> channel,
                        grpc::ClientContext* ctx) {
  auto stub = v1beta1::DevicePlugin::NewStub(channel);
  {
    grpc::ClientContext opts_ctx;
    opts_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    opts_ctx.set_wait_for_ready(true);
    v1beta1::DevicePluginOptions opts;
    if (!stub->GetDevicePluginOptions(&opts_ctx, v1beta1::Empty(), &opts).ok()) return;
  }
  auto reader = stub->ListAndWatch(ctx, v1beta1::Empty());
  v1beta1::ListAndWatchResponse list;
  while (reader->Read(&list)) {
    std::lock_guard<std::mutex> lock(mu_);
    devices_[resource] = list;
    ++lists_[resource];
    changed_.notify_all();
  }
  reader->Finish();
}

std::vector<FakeKubelet::Registration> FakeKubelet::registrations() const {
  std::lock_guard<std::mutex> lock(mu_);
  return registrations_;
}

std::optional<v1beta1::ListAndWatchResponse> FakeKubelet::Devices(
    const std::string& resource) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = devices_.find(resource);
  if (it == devices_.end()) return std::nullopt;
  return it->second;
}

int FakeKubelet::lists_received(const std::string& resource) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = lists_.find(resource);
  return it == lists_.end() ? 0 : it->second;
}

bool FakeKubelet::WaitFor(const std::function<bool()>& pred, std::chrono::seconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    lock.unlock();
    bool done = pred();
    lock.lock();
    if (done) return true;
    if (changed_.wait_until(lock, deadline) == std::cv_status::timeout) {
      lock.unlock();
      return pred();
    }
  }
}

grpc::Status FakeKubelet::AllocateRaw(const std::string& resource,
                                      const v1beta1::AllocateRequest& req,
                                      v1beta1::AllocateResponse* resp) {
  std::shared_ptr<grpc::Channel> channel;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = plugins_.find(resource);
    if (it == plugins_.end()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no plugin registered for " + resource);
    }
    channel = it->second->channel;
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return v1beta1::DevicePlugin::NewStub(channel)->Allocate(&ctx, req, resp);
}

Result<v1beta1::ContainerAllocateResponse> FakeKubelet::Allocate(
    const std::string& resource, const std::string& pod_namespace, const std::string& pod_name,
    const std::string& container, const std::vector<std::string>& device_ids) {
  v1beta1::AllocateRequest req;
  auto* c = req.add_container_requests();
  for (const auto& id : device_ids) c->add_devices_ids(id);
  v1beta1::AllocateResponse resp;
  grpc::Status s = AllocateRaw(resource, req, &resp);
  if (!s.ok()) return Status(static_cast<StatusCode>(s.error_code()), s.error_message());
  if (resp.container_responses_size() != 1) {
    return InternalError("Allocate returned " + std::to_string(resp.container_responses_size()) +
                         " container responses for 1 request");
  }
  RecordAllocation(resource, pod_namespace, pod_name, container, device_ids);
  return resp.container_responses(0);
}

void FakeKubelet::RecordAllocation(const std::string& resource, const std::string& pod_namespace,
                                   const std::string& pod_name, const std::string& container,
                                   const std::vector<std::string>& device_ids) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = allocations_.begin(); it != allocations_.end();) {
    bool same = it->ns == pod_namespace && it->pod == pod_name && it->container == container &&
                it->resource == resource;
    it = same ? allocations_.erase(it) : it + 1;
  }
  allocations_.push_back({pod_namespace, pod_name, container, resource, device_ids});
}

v1::ListPodResourcesResponse FakeKubelet::ListPods() const {
  std::lock_guard<std::mutex> lock(mu_);
  v1::ListPodResourcesResponse out;
  std::map<std::pair<std::string, std::string>, v1::PodResources*> pods;
  for (const auto& a : allocations_) {
    auto& pod = pods[{a.ns, a.pod}];
    if (pod == nullptr) {
      pod = out.add_pod_resources();
      pod->set_namespace_(a.ns);
      pod->set_name(a.pod);
    }
    v1::ContainerResources* ctr = nullptr;
    for (auto& c : *pod->mutable_containers()) {
      if (c.name() == a.container) ctr = &c;
    }
    if (ctr == nullptr) {
      ctr = pod->add_containers();
      ctr->set_name(a.container);
    }
    auto* d = ctr->add_devices();
    d->set_resource_name(a.resource);
    for (const auto& id : a.ids) d->add_device_ids(id);
  }
  return out;
}

}  // namespace strata::testing
