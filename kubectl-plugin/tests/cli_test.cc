#include "strata/kubectl/cli.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "strata/common/mem_env.h"
#include "strata/kube/testing/fake_api_client.h"

namespace strata::kubectl {
namespace {

using kube::testing::FakeApiClient;

TEST(ParseArgs, FlagsAnywhere) {
  auto o = ParseArgs({"-n", "team-a", "volumes", "-ojson", "--context=prod", "--kubeconfig", "k"});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->args, std::vector<std::string>{"volumes"});
  EXPECT_EQ(o->namespace_, "team-a");
  EXPECT_EQ(o->output, OutputFormat::kJson);
  EXPECT_EQ(o->context, "prod");
  EXPECT_EQ(o->kubeconfig, "k");

  o = ParseArgs({"volumes", "--tls-cert", "c.crt", "--tls-key=c.key", "--tls-ca", "ca.crt"});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->tls_cert, "c.crt");
  EXPECT_EQ(o->tls_key, "c.key");
  EXPECT_EQ(o->tls_ca, "ca.crt");
  EXPECT_FALSE(o->insecure);
  o = ParseArgs({"--insecure", "volumes"});
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(o->insecure);
  EXPECT_FALSE(ParseArgs({"volumes", "--insecure=yes"}).ok());

  o = ParseArgs({"maintenance", "start", "dev-a", "--reason", "fw 2.1", "--no-restore", "--wait",
                 "--timeout", "5m", "-o", "yaml"});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->args, (std::vector<std::string>{"maintenance", "start", "dev-a"}));
  EXPECT_EQ(o->reason, "fw 2.1");
  EXPECT_TRUE(o->no_restore);
  EXPECT_TRUE(o->wait);
  EXPECT_EQ(o->timeout, "5m");
  EXPECT_EQ(o->output, OutputFormat::kYaml);
}

TEST(ParseArgs, UsageErrorsNameTheFlag) {
  auto o = ParseArgs({"devices", "-o", "xml"});
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.status().message().find("\"xml\""), std::string::npos);
  o = ParseArgs({"devices", "--colour"});
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.status().message().find("--colour"), std::string::npos);
  o = ParseArgs({"devices", "-n"});
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.status().message().find("-n needs a value"), std::string::npos);
  EXPECT_FALSE(ParseArgs({"usage", "-A", "-n", "x"}).ok());
  EXPECT_FALSE(ParseArgs({"usage", "--wait=yes"}).ok());
}

constexpr char kKubeconfig[] = R"(apiVersion: v1
kind: Config
current-context: a
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: t}
contexts:
- name: a
  context: {cluster: c, user: u, namespace: team-a}
- name: b
  context: {cluster: c, user: u}
)";

class ResolveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(env_.CreateDirectories("/home/me/.kube").ok());
    ASSERT_TRUE(env_.CreateDirectories("/cfg").ok());
    ASSERT_TRUE(env_.WriteFileAtomically("/cfg/one", kKubeconfig).ok());
  }
  GetenvFn Getenv() {
    return [this](const char* n) -> const char* {
      auto it = vars_.find(n);
      return it == vars_.end() ? nullptr : it->second.c_str();
    };
  }
  MemEnv env_;
  std::map<std::string, std::string> vars_;
};

TEST_F(ResolveTest, FirstExistingFileOfKubeconfigAndContext) {
  vars_["KUBECONFIG"] = "/missing:/cfg/one:/also";
  Options o;
  auto c = ResolveClientConfig(o, &env_, Getenv());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->default_namespace, "team-a");
  o.context = "b";
  c = ResolveClientConfig(o, &env_, Getenv());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->default_namespace, "default");
}

