#include "strata/kube/client.h"

#include "strata/kube/errors.h"

namespace strata::kube {

std::string Resource::Path(std::string_view ns, std::string_view name,
                           std::string_view subresource) const {
  std::string p = group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
  if (namespaced && !ns.empty()) {
    p += "/namespaces/";
    p += ns;
  }
  p += "/" + plural;
  if (!name.empty()) {
    p += "/";
    p += name;
    if (!subresource.empty()) {
      p += "/";
      p += subresource;
    }
  }
  return p;
}

namespace resources {
Resource StorageDevices() {
  return {"strata.io", "v1alpha1", "storagedevices", "StorageDevice", false};
}
Resource Leases() { return {"coordination.k8s.io", "v1", "leases", "Lease", true}; }
Resource Events() { return {"", "v1", "events", "Event", true}; }
Resource ConfigMaps() { return {"", "v1", "configmaps", "ConfigMap", true}; }
Resource Namespaces() { return {"", "v1", "namespaces", "Namespace", false}; }
Resource PersistentVolumeClaims() {
  return {"", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", true};
}
Resource PersistentVolumes() { return {"", "v1", "persistentvolumes", "PersistentVolume", false}; }
Resource Pods() { return {"", "v1", "pods", "Pod", true}; }
Resource Nodes() { return {"", "v1", "nodes", "Node", false}; }
Resource TieringPolicies() {
  return {"strata.io", "v1alpha1", "tieringpolicies", "TieringPolicy", true};
}
Resource DedupPolicies() { return {"strata.io", "v1alpha1", "deduppolicies", "DedupPolicy", true}; }
Resource MaintenanceWindows() {
  return {"strata.io", "v1alpha1", "maintenancewindows", "MaintenanceWindow", false};
}
Resource BandwidthPolicies() {
  return {"strata.io", "v1alpha1", "bandwidthpolicies", "BandwidthPolicy", true};
}
Resource VirtualNetworkConfigs() {
  return {"strata.io", "v1alpha1", "virtualnetworkconfigs", "VirtualNetworkConfig", true};
}
Resource NodeNetworkPolicies() {
  return {"strata.io", "v1alpha1", "nodenetworkpolicies", "NodeNetworkPolicy", false};
}
}  // namespace resources

Result<std::vector<Json>> ListAll(ApiClient& client, const Resource& r, std::string_view ns,
                                  ListOptions options, std::string* resource_version) {
  const ListOptions first = options;
  std::vector<Json> items;
  bool restarted = false;
  while (true) {
    auto page = client.List(r, ns, options);
    if (!page.ok()) {
      // The continue token expired (the snapshot was compacted): start over once, consistently.
      if (IsGone(page.status()) && !options.continue_token.empty() && !restarted) {
        restarted = true;
        options = first;
        items.clear();
        continue;
      }
      return page.status();
    }
    for (auto& item : page->items) items.push_back(std::move(item));
    if (page->continue_token.empty()) {
      if (resource_version != nullptr) *resource_version = page->resource_version;
      return items;
    }
    options.continue_token = page->continue_token;
  }
}

Result<Json> UpdateWithRetry(ApiClient& client, const Resource& r, std::string_view ns,
                             std::string_view name, const std::function<Status(Json&)>& mutate,
                             bool status, int attempts) {
  Status last;
  for (int i = 0; i < attempts; ++i) {
    STRATA_ASSIGN_OR_RETURN(Json object, client.Get(r, ns, name));
    STRATA_RETURN_IF_ERROR(mutate(object));
    auto updated = status ? client.UpdateStatus(r, object) : client.Update(r, object);
    if (updated.ok() || !IsConflict(updated.status())) return updated;
    last = updated.status();
  }
  return last.WithContext("gave up after " + std::to_string(attempts) + " conflicting updates");
}

std::string ObjectKey(const Json& object) {
  const Json& meta = object.contains("metadata") ? object["metadata"] : Json::object();
  std::string name = meta.value("name", "");
  std::string ns = meta.value("namespace", "");
  return ns.empty() ? name : ns + "/" + name;
}

std::pair<std::string, std::string> SplitKey(std::string_view key) {
  auto slash = key.find('/');
  if (slash == std::string_view::npos) return {"", std::string(key)};
  return {std::string(key.substr(0, slash)), std::string(key.substr(slash + 1))};
}

}  // namespace strata::kube
