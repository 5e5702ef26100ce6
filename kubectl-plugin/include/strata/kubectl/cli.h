#pragma once

#include <chrono>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "strata/common/env.h"
#include "strata/common/result.h"
#include "strata/device/channel.h"
#include "strata/kube/client.h"
#include "strata/kube/config.h"
#include "strata/kubectl/format.h"
#include "strata/kubectl/lun_locator.h"

namespace strata::kubectl {

// Exit codes as kubectl's: 1 when the command failed, 2 when the command line is wrong.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

enum class OutputFormat { kTable, kJson, kYaml };

// The command line, flags anywhere among the words (as kubectl and cobra accept them).
struct Options {
  std::vector<std::string> args;  // the words that are not flags: command, subcommand, operands

  // Connection, as kubectl's.
  std::string kubeconfig;
  std::string context;
  std::string namespace_;  // empty: the context's
  bool all_namespaces = false;

  OutputFormat output = OutputFormat::kTable;
  std::string selector;  // -l: a label selector for the listed objects

  // The devices' management API (docs/security.md), for the commands that ask devices (volumes):
  // mutual TLS with these PEM files, or plaintext with --insecure; one or the other.
  std::string tls_cert;  // --tls-cert: this client's certificate chain (tls.crt)
  std::string tls_key;   // --tls-key: its key (tls.key)
  std::string tls_ca;    // --tls-ca: the CA the devices' server certificates chain to (ca.crt)
  std::string tls_crl;   // --tls-crl: revocation lists for those certificates (PEM)
  bool insecure = false;

  // maintenance
  std::string reason;
  std::string duration = "24h";
  std::string timeout = "30m";
  bool no_restore = false;
  bool wait = false;
  bool help = false;

  // Not a flag: whether stdout is a terminal (progress redraws in place), set by main().
  bool interactive = false;
};

// Parses argv[1..]. INVALID_ARGUMENT naming the flag for an unknown flag, a missing value or a
// bad -o (exit kExitUsage).
Result<Options> ParseArgs(const std::vector<std::string>& argv);

using GetenvFn = std::function<const char*(const char*)>;

// The kubeconfig rules of kubectl: --kubeconfig; else the existing files of the colon-separated
// KUBECONFIG merged as kubectl merges them (kube::LoadKubeconfigList); else ~/.kube/config when it
// exists; else the in-cluster service account. --context picks the
// context. Errors name the file or what is missing.
Result<kube::ClientConfig> ResolveClientConfig(const Options& options, Env* env,
                                               const GetenvFn& getenv_fn);

// What a command runs with. The API client is made on first use, so that a usage error is
// reported before any connection is tried.
class Context {
 public:
  using ClientFactory =
      std::function<Result<std::unique_ptr<kube::ApiClient>>(const kube::ClientConfig&)>;

  // Makes the locator with how to reach the devices (main(): device::SetClientTls, once).
  using LocatorFactory = std::function<std::unique_ptr<LunLocator>(const device::ClientTls&)>;

  Context(Options options, std::ostream& out, std::ostream& err, Env* env, GetenvFn getenv_fn,
          ClientFactory factory, LocatorFactory locator_factory = nullptr);

  const Options& options() const { return options_; }
  std::ostream& out() { return out_; }
  std::ostream& err() { return err_; }
  WallTime Now() const { return std::chrono::system_clock::now(); }

  // The API client; the error names the kubeconfig problem.
  Result<kube::ApiClient*> Client();
  // How to ask the devices where a LUN lives; nullptr when this context has no way to.
  // INVALID_ARGUMENT naming the flag when --tls-cert/--tls-key/--tls-ca and --insecure do not
  // choose one way to reach them (device::ClientTlsFromFlags), checked before any device is dialed.
  Result<LunLocator*> Locator();
  // The namespace: -n, else the context's (after Client() has loaded the config), else "default".
  Result<std::string> Namespace();

  // Prints "error: MESSAGE" and returns kExitFailure / kExitUsage (with a hint at --help).
  int Fail(const std::string& message);
  int Fail(const Status& status) { return Fail(status.message()); }
  int UsageFail(const std::string& message, const std::string& command);

  // Writes `value` as JSON (indented) or YAML per -o; the table format is the caller's.
  void PrintStructured(const Json& value);

 private:
  Result<kube::ClientConfig*> Config();

  Options options_;
  std::ostream& out_;
  std::ostream& err_;
  Env* env_;
  GetenvFn getenv_;
  ClientFactory factory_;
  LocatorFactory locator_factory_;
  std::unique_ptr<LunLocator> locator_;
  std::unique_ptr<kube::ClientConfig> config_;
  std::unique_ptr<kube::ApiClient> client_;
};

// A "List" of objects as `kubectl get -o json` prints several.
Json ListOf(std::vector<Json> items);

// The value at a JSON pointer ("/status/phase") as text: strings as they are, numbers and booleans
// as JSON, "" when absent or null.
std::string Text(const Json& object, std::string_view pointer);

// An API error as a person reads it: the API's message without the "HTTP 404 Not Found: " prefix.
std::string ApiMessage(const Status& status);

// Command groups (one file each). `args` are the words after the group's name.
int RunMaintenance(Context& ctx, const std::vector<std::string>& args);
int RunDevices(Context& ctx, const std::vector<std::string>& args);
int RunVolumes(Context& ctx, const std::vector<std::string>& args);
int RunUsage(Context& ctx, const std::vector<std::string>& args);

// The whole program behind main(): dispatches on the first word.
int Run(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err, Env* env,
        const GetenvFn& getenv_fn, const Context::ClientFactory& factory,
        const Context::LocatorFactory& locator_factory, bool interactive);

}  // namespace strata::kubectl
