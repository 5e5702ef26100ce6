#pragma once

#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "strata/common/env.h"
#include "strata/common/result.h"

namespace strata::kube {

// How to reach and authenticate to an apiserver.
struct ClientConfig {
  std::string server;  // "https://10.96.0.1:443"
  std::string ca_pem;  // trusted CAs; empty = the system's
  bool insecure_skip_tls_verify = false;

  // Bearer token, fixed or read from `token_file`. A token file (the in-cluster service-account
  // token, which the kubelet rotates) is re-read at most every minute, and at once after a 401.
  std::string token;
  std::string token_file;

  std::string client_cert_pem;  // client-certificate authentication
  std::string client_key_pem;

  std::string default_namespace = "default";

  // Client-side limits for all requests except watches (controller-runtime's defaults).
  double qps = 20;
  int burst = 30;
  std::chrono::seconds request_timeout{30};
};

// A kubeconfig file: the current context (or `context`), its cluster and user. Supports server,
// certificate-authority[-data], insecure-skip-tls-verify, token, tokenFile,
// client-certificate[-data], client-key[-data]; relative file paths are relative to the
// kubeconfig's directory. Errors name the file and the missing or bad field.
Result<ClientConfig> LoadKubeconfig(Env* env, const std::string& path,
                                    const std::string& context = "");

// Several kubeconfig files merged as kubectl merges KUBECONFIG=a:b: clusters, users and contexts
// by name, each name from the first file that has it; current-context from the first file that
// sets it (`context`, when not empty, overrides it). Relative file paths in an entry are relative
// to the directory of the file the entry came from. Every file must exist (see
// LoadKubeconfigList). Errors name the file (or the list) and the missing or bad field.
Result<ClientConfig> LoadKubeconfigFiles(Env* env, const std::vector<std::string>& paths,
                                         const std::string& context = "");

// KUBECONFIG's value: colon-separated paths, empty ones dropped, a repeated one kept once.
std::vector<std::string> SplitKubeconfigList(std::string_view list);

// The files of a KUBECONFIG value merged (LoadKubeconfigFiles); files that do not exist are
// skipped as kubectl skips them, NOT_FOUND when none exists.
Result<ClientConfig> LoadKubeconfigList(Env* env, std::string_view list,
                                        const std::string& context = "");

// Inside a pod: KUBERNETES_SERVICE_HOST/PORT, the service account's token (as a token_file, so
// rotation is picked up), CA bundle and namespace under /var/run/secrets/kubernetes.io/
// serviceaccount. `getenv` is a seam for tests.
Result<ClientConfig> LoadInClusterConfig(
    Env* env, const std::function<const char*(const char*)>& getenv_fn = [](const char* n) {
      return std::getenv(n);
    });

// Decodes standard base64 (with or without padding, whitespace ignored).
Result<std::string> Base64Decode(std::string_view in);

}  // namespace strata::kube
