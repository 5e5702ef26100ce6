#include "strata/kube/config.h"

#include <gtest/gtest.h>

#include "strata/common/mem_env.h"

namespace strata::kube {
namespace {

constexpr const char* kKubeconfig = R"(apiVersion: v1
kind: Config
clusters:
- name: other
  cluster:
    server: https://other:6443
- name: test
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority-data: Q0EgUEVN
contexts:
- name: ctx
  context:
    cluster: test
    user: admin
    namespace: team-a
- name: certs
  context:
    cluster: other
    user: cert-user
current-context: ctx
users:
- name: admin
  user:
    token: "abc123"
- name: cert-user
  user:
    client-certificate: certs/client.crt
    client-key-data: S0VZ
)";

TEST(ConfigTest, KubeconfigCurrentContextWithToken) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirectories("/home/k").ok());
  ASSERT_TRUE(env.WriteFileAtomically("/home/k/config", kKubeconfig).ok());
  auto c = LoadKubeconfig(&env, "/home/k/config");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->server, "https://127.0.0.1:6443");
  EXPECT_EQ(c->ca_pem, "CA PEM");
  EXPECT_EQ(c->token, "abc123");
  EXPECT_EQ(c->default_namespace, "team-a");
  EXPECT_FALSE(c->insecure_skip_tls_verify);
}

TEST(ConfigTest, KubeconfigClientCertificateRelativeToTheFile) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirectories("/home/k/certs").ok());
  ASSERT_TRUE(env.WriteFileAtomically("/home/k/config", kKubeconfig).ok());
  ASSERT_TRUE(env.WriteFileAtomically("/home/k/certs/client.crt", "CERT").ok());
  auto c = LoadKubeconfig(&env, "/home/k/config", "certs");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->server, "https://other:6443");
  EXPECT_EQ(c->client_cert_pem, "CERT");
  EXPECT_EQ(c->client_key_pem, "KEY");
  EXPECT_EQ(c->default_namespace, "default");
}

TEST(ConfigTest, KubeconfigErrorsNameTheProblem) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirectories("/k").ok());
  ASSERT_TRUE(env.WriteFileAtomically("/k/config", kKubeconfig).ok());
  auto c = LoadKubeconfig(&env, "/k/config", "nope");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "/k/config: contexts: no entry named 'nope'");
  c = LoadKubeconfig(&env, "/k/config", "certs");  // certs/client.crt missing
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("user 'cert-user': client-certificate"), std::string::npos)
      << c.status().message();
  ASSERT_TRUE(env.WriteFileAtomically("/k/bad", "clusters: [\n").ok());
  c = LoadKubeconfig(&env, "/k/bad");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("/k/bad: yaml: line"), std::string::npos)
      << c.status().message();
}

// Found by fuzz/kubeconfig (fuzz/regressions/kubeconfig/insecure-skip-tls-verify-not-a-bool): a
// field of the wrong type threw out of LoadKubeconfig instead of failing it.
TEST(ConfigTest, KubeconfigInsecureSkipTlsVerifyMustBeABool) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirectories("/k").ok());
  ASSERT_TRUE(env.WriteFileAtomically("/k/config", R"(clusters:
- name: c
  cluster: {server: "https://h:6443", insecure-skip-tls-verify: "true"}
contexts:
- name: x
  context: {cluster: c}
current-context: x
)")
                  .ok());
  auto c = LoadKubeconfig(&env, "/k/config");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(
      c.status().message(),
      "/k/config: cluster 'c': insecure-skip-tls-verify: must be true or false, not \"true\"");
  ASSERT_TRUE(env.WriteFileAtomically("/k/config", R"(clusters:
- name: c
  cluster: {server: "https://h:6443", insecure-skip-tls-verify: true}
contexts:
- name: x
  context: {cluster: c}
current-context: x
)")
                  .ok());
  c = LoadKubeconfig(&env, "/k/config");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->insecure_skip_tls_verify);
}

