#pragma once

// Shared by the tests that run against the real apiserver of the test control plane.

#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <stop_token>
#include <string>
#include <vector>

#include "strata/common/env.h"
#include "strata/kube/client.h"
#include "strata/kube/config.h"
#include "strata/kube/http_client.h"

namespace strata::kube::testing {

// The kubeconfig CTest passes in STRATA_KUBECONFIG (DIR/kubeconfig of kube-testenv.sh).
inline std::unique_ptr<ApiClient> ConnectOrDie(ClientConfig* out_config = nullptr) {
  const char* path = std::getenv("STRATA_KUBECONFIG");
  if (path == nullptr) {
    ADD_FAILURE() << "STRATA_KUBECONFIG is not set";
    std::abort();
  }
  auto config = LoadKubeconfig(Env::Default(), path);
  if (!config.ok()) {
    ADD_FAILURE() << config.status().ToString();
    std::abort();
  }
  config->qps = 200;
  config->burst = 400;
  if (out_config != nullptr) *out_config = *config;
  auto client = NewHttpApiClient(*config, Env::Default());
  if (!client.ok()) {
    ADD_FAILURE() << client.status().ToString();
    std::abort();
  }
  return std::move(*client);
}

// A name no other run uses, so reruns against one control plane do not collide.
inline std::string UniqueName(const std::string& prefix) {
  static std::mt19937_64 rng(std::random_device{}());
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08llx", static_cast<unsigned long long>(rng() & 0xffffffff));
  return prefix + "-" + buf;
}

inline Json ConfigMap(const std::string& ns, const std::string& name, Json data = Json::object()) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"data", std::move(data)}};
}

inline Json StorageDevice(const std::string& name, const std::string& endpoint) {
  return {{"apiVersion", "strata.io/v1alpha1"},
          {"kind", "StorageDevice"},
          {"metadata", {{"name", name}}},
          {"spec",
           {{"endpoint", endpoint},
            {"tiers", Json::array({{{"class", "ssd"}, {"capacityBytes", 1073741824}}})}}}};
}

// Forwards to the real client, except that watches can be cut and held off: a network partition
// between the informer and an apiserver that keeps running (and keeps changing).
class PartitionableClient : public ApiClient {
 public:
  explicit PartitionableClient(ApiClient* real) : real_(real) {}

  void Partition() {
    std::lock_guard g(mu_);
    partitioned_ = true;
    for (auto* s : active_) s->request_stop();
  }
  void Heal() {
    std::lock_guard g(mu_);
    partitioned_ = false;
  }

  Result<Json> Get(const Resource& r, std::string_view ns, std::string_view n) override {
    return real_->Get(r, ns, n);
  }
  Result<ListPage> List(const Resource& r, std::string_view ns, const ListOptions& o) override {
    std::unique_lock lock(mu_);
    if (partitioned_) return UnavailableError("partitioned");
    lock.unlock();
    return real_->List(r, ns, o);
  }
  Result<Json> Create(const Resource& r, std::string_view ns, const Json& o) override {
    return real_->Create(r, ns, o);
  }
  Result<Json> Update(const Resource& r, const Json& o) override { return real_->Update(r, o); }
  Result<Json> UpdateStatus(const Resource& r, const Json& o) override {
    return real_->UpdateStatus(r, o);
  }
  Result<Json> Patch(const Resource& r, std::string_view ns, std::string_view n, PatchType t,
                     const Json& p, bool s) override {
    return real_->Patch(r, ns, n, t, p, s);
  }
  Status Delete(const Resource& r, std::string_view ns, std::string_view n,
                const DeleteOptions& o) override {
    return real_->Delete(r, ns, n, o);
  }
  Status Watch(const Resource& r, std::string_view ns, const WatchOptions& o,
               const std::function<bool(WatchEvent&&)>& on_event, std::stop_token stop) override {
    std::stop_source inner;
    std::stop_callback forward(stop, [&inner] { inner.request_stop(); });
    {
      std::lock_guard g(mu_);
      if (partitioned_) return UnavailableError("partitioned");
      active_.insert(&inner);
      watch_rvs_.push_back(o.resource_version);
    }
    Status st = real_->Watch(r, ns, o, on_event, inner.get_token());
    std::lock_guard g(mu_);
    active_.erase(&inner);
    if (!stop.stop_requested() && st.code() == StatusCode::kCancelled) {
      return UnavailableError("connection reset (partition)");
    }
    return st;
  }

  std::vector<std::string> watch_rvs() {
    std::lock_guard g(mu_);
    return watch_rvs_;
  }

 private:
  ApiClient* const real_;
  std::mutex mu_;
  bool partitioned_ = false;
  std::set<std::stop_source*> active_;
  std::vector<std::string> watch_rvs_;
};

}  // namespace strata::kube::testing
