#pragma once

// An in-memory ApiClient for unit tests (reconcilers, leader election): objects by resource and
// key, integer resourceVersions, optimistic concurrency on updates, merge patches, and a switch
// that fails every call as an unreachable apiserver would. Watches block until stopped (unit tests
// drive reconcilers directly). Thread-safe. Not for integration tests: those use the real
// apiserver.
#include <map>
#include <mutex>
#include <thread>

#include "strata/kube/client.h"
#include "strata/kube/errors.h"

namespace strata::kube::testing {

class FakeApiClient : public kube::ApiClient {
 public:
  using Json = kube::Json;

  Result<Json> Get(const kube::Resource& r, std::string_view ns, std::string_view name) override {
    std::lock_guard g(mu_);
    if (unreachable_) return UnavailableError("apiserver unreachable (fake)");
    auto it = objects_.find(Key(r, ns, name));
    if (it == objects_.end())
      return kube::ApiError(404, "NotFound", std::string(name) + " not found");
    return it->second;
  }
  Result<kube::ListPage> List(const kube::Resource& r, std::string_view ns,
                              const kube::ListOptions&) override {
    std::lock_guard g(mu_);
    kube::ListPage page;
    const std::string prefix =
        r.plural + "|" + (r.namespaced && !ns.empty() ? std::string(ns) + "/" : "");
    for (const auto& [k, v] : objects_) {
      if (k.starts_with(prefix)) page.items.push_back(v);
    }
    page.resource_version = std::to_string(rv_);
    return page;
  }
  Result<Json> Create(const kube::Resource& r, std::string_view ns, const Json& object) override {
    std::lock_guard g(mu_);
    if (unreachable_) return UnavailableError("apiserver unreachable (fake)");
    const std::string key = Key(r, ns, object["metadata"].value("name", ""));
    if (objects_.contains(key)) return kube::ApiError(409, "AlreadyExists", "exists");
    Json o = object;
    o["metadata"]["resourceVersion"] = std::to_string(++rv_);
    o["metadata"]["uid"] = "uid-" + std::to_string(rv_);
    if (!o["metadata"].contains("generation")) o["metadata"]["generation"] = 1;
    objects_[key] = o;
    created_.push_back(o);
    return o;
  }
  Result<Json> Update(const kube::Resource& r, const Json& object) override {
    return Put(r, object, false);
  }
  Result<Json> UpdateStatus(const kube::Resource& r, const Json& object) override {
    return Put(r, object, true);
  }
  Result<Json> Patch(const kube::Resource& r, std::string_view ns, std::string_view name,
                     kube::PatchType, const Json& patch, bool) override {
    std::lock_guard g(mu_);
    auto it = objects_.find(Key(r, ns, name));
    if (it == objects_.end()) return kube::ApiError(404, "NotFound", "not found");
    it->second.merge_patch(patch);
    it->second["metadata"]["resourceVersion"] = std::to_string(++rv_);
    return it->second;
  }
  Status Delete(const kube::Resource& r, std::string_view ns, std::string_view name,
                const kube::DeleteOptions&) override {
    std::lock_guard g(mu_);
    if (objects_.erase(Key(r, ns, name)) == 0) return kube::ApiError(404, "NotFound", "not found");
    return Status::Ok();
  }
  Status Watch(const kube::Resource&, std::string_view, const kube::WatchOptions&,
               const std::function<bool(kube::WatchEvent&&)>&, std::stop_token stop) override {
    while (!stop.stop_requested()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return Status(StatusCode::kCancelled, "stopped");
  }

  // Test controls and inspection.
  void Put(const kube::Resource& r, Json object) {
    std::lock_guard g(mu_);
    object["metadata"]["resourceVersion"] = std::to_string(++rv_);
    if (!object["metadata"].contains("generation")) object["metadata"]["generation"] = 1;
    objects_[Key(r, object["metadata"].value("namespace", ""),
                 object["metadata"].value("name", ""))] = object;
  }
  void SetUnreachable(bool unreachable) {
    std::lock_guard g(mu_);
    unreachable_ = unreachable;
  }
  int status_writes() const {
    std::lock_guard g(mu_);
    return status_writes_;
  }
  std::vector<Json> created(const std::string& kind) const {
    std::lock_guard g(mu_);
    std::vector<Json> out;
    for (const auto& o : created_)
      if (o.value("kind", "") == kind) out.push_back(o);
    return out;
  }

 private:
  static std::string Key(const kube::Resource& r, std::string_view ns, std::string_view name) {
    return r.plural + "|" + (r.namespaced ? std::string(ns) + "/" : "") + std::string(name);
  }
  Result<Json> Put(const kube::Resource& r, const Json& object, bool status) {
    std::lock_guard g(mu_);
    if (unreachable_) return UnavailableError("apiserver unreachable (fake)");
    auto it = objects_.find(
        Key(r, object["metadata"].value("namespace", ""), object["metadata"].value("name", "")));
    if (it == objects_.end()) return kube::ApiError(404, "NotFound", "not found");
    if (object["metadata"].value("resourceVersion", "") !=
        it->second["metadata"].value("resourceVersion", "")) {
      return kube::ApiError(409, "Conflict", "the object has been modified");
    }
    Json next = it->second;
    if (status) {
      next["status"] = object.value("status", Json::object());
      ++status_writes_;
    } else {
      next = object;
    }
    next["metadata"]["resourceVersion"] = std::to_string(++rv_);
    it->second = next;
    return next;
  }

  mutable std::mutex mu_;
  std::map<std::string, Json> objects_;
  std::vector<Json> created_;
  int64_t rv_ = 100;
  int status_writes_ = 0;
  bool unreachable_ = false;
};

}  // namespace strata::kube::testing