// KUBECONFIG=a:b as kubectl merges it: the context in one file, its cluster and user in the
// other; the first file to name an entry or set current-context wins.
TEST(ConfigTest, KubeconfigListMergesLikeKubectl) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirectories("/a").ok());
  ASSERT_TRUE(env.CreateDirectories("/b/pki").ok());
  ASSERT_TRUE(env.WriteFileAtomically("/a/config", R"(apiVersion: v1
kind: Config
current-context: work
contexts:
- name: work
  context: {cluster: prod, user: ops, namespace: team-b}
clusters:
- name: prod
  cluster: {server: "https://first:6443"}
)")
                  .ok());
  ASSERT_TRUE(env.WriteFileAtomically("/b/config", R"(apiVersion: v1
kind: Config
current-context: other
contexts:
- name: work
  context: {cluster: ignored, user: ignored}
- name: other
  context: {cluster: prod, user: ops}
clusters:
- name: prod
  cluster: {server: "https://second:6443"}
users:
- name: ops
  user: {client-certificate: pki/ops.crt, client-key: pki/ops.key}
)")
                  .ok());
  ASSERT_TRUE(env.WriteFileAtomically("/b/pki/ops.crt", "CERT").ok());
  ASSERT_TRUE(env.WriteFileAtomically("/b/pki/ops.key", "KEY").ok());

  auto c = LoadKubeconfigList(&env, "/missing:/a/config::/b/config:/a/config");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->server, "https://first:6443") << "cluster prod from the first file naming it";
  EXPECT_EQ(c->default_namespace, "team-b") << "context work from /a, current-context from /a";
  EXPECT_EQ(c->client_cert_pem, "CERT") << "the user from /b, its paths relative to /b";
  EXPECT_EQ(c->client_key_pem, "KEY");

  // The other order: /b's current-context and entries win.
  c = LoadKubeconfigList(&env, "/b/config:/a/config");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->server, "https://second:6443");
  EXPECT_EQ(c->default_namespace, "default") << "context other has no namespace";

  // --context picks among the merged contexts.
  c = LoadKubeconfigList(&env, "/b/config:/a/config", "work");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "/b/config:/a/config: clusters: no entry named 'ignored'");

  // Only /a: no user ops anywhere.
  c = LoadKubeconfigList(&env, "/a/config");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "/a/config: users: no entry named 'ops'");

  c = LoadKubeconfigList(&env, "/nope:/also-nope");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(c.status().message(), "no file of KUBECONFIG=/nope:/also-nope exists");

  EXPECT_EQ(SplitKubeconfigList(":/x::/y:/x:"), (std::vector<std::string>{"/x", "/y"}));
}

TEST(ConfigTest, KubeconfigListEmptyFileAndUnsetContext) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirectories("/k").ok());
  ASSERT_TRUE(env.WriteFileAtomically("/k/empty", "").ok());
  ASSERT_TRUE(env.WriteFileAtomically("/k/config", kKubeconfig).ok());
  auto c = LoadKubeconfigList(&env, "/k/empty:/k/config");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->token, "abc123");
  c = LoadKubeconfigList(&env, "/k/empty");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "/k/empty: current-context is not set");
}

TEST(ConfigTest, InCluster) {
  MemEnv env;
  const std::string dir = "/var/run/secrets/kubernetes.io/serviceaccount";
  ASSERT_TRUE(env.CreateDirectories(dir).ok());
  ASSERT_TRUE(env.WriteFileAtomically(dir + "/token", "tok").ok());
  ASSERT_TRUE(env.WriteFileAtomically(dir + "/ca.crt", "CA").ok());
  ASSERT_TRUE(env.WriteFileAtomically(dir + "/namespace", "strata-system").ok());
  auto getenv_fn = [](const char* n) -> const char* {
    std::string name = n;
    if (name == "KUBERNETES_SERVICE_HOST") return "fd00::1";
    if (name == "KUBERNETES_SERVICE_PORT") return "443";
    return nullptr;
  };
  auto c = LoadInClusterConfig(&env, getenv_fn);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->server, "https://[fd00::1]:443");
  EXPECT_EQ(c->token_file, dir + "/token");
  EXPECT_EQ(c->ca_pem, "CA");
  EXPECT_EQ(c->default_namespace, "strata-system");

  auto outside = LoadInClusterConfig(&env, [](const char*) -> const char* { return nullptr; });
  ASSERT_FALSE(outside.ok());
  EXPECT_EQ(outside.status().code(), StatusCode::kFailedPrecondition);
}

TEST(ConfigTest, Base64) {
  EXPECT_EQ(*Base64Decode("aGVsbG8gd29ybGQ="), "hello world");
  EXPECT_EQ(*Base64Decode("aGVsbG8gd29ybGQ"), "hello world");
  EXPECT_FALSE(Base64Decode("a*b").ok());
}

}  // namespace
}  // namespace strata::kube
