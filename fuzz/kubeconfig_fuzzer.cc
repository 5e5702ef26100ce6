// kubeconfig files (libs/kube config.cc, over the YAML reader): the input is a kubeconfig,
// loaded alone, then merged after a valid one as KUBECONFIG=a:b merges, on an in-memory file
// system that holds the files a kubeconfig names relative to its directory (certs/, token).
// Also Base64Decode and SplitKubeconfigList on the raw input. Beyond "no crash": every error
// says something.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "strata/common/mem_env.h"
#include "strata/kube/config.h"

namespace {

constexpr const char* kValid = R"(apiVersion: v1
kind: Config
clusters:
- name: base
  cluster:
    server: https://10.96.0.1:443
    certificate-authority: certs/ca.crt
contexts:
- name: base
  context:
    cluster: base
    user: base
current-context: base
users:
- name: base
  user:
    tokenFile: token
)";

void CheckError(const strata::Status& st) {
  if (!st.ok() && st.message().empty()) {
    std::fprintf(stderr, "kubeconfig_fuzzer: an error without a message\n");
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  strata::MemEnv env;
  for (const char* dir : {"/k/certs", "/base/certs"}) (void)env.CreateDirectories(dir);
  for (const char* dir : {"/k", "/base"}) {
    std::string d(dir);
    (void)env.WriteFileAtomically(d + "/certs/ca.crt", "CA PEM");
    (void)env.WriteFileAtomically(d + "/certs/client.crt", "CERT PEM");
    (void)env.WriteFileAtomically(d + "/certs/client.key", "KEY PEM");
    (void)env.WriteFileAtomically(d + "/token", "token-abc");
  }
  (void)env.WriteFileAtomically("/base/config", kValid);
  (void)env.WriteFileAtomically("/k/config", text);

  CheckError(strata::kube::LoadKubeconfig(&env, "/k/config").status());
  CheckError(strata::kube::LoadKubeconfig(&env, "/k/config", "base").status());
  CheckError(strata::kube::LoadKubeconfigList(&env, "/k/config:/base/config").status());
  CheckError(strata::kube::LoadKubeconfigList(&env, "/base/config:/k/config").status());
  CheckError(strata::kube::Base64Decode(text).status());
  (void)strata::kube::SplitKubeconfigList(text);
  return 0;
}
