#include "strata/netd/sriov_device_plugin.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <set>

namespace strata::netd {
namespace {

v1beta1::Device ToDevice(const SriovVf& vf) {
  v1beta1::Device d;
  d.set_id(vf.pci);
  d.set_health(vf.healthy ? kHealthy : kUnhealthy);
  if (vf.numa_node >= 0) d.mutable_topology()->add_nodes()->set_id(vf.numa_node);
  return d;
}

}  // namespace

SriovDevicePlugin::SriovDevicePlugin(std::string resource_name)
    : resource_name_(std::move(resource_name)) {}

bool SriovDevicePlugin::SetVfs(const std::vector<SriovVf>& vfs) {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, SriovVf> next;
  for (const auto& vf : vfs) next[vf.pci] = vf;
  for (const auto& [pci, old] : vfs_) {
    if (next.count(pci)) continue;
    SriovVf gone = old;
    gone.healthy = false;
    gone.why_unhealthy = "VF missing from sysfs";
    next[pci] = gone;
  }
  bool visible = next.size() != vfs_.size();
  for (const auto& [pci, vf] : next) {
    auto it = vfs_.find(pci);
    if (it == vfs_.end() || it->second.healthy != vf.healthy ||
        it->second.numa_node != vf.numa_node) {
      visible = true;
      if (!vf.healthy) {
        spdlog::warn("sriov {}: {} unhealthy: {}", resource_name_, pci, vf.why_unhealthy);
      } else {
        spdlog::info("sriov {}: {} healthy", resource_name_, pci);
      }
    }
  }
  vfs_ = std::move(next);
  if (visible) {
    ++version_;
    changed_.notify_all();
  }
  return visible;
}

v1beta1::ListAndWatchResponse SriovDevicePlugin::DevicesLocked() const {
  v1beta1::ListAndWatchResponse r;
  for (const auto& [pci, vf] : vfs_) *r.add_devices() = ToDevice(vf);
  return r;
}

std::vector<SriovVf> SriovDevicePlugin::Vfs() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<SriovVf> out;
  for (const auto& [pci, vf] : vfs_) out.push_back(vf);
  return out;
}

v1beta1::ListAndWatchResponse SriovDevicePlugin::Devices() const {
  std::lock_guard<std::mutex> lock(mu_);
  return DevicesLocked();
}

void SriovDevicePlugin::Shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  shutdown_ = true;
  changed_.notify_all();
}

grpc::Status SriovDevicePlugin::GetDevicePluginOptions(grpc::ServerContext*, const v1beta1::Empty*,
                                                       v1beta1::DevicePluginOptions* resp) {
  resp->set_pre_start_required(false);
  resp->set_get_preferred_allocation_available(true);
  return grpc::Status::OK;
}

grpc::Status SriovDevicePlugin::ListAndWatch(
    grpc::ServerContext* ctx, const v1beta1::Empty*,
    grpc::ServerWriter<v1beta1::ListAndWatchResponse>* writer) {
  std::unique_lock<std::mutex> lock(mu_);
  bool first = true;
  uint64_t sent = 0;
  while (!shutdown_) {
    if (first || sent != version_) {
      v1beta1::ListAndWatchResponse r = DevicesLocked();
      sent = version_;
      first = false;
      lock.unlock();
      if (!writer->Write(r)) return grpc::Status::OK;  // the kubelet went away
      lock.lock();
      continue;
    }
    // The sync API has no callback for a cancelled stream: look at it once a second.
    changed_.wait_for(lock, std::chrono::seconds(1));
    if (ctx->IsCancelled()) return grpc::Status::CANCELLED;
  }
  return grpc::Status::OK;
}

grpc::Status SriovDevicePlugin::GetPreferredAllocation(
    grpc::ServerContext*, const v1beta1::PreferredAllocationRequest* req,
    v1beta1::PreferredAllocationResponse* resp) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& c : req->container_requests()) {
    auto* out = resp->add_container_responses();
    std::set<std::string> chosen;
    for (const auto& id : c.must_include_deviceids()) {
      if (chosen.insert(id).second) out->add_deviceids(id);
    }
    // Available VFs grouped by PF, healthy first; then round-robin over the PFs.
    std::map<std::string, std::vector<std::string>> by_pf;
    for (const auto& id : c.available_deviceids()) {
      if (chosen.count(id)) continue;
      auto it = vfs_.find(id);
      std::string pf = it == vfs_.end() ? "" : it->second.pf_pci;
      bool healthy = it != vfs_.end() && it->second.healthy;
      by_pf[(healthy ? "0" : "1") + pf].push_back(id);
    }
    bool added = true;
    for (size_t round = 0; added && out->deviceids_size() < c.allocation_size(); ++round) {
      added = false;
      for (auto& [pf, ids] : by_pf) {
        if (round < ids.size() && out->deviceids_size() < c.allocation_size()) {
          out->add_deviceids(ids[round]);
          added = true;
        }
      }
    }
  }
  return grpc::Status::OK;
}

grpc::Status SriovDevicePlugin::Allocate(grpc::ServerContext*, const v1beta1::AllocateRequest* req,
                                         v1beta1::AllocateResponse* resp) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string env = PciDeviceEnvName(resource_name_);
  v1beta1::AllocateResponse out;
  for (int i = 0; i < req->container_requests_size(); ++i) {
    const auto& c = req->container_requests(i);
    auto* r = out.add_container_responses();
    std::string pcis;
    std::set<std::string> groups;
    for (int j = 0; j < c.devices_ids_size(); ++j) {
      const std::string& id = c.devices_ids(j);
      auto it = vfs_.find(id);
      if (it == vfs_.end()) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "container_requests[" + std::to_string(i) + "].devices_ids[" +
                                std::to_string(j) + "]: '" + id + "' is not a VF of " +
                                resource_name_);
      }
      if (!pcis.empty()) pcis += ",";
      pcis += id;
      if (it->second.vfio) groups.insert(it->second.iommu_group);
    }
    (*r->mutable_envs())[env] = pcis;
    if (!groups.empty()) {
      auto add = [r](const std::string& path) {
        auto* d = r->add_devices();
        d->set_container_path(path);
        d->set_host_path(path);
        d->set_permissions("mrw");
      };
      add("/dev/vfio/vfio");
      for (const auto& g : groups) add("/dev/vfio/" + g);
    }
    spdlog::info("sriov {}: allocated {}", resource_name_, pcis);
  }
  *resp = std::move(out);
  return grpc::Status::OK;
}

grpc::Status SriovDevicePlugin::PreStartContainer(grpc::ServerContext*,
                                                  const v1beta1::PreStartContainerRequest*,
                                                  v1beta1::PreStartContainerResponse*) {
  return grpc::Status::OK;
}

}  // namespace strata::netd