TEST_F(ResolveTest, KubeconfigFilesAreMerged) {
  // The context in one file, the cluster and user it names in the other (kubectl merges them).
  ASSERT_TRUE(env_.WriteFileAtomically("/cfg/ctx", R"(current-context: merged
contexts:
- name: merged
  context: {cluster: c, user: u, namespace: team-m}
)")
                  .ok());
  vars_["KUBECONFIG"] = "/cfg/ctx:/cfg/one";
  auto c = ResolveClientConfig(Options{}, &env_, Getenv());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->default_namespace, "team-m");
  EXPECT_EQ(c->server, "https://127.0.0.1:6443");
}

TEST_F(ResolveTest, HomeConfigThenInClusterThenAClearError) {
  vars_["HOME"] = "/home/me";
  Options o;
  auto c = ResolveClientConfig(o, &env_, Getenv());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("no kubeconfig"), std::string::npos);
  ASSERT_TRUE(env_.WriteFileAtomically("/home/me/.kube/config", kKubeconfig).ok());
  c = ResolveClientConfig(o, &env_, Getenv());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->server, "https://127.0.0.1:6443");
}

// Hands the test's fake to Run() through the client factory.
class Forwarding : public kube::ApiClient {
 public:
  explicit Forwarding(FakeApiClient* fake) : fake_(fake) {}
  Result<Json> Get(const kube::Resource& r, std::string_view ns, std::string_view n) override {
    return fake_->Get(r, ns, n);
  }
  Result<kube::ListPage> List(const kube::Resource& r, std::string_view ns,
                              const kube::ListOptions& o) override {
    return fake_->List(r, ns, o);
  }
  Result<Json> Create(const kube::Resource& r, std::string_view ns, const Json& o) override {
    return fake_->Create(r, ns, o);
  }
  Result<Json> Update(const kube::Resource& r, const Json& o) override {
    return fake_->Update(r, o);
  }
  Result<Json> UpdateStatus(const kube::Resource& r, const Json& o) override {
    return fake_->UpdateStatus(r, o);
  }
  Result<Json> Patch(const kube::Resource& r, std::string_view ns, std::string_view n,
                     kube::PatchType t, const Json& p, bool s) override {
    return fake_->Patch(r, ns, n, t, p, s);
  }
  Status Delete(const kube::Resource& r, std::string_view ns, std::string_view n,
                const kube::DeleteOptions& o) override {
    return fake_->Delete(r, ns, n, o);
  }
  Status Watch(const kube::Resource& r, std::string_view ns, const kube::WatchOptions& o,
               const std::function<bool(kube::WatchEvent&&)>& f, std::stop_token s) override {
    return fake_->Watch(r, ns, o, f, std::move(s));
  }

 private:
  FakeApiClient* fake_;
};

// Says every LUN asked of 127.0.0.1:1 moved to 127.0.0.1:2 (sata); other addresses do not answer.
class FakeLocator : public LunLocator {
 public:
  Result<LiveLun> Locate(const std::string& address, const std::string&) override {
    if (address != "127.0.0.1:1") return UnavailableError(address + ": connection refused");
    return LiveLun{
        .address = "127.0.0.1:2", .tier = "sata", .portals = {"10.0.0.2:10809"}, .moves = 1};
  }
};

class RunTest : public ::testing::Test {
 protected:
  int Run(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    args.insert(args.end(), {"--kubeconfig", "/cfg/one"});
    return kubectl::Run(
        args, out_, err_, &env_, [](const char*) -> const char* { return nullptr; },
        [this](const kube::ClientConfig&) -> Result<std::unique_ptr<kube::ApiClient>> {
          return std::unique_ptr<kube::ApiClient>(std::make_unique<Forwarding>(&fake_));
        },
        [this](const device::ClientTls& tls) {
          ++locators_made_;
          tls_ = tls;
          return std::make_unique<FakeLocator>();
        },
        false);
  }
  void SetUp() override {
    ASSERT_TRUE(env_.CreateDirectories("/cfg").ok());
    ASSERT_TRUE(env_.WriteFileAtomically("/cfg/one", kKubeconfig).ok());
    fake_.Put(
        kube::resources::StorageDevices(),
        {{"metadata", {{"name", "dev-a"}}},
         {"spec", {{"region", "eu-west-1"}, {"tiers", {{{"class", "ssd"}}}}}},
         {"status",
          {{"phase", "Online"},
           {"lunCount", 2},
           {"tiers",
            {{{"class", "ssd"}, {"capacityBytes", 10LL << 30}, {"usedBytes", 1LL << 30}}}}}}});
  }
  MemEnv env_;
  FakeApiClient fake_;
  std::ostringstream out_, err_;
  int locators_made_ = 0;
  device::ClientTls tls_;  // what the last locator was made with
};

