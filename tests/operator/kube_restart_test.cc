// The informer across restarts of a real kube-apiserver (a private control plane: the restarts
// would disturb every other test of the shared one). Run by kube_restart_test.sh, which starts the
// control plane and passes STRATA_KUBECONFIG, STRATA_PRIVATE_TESTENV and STRATA_RESTART_APISERVER.
#include <gtest/gtest.h>

#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>

#include "kube_test_util.h"
#include "strata/common/env.h"
#include "strata/kube/errors.h"
#include "strata/kube/informer.h"

namespace strata::kube {
namespace {

using namespace std::chrono_literals;
using testing::ConfigMap;
using testing::ConnectOrDie;
using testing::PartitionableClient;
using testing::UniqueName;

std::string PrivateDir() {
  const char* dir = std::getenv("STRATA_PRIVATE_TESTENV");
  return dir == nullptr ? "" : dir;
}

void RestartApiserver(const std::string& extra_flags = "") {
  const char* script = std::getenv("STRATA_RESTART_APISERVER");
  ASSERT_NE(script, nullptr);
  ASSERT_FALSE(PrivateDir().empty());
  const std::string cmd = std::string("bash ") + script + " " + PrivateDir() + " 0 " + extra_flags;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

struct Recorder {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, int> adds, updates, deletes;
  EventHandlers Handlers() {
    auto name = [](const Json& o) { return o["metadata"]["name"].get<std::string>(); };
    return {[this, name](const Json& o) { Bump(adds, name(o)); },
            [this, name](const Json&, const Json& o) { Bump(updates, name(o)); },
            [this, name](const Json& o) { Bump(deletes, name(o)); }};
  }
  void Bump(std::map<std::string, int>& m, const std::string& n) {
    std::lock_guard g(mu);
    m[n]++;
    cv.notify_all();
  }
  template <typename Pred>
  bool WaitUntil(Pred pred, std::chrono::seconds timeout = 30s) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [&] { return pred(); });
  }
};

TEST(KubeRestartTest, InformerFollowsAcrossApiserverRestartsAndRelistsOn410) {
  auto client = ConnectOrDie();
  const Resource cm = resources::ConfigMaps();
  const std::string ns = UniqueName("restart");
  ASSERT_TRUE(
      client
          ->Create(resources::Namespaces(), "",
                   {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}})
          .ok());
  ASSERT_TRUE(client->Create(cm, ns, ConfigMap(ns, "stays")).ok());
  ASSERT_TRUE(client->Create(cm, ns, ConfigMap(ns, "goes")).ok());

  PartitionableClient net(client.get());
  Informer::Options io;
  io.namespace_ = ns;
  io.min_backoff = 100ms;
  io.max_backoff = 500ms;
  Informer informer(&net, cm, io);
  Recorder rec;
  informer.AddHandlers(rec.Handlers());
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(20s));
  const auto restarts0 = informer.stats().watch_restarts;

  // 1. The apiserver restarts under a live watch: the informer reconnects from its
  //    resourceVersion and sees changes made afterwards, each reported once.
  RestartApiserver();
  auto after = client->Create(cm, ns, ConfigMap(ns, "after-restart"));
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  ASSERT_TRUE(rec.WaitUntil([&] { return rec.adds["after-restart"] == 1; }))
      << "the informer did not follow the watch after the restart";
  EXPECT_GT(informer.stats().watch_restarts, restarts0);
  EXPECT_EQ(rec.adds["stays"], 1);
  EXPECT_EQ(rec.adds["goes"], 1);
  std::cout << "after a plain restart: lists=" << informer.stats().lists
            << " relists_on_gone=" << informer.stats().relists_on_gone << "\n";

  // 2. Changes while the informer is cut off, then a restart: the new apiserver's watch cache
  //    starts after the informer's resourceVersion, so resuming gets 410 Gone and the informer
  //    relists; the relist reports the delete and the add it missed.
  const auto gone0 = informer.stats().relists_on_gone;
  net.Partition();
  ASSERT_TRUE(client->Delete(cm, ns, "goes", {}).ok());
  ASSERT_TRUE(client->Create(cm, ns, ConfigMap(ns, "while-away")).ok());
  ASSERT_TRUE(
      client->Patch(cm, ns, "stays", PatchType::kMerge, {{"data", {{"x", "1"}}}}, false).ok());
  RestartApiserver();
  net.Heal();
  ASSERT_TRUE(rec.WaitUntil([&] {
    return rec.deletes["goes"] == 1 && rec.adds["while-away"] == 1 && rec.updates["stays"] == 1;
  })) << "missed changes were not recovered";
  EXPECT_GT(informer.stats().relists_on_gone, gone0) << "the resume must have met 410 Gone";
  EXPECT_FALSE(informer.store().Get(ns + "/goes").has_value());
  EXPECT_EQ(rec.adds["stays"], 1) << "a relist reports differences only";

  ASSERT_TRUE(client->Create(cm, ns, ConfigMap(ns, "later")).ok());
  ASSERT_TRUE(rec.WaitUntil([&] { return rec.adds["later"] == 1; }));
  informer.Stop();
  (void)client->Delete(resources::Namespaces(), "", ns, {});
}

TEST(KubeRestartTest, ClientCertificateAuthentication) {
  // The apiserver learns to trust client certificates from the control plane's CA; a kubeconfig
  // with client-certificate/client-key files (relative paths) then authenticates as system:masters.
  const std::string dir = PrivateDir();
  ASSERT_FALSE(dir.empty());
  RestartApiserver("--client-ca-file=" + dir + "/ca.crt");
  const std::string certs = dir + "/client-certs";
  const std::string make =
      "set -e; mkdir -p " + certs + "; cd " + certs +
      "; openssl req -new -newkey rsa:2048 -nodes -subj '/O=system:masters/CN=strata-cert-user'"
      " -keyout client.key -out client.csr 2>/dev/null"
      "; openssl x509 -req -in client.csr -CA ../ca.crt -CAkey ../ca.key -set_serial 0x1234"
      " -days 1 -out client.crt 2>/dev/null";
  ASSERT_EQ(std::system(make.c_str()), 0) << make;

  auto base = LoadKubeconfig(Env::Default(), dir + "/kubeconfig");
  ASSERT_TRUE(base.ok()) << base.status().ToString();
  const std::string kubeconfig = R"(apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: )" + base->server + R"(
    certificate-authority: ../ca.crt
users:
- name: u
  user:
    client-certificate: client.crt
    client-key: client.key
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
)";
  ASSERT_TRUE(Env::Default()->WriteFileAtomically(certs + "/kubeconfig", kubeconfig).ok());
  auto config = LoadKubeconfig(Env::Default(), certs + "/kubeconfig");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_TRUE(config->token.empty());
  auto client = NewHttpApiClient(*config, Env::Default());
  ASSERT_TRUE(client.ok());
  auto ns = (*client)->Get(resources::Namespaces(), "", "default");
  EXPECT_TRUE(ns.ok()) << ns.status().ToString();

  // Without the certificate the same client is anonymous, which RBAC refuses.
  ClientConfig anonymous = *config;
  anonymous.client_cert_pem.clear();
  anonymous.client_key_pem.clear();
  auto anon = NewHttpApiClient(anonymous, Env::Default());
  ASSERT_TRUE(anon.ok());
  auto refused = (*anon)->Get(resources::Namespaces(), "", "default");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(HttpCode(refused.status()), 403) << refused.status().ToString();
}

}  // namespace
}  // namespace strata::kube
