#pragma once

// Shared by the tests that run against the real apiserver of the test control plane.

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <random>
#include <string>

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

}  // namespace strata::kube::testing