TEST_F(RunTest, DevicesTable) {
  ASSERT_EQ(Run({"devices"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(),
            "NAME    STATE    REGION      JURISDICTION   LUNS   SSD          SAS   SATA\n"
            "dev-a   Online   eu-west-1   <none>         2      1GiB/10GiB   -     -\n");
}

TEST_F(RunTest, StartLabelsTheDeviceAndCreatesTheWindow) {
  ASSERT_EQ(
      Run({"maintenance", "start", "dev-a", "--reason", "fw", "--no-restore", "--duration", "2h"}),
      kExitOk)
      << err_.str();
  auto windows = fake_.created("MaintenanceWindow");
  ASSERT_EQ(windows.size(), 1u);
  const Json& w = windows[0];
  EXPECT_TRUE(w["metadata"]["name"].get<std::string>().starts_with("maint-dev-a-"));
  EXPECT_EQ(w["metadata"]["annotations"]["strata.io/reason"], "fw");
  EXPECT_EQ(w["spec"]["deviceSelector"]["matchLabels"]["strata.io/device"], "dev-a");
  EXPECT_EQ(w["spec"]["schedule"]["duration"], "2h");
  EXPECT_EQ(w["spec"]["restore"], false);
  auto device = fake_.Get(kube::resources::StorageDevices(), "", "dev-a");
  EXPECT_EQ((*device)["metadata"]["labels"]["strata.io/device"], "dev-a");
  EXPECT_EQ(out_.str(), "maintenancewindow.strata.io/" + w["metadata"]["name"].get<std::string>() +
                            " created\n");

  // A second window for the same device is refused; finish by device name finds the first.
  EXPECT_EQ(Run({"maintenance", "start", "dev-a"}), kExitFailure);
  EXPECT_NE(err_.str().find("already has maintenance window"), std::string::npos) << err_.str();
  ASSERT_EQ(Run({"maintenance", "finish", "dev-a"}), kExitOk) << err_.str();
  auto after = fake_.Get(kube::resources::MaintenanceWindows(), "",
                         w["metadata"]["name"].get<std::string>());
  EXPECT_EQ((*after)["spec"]["finish"], true);
}

TEST_F(RunTest, VolumesFollowTheLunToItsDeviceNow) {
  fake_.Put(kube::resources::StorageDevices(),
            {{"metadata", {{"name", "dev-x"}}}, {"spec", {{"endpoint", "127.0.0.1:1"}}}});
  fake_.Put(kube::resources::StorageDevices(),
            {{"metadata", {{"name", "dev-y"}}}, {"spec", {{"endpoint", "127.0.0.1:2"}}}});
  fake_.Put(kube::resources::StorageDevices(),
            {{"metadata", {{"name", "dev-z"}}}, {"spec", {{"endpoint", "127.0.0.1:3"}}}});
  auto pv = [&](const std::string& name, const std::string& handle) {
    fake_.Put(kube::resources::PersistentVolumes(),
              {{"metadata", {{"name", name}}},
               {"spec",
                {{"capacity", {{"storage", "1Gi"}}},
                 {"csi", {{"driver", "block.csi.strata.io"}, {"volumeHandle", handle}}}}}});
  };
  auto pvc = [&](const std::string& name, const std::string& volume) {
    fake_.Put(kube::resources::PersistentVolumeClaims(),
              {{"metadata", {{"name", name}, {"namespace", "team-a"}}},
               {"spec", {{"volumeName", volume}}},
               {"status", {{"phase", "Bound"}}}});
  };
  pv("pv-1", "dev-x/lun-1");
  pvc("moved", "pv-1");
  pv("pv-2", "dev-z/lun-2");
  pvc("silent", "pv-2");
  ASSERT_EQ(Run({"volumes", "--insecure"}), kExitOk) << err_.str();  // the context's: team-a
  EXPECT_EQ(locators_made_, 1);
  EXPECT_TRUE(tls_.insecure);
  EXPECT_EQ(out_.str(),
            "NAME     STATUS   VOLUME   CAPACITY   DEVICE               LUN     TIER   PORTALS\n"
            "moved    Bound    pv-1     1Gi        dev-y (from dev-x)   lun-1   sata   "
            "10.0.0.2:10809\n"
            "silent   Bound    pv-2     1Gi        dev-z                lun-2   ?      ?\n");
  EXPECT_EQ(err_.str(),
            "warning: storagedevice dev-z (127.0.0.1:3): 127.0.0.1:3: connection refused\n");
}

// volumes dials the devices: TLS or --insecure must be chosen, checked before any call (exit 2,
// naming the flag); commands that only talk to the API server need neither.
TEST_F(RunTest, VolumesNeedsTlsOrInsecure) {
  EXPECT_EQ(Run({"volumes"}), kExitUsage);
  EXPECT_NE(err_.str().find("error: --tls-ca: is required"), std::string::npos) << err_.str();
  EXPECT_NE(err_.str().find("only with an explicit --insecure"), std::string::npos) << err_.str();
  EXPECT_NE(err_.str().find("See 'kubectl strata volumes --help'"), std::string::npos);
  EXPECT_EQ(out_.str(), "");

  EXPECT_EQ(Run({"volumes", "--insecure", "--tls-ca", "/x/ca.crt"}), kExitUsage);
  EXPECT_NE(err_.str().find(
                "--insecure: cannot be combined with --tls-cert, --tls-key, --tls-ca or --tls-crl"),
            std::string::npos)
      << err_.str();
  EXPECT_EQ(Run({"volumes", "--tls-ca=/x/ca.crt", "--tls-cert", "/x/tls.crt"}), kExitUsage);
  EXPECT_NE(err_.str().find("--tls-key: is required with --tls-cert"), std::string::npos)
      << err_.str();
  EXPECT_EQ(Run({"volumes", "--tls-ca", "/nonexistent/ca.crt"}), kExitUsage);
  EXPECT_NE(err_.str().find("--tls-ca: cannot read '/nonexistent/ca.crt'"), std::string::npos)
      << err_.str();
  EXPECT_EQ(locators_made_, 0);

  // A readable CA (the files are read by gRPC later; here only that they can be opened).
  const std::string dir = ::testing::TempDir();
  const std::string ca = dir + "/kubectl_strata_ca.crt";
  { std::ofstream(ca) << "not checked here\n"; }
  EXPECT_EQ(Run({"volumes", "--tls-ca", ca, "--tls-cert", ca, "--tls-key", ca}), kExitOk)
      << err_.str();
  EXPECT_EQ(locators_made_, 1);
  EXPECT_FALSE(tls_.insecure);
  EXPECT_EQ(tls_.ca_file, ca);
  EXPECT_EQ(tls_.cert_file, ca);
  EXPECT_EQ(tls_.key_file, ca);
  std::remove(ca.c_str());

  EXPECT_EQ(Run({"devices"}), kExitOk) << err_.str();
}

// A recurring window between occurrences: status shows the next start and the history;
// status --wait is settled at once (its last occurrence Completed: 0, Failed: 1); finish has
// nothing to end.
TEST_F(RunTest, RecurringWindowStatusWaitAndFinish) {
  Json w = {{"apiVersion", "strata.io/v1alpha1"},
            {"kind", "MaintenanceWindow"},
            {"metadata", {{"name", "nightly"}, {"creationTimestamp", "2030-01-01T00:00:00Z"}}},
            {"spec",
             {{"deviceSelector", {{"matchLabels", {{"strata.io/device", "dev-a"}}}}},
              {"schedule",
               {{"start", "2030-01-01T02:00:00Z"}, {"duration", "1h"}, {"recurrence", "Daily"}}}}},
            {"status",
             {{"phase", "Pending"},
              {"nextStart", "2030-01-03T02:00:00Z"},
              {"occurrences", 2},
              {"lastCompleted", "2030-01-02T03:00:00Z"},
              {"history",
               {{{"start", "2030-01-02T02:00:00Z"},
                 {"end", "2030-01-02T03:00:00Z"},
                 {"result", "Completed"}},
                {{"start", "2030-01-01T02:00:00Z"},
                 {"end", "2030-01-01T02:20:00Z"},
                 {"result", "Failed"},
                 {"message", "a LUN could not be moved"}}}}}}};
  fake_.Put(kube::resources::MaintenanceWindows(), w);
  ASSERT_EQ(Run({"maintenance", "status", "nightly"}), kExitOk) << err_.str();
  EXPECT_NE(out_.str().find("Recurrence:   Daily\n"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("Next start:   2030-01-03T02:00:00Z\n"), std::string::npos);
  EXPECT_NE(out_.str().find("Occurrences:  2 run, last completed 2030-01-02T03:00:00Z\n"),
            std::string::npos);
  EXPECT_NE(out_.str().find("2030-01-01T02:00:00Z   2030-01-01T02:20:00Z   Failed      a LUN"),
            std::string::npos)
      << out_.str();
  ASSERT_EQ(Run({"maintenance", "status"}), kExitOk) << err_.str();
  EXPECT_NE(out_.str().find("NEXT START"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("2030-01-03T02:00:00Z"), std::string::npos) << out_.str();

  ASSERT_EQ(Run({"maintenance", "status", "nightly", "--wait", "--timeout", "5s"}), kExitOk)
      << err_.str();
  EXPECT_EQ(out_.str(),
            "nightly: Pending  next start 2030-01-03T02:00:00Z (last: 2030-01-02T02:00:00Z "
            "Completed)\n");

  EXPECT_EQ(Run({"maintenance", "finish", "nightly"}), kExitFailure);
  EXPECT_NE(err_.str().find("no occurrence is under way (the next starts 2030-01-03T02:00:00Z)"),
            std::string::npos)
      << err_.str();

  w["status"]["history"].erase(0);
  fake_.Put(kube::resources::MaintenanceWindows(), w);
  EXPECT_EQ(Run({"maintenance", "status", "nightly", "--wait", "--timeout", "5s"}), kExitFailure);
  EXPECT_NE(err_.str().find("the occurrence at 2030-01-01T02:00:00Z ended Failed: a LUN could "
                            "not be moved"),
            std::string::npos)
      << err_.str();
  EXPECT_EQ(Run({"maintenance", "status", "--wait"}), kExitUsage);
}

TEST_F(RunTest, ErrorsAndExitCodes) {
  EXPECT_EQ(Run({"maintenance", "start", "nope"}), kExitFailure);
  EXPECT_EQ(err_.str(), "error: storagedevice \"nope\" not found\n");
  EXPECT_EQ(Run({"maintenance", "abort", "nope"}), kExitFailure);
  EXPECT_NE(err_.str().find("no maintenance window named \"nope\""), std::string::npos);
  EXPECT_EQ(Run({"maintenance", "start"}), kExitUsage);
  EXPECT_EQ(Run({"maintenance", "start", "dev-a", "--duration", "1d"}), kExitUsage);
  EXPECT_EQ(Run({"devices", "-o", "xml"}), kExitUsage);
  EXPECT_EQ(Run({"frobnicate"}), kExitUsage);
  EXPECT_EQ(Run({"usage", "-n", "empty"}), kExitFailure);
  EXPECT_NE(err_.str().find("no UsageReport in namespace \"empty\""), std::string::npos);
}

}  // namespace
}  // namespace strata::kubectl
