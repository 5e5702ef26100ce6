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
