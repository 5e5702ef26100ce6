#include "strata/kubectl/cli.h"

#include <ostream>

#include "strata/kube/errors.h"

namespace strata::kubectl {
namespace {

constexpr char kUsage[] = R"(kubectl strata: Strata storage from kubectl.

Commands:
  maintenance start DEVICE [--reason TEXT] [--duration DUR] [--no-restore] [--wait] [--timeout DUR]
  maintenance finish NAME|DEVICE [--wait] [--timeout DUR]
  maintenance abort NAME|DEVICE [--wait] [--timeout DUR]
  maintenance status [NAME] [-l SELECTOR]
  maintenance status NAME --wait [--timeout DUR]   until InMaintenance, Completed, Failed, Aborted
                                                   (recurring: Pending after an occurrence)
  devices [-l SELECTOR]
  volumes [-n NAMESPACE | -A]
  usage [-n NAMESPACE | -A]

Flags (anywhere on the line):
  --kubeconfig PATH    the kubeconfig (default: $KUBECONFIG's files merged, ~/.kube/config, in-cluster)
  --context NAME       the kubeconfig context (default: its current-context)
  -n, --namespace NS   the namespace (default: the context's)
  -A, --all-namespaces every namespace (volumes, usage)
  -o, --output FORMAT  table (default), json or yaml
  -l, --selector SEL   a label selector (devices, maintenance status)
  --tls-cert FILE      client certificate (tls.crt) for the devices' management API (volumes)
  --tls-key FILE       its private key (tls.key)
  --tls-ca FILE        CA bundle (ca.crt) the devices' server certificates must chain to
  --tls-crl FILE       revocation lists (PEM) the devices' server certificates are checked against
  --insecure           plaintext to the devices instead (volumes needs TLS or this)
  -h, --help           this text
)";

}  // namespace

Result<Options> ParseArgs(const std::vector<std::string>& argv) {
  Options o;
  // Flags that take a value, and where it goes.
  auto value_flag = [&](std::string_view name) -> std::string* {
    if (name == "--kubeconfig") return &o.kubeconfig;
    if (name == "--context") return &o.context;
    if (name == "-n" || name == "--namespace") return &o.namespace_;
    if (name == "-l" || name == "--selector") return &o.selector;
    if (name == "--reason") return &o.reason;
    if (name == "--duration") return &o.duration;
    if (name == "--timeout") return &o.timeout;
    if (name == "--tls-cert") return &o.tls_cert;
    if (name == "--tls-key") return &o.tls_key;
    if (name == "--tls-ca") return &o.tls_ca;
    if (name == "--tls-crl") return &o.tls_crl;
    return nullptr;
  };
  std::string output = "table";
  bool only_args = false;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& word = argv[i];
    if (only_args || word.size() < 2 || word[0] != '-') {
      o.args.push_back(word);
      continue;
    }
    if (word == "--") {
      only_args = true;
      continue;
    }
    std::string name = word;
    std::optional<std::string> value;
    if (auto eq = word.find('='); eq != std::string::npos && word.starts_with("--")) {
      name = word.substr(0, eq);
      value = word.substr(eq + 1);
    } else if (word.size() > 2 && word[1] != '-') {  // -ojson, -nfoo, -o=json
      name = word.substr(0, 2);
      value = word.substr(word[2] == '=' ? 3 : 2);
    }
    if (name == "-A" || name == "--all-namespaces") {
      o.all_namespaces = true;
    } else if (name == "--wait") {
      o.wait = true;
    } else if (name == "--insecure") {
      o.insecure = true;
    } else if (name == "--no-restore") {
      o.no_restore = true;
    } else if (name == "-h" || name == "--help") {
      o.help = true;
    } else if (std::string* target = value_flag(name);
               target != nullptr || name == "-o" || name == "--output") {
      if (!value) {
        if (i + 1 >= argv.size()) return InvalidArgumentError("flag " + name + " needs a value");
        value = argv[++i];
      }
      (target != nullptr ? *target : output) = *value;
      continue;
    } else {
      return InvalidArgumentError("unknown flag: " + word);
    }
    if (value) return InvalidArgumentError("flag " + name + " takes no value");
  }
  if (output == "table" || output == "wide") {
    o.output = OutputFormat::kTable;
  } else if (output == "json") {
    o.output = OutputFormat::kJson;
  } else if (output == "yaml") {
    o.output = OutputFormat::kYaml;
  } else {
    return InvalidArgumentError("unknown output format \"" + output +
                                "\" for -o (table, json or yaml)");
  }
  if (o.all_namespaces && !o.namespace_.empty()) {
    return InvalidArgumentError("-n/--namespace and -A/--all-namespaces exclude each other");
  }
  return o;
}

Result<kube::ClientConfig> ResolveClientConfig(const Options& options, Env* env,
                                               const GetenvFn& getenv_fn) {
  if (!options.kubeconfig.empty()) {
    return kube::LoadKubeconfig(env, options.kubeconfig, options.context);
  }
  const char* list = getenv_fn("KUBECONFIG");
  if (list != nullptr && *list != '\0') {
    // Merged as kubectl merges them (libs/kube: first file to name an entry wins).
    return kube::LoadKubeconfigList(env, list, options.context);
  }
  if (const char* home = getenv_fn("HOME"); home != nullptr && *home != '\0') {
    std::string path = std::string(home) + "/.kube/config";
    if (env->Stat(path).ok()) return kube::LoadKubeconfig(env, path, options.context);
  }
  if (!options.context.empty()) {
    return NotFoundError("--context " + options.context +
                         ": no kubeconfig (--kubeconfig, KUBECONFIG or ~/.kube/config)");
  }
  auto in_cluster = kube::LoadInClusterConfig(env, getenv_fn);
  if (!in_cluster.ok()) {
    return NotFoundError(
        "no kubeconfig (--kubeconfig, KUBECONFIG or ~/.kube/config) and not in a cluster: " +
        in_cluster.status().message());
  }
  return in_cluster;
}

Context::Context(Options options, std::ostream& out, std::ostream& err, Env* env,
                 GetenvFn getenv_fn, ClientFactory factory, LocatorFactory locator_factory)
    : options_(std::move(options)),
      out_(out),
      err_(err),
      env_(env),
      getenv_(std::move(getenv_fn)),
      factory_(std::move(factory)),
      locator_factory_(std::move(locator_factory)) {}

Result<LunLocator*> Context::Locator() {
  if (!locator_ && locator_factory_) {
    STRATA_ASSIGN_OR_RETURN(
        device::ClientTls tls,
        device::ClientTlsFromFlags(options_.tls_cert, options_.tls_key, options_.tls_ca,
                                   options_.insecure, options_.tls_crl));
    locator_ = locator_factory_(tls);
  }
  return locator_.get();
}

Result<kube::ClientConfig*> Context::Config() {
  if (!config_) {
    STRATA_ASSIGN_OR_RETURN(auto config, ResolveClientConfig(options_, env_, getenv_));
    config_ = std::make_unique<kube::ClientConfig>(std::move(config));
  }
  return config_.get();
}

Result<kube::ApiClient*> Context::Client() {
  if (!client_) {
    STRATA_ASSIGN_OR_RETURN(kube::ClientConfig * config, Config());
    config->request_timeout = std::chrono::seconds(15);
    STRATA_ASSIGN_OR_RETURN(client_, factory_(*config));
  }
  return client_.get();
}

Result<std::string> Context::Namespace() {
  if (!options_.namespace_.empty()) return options_.namespace_;
  STRATA_ASSIGN_OR_RETURN(kube::ClientConfig * config, Config());
  return config->default_namespace.empty() ? std::string("default") : config->default_namespace;
}

int Context::Fail(const std::string& message) {
  err_ << "error: " << message << "\n";
  return kExitFailure;
}

int Context::UsageFail(const std::string& message, const std::string& command) {
  err_ << "error: " << message << "\n"
       << "See 'kubectl strata " << (command.empty() ? "" : command + " ")
       << "--help' for usage.\n";
  return kExitUsage;
}

void Context::PrintStructured(const Json& value) {
  if (options_.output == OutputFormat::kYaml) {
    out_ << ToYaml(value);
  } else {
    out_ << value.dump(4) << "\n";
  }
}

Json ListOf(std::vector<Json> items) {
  return {{"apiVersion", "v1"},
          {"kind", "List"},
          {"metadata", {{"resourceVersion", ""}}},
          {"items", std::move(items)}};
}

std::string Text(const Json& object, std::string_view pointer) {
  Json::json_pointer p{std::string(pointer)};
  if (!object.contains(p)) return "";
  const Json& v = object.at(p);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

std::string ApiMessage(const Status& status) {
  const std::string& m = status.message();
  if (kube::HttpCode(status) != 0) {
    if (auto colon = m.find(": "); m.starts_with("HTTP ") && colon != std::string::npos) {
      return m.substr(colon + 2);
    }
  }
  return m;
}

int Run(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err, Env* env,
        const GetenvFn& getenv_fn, const Context::ClientFactory& factory,
        const Context::LocatorFactory& locator_factory, bool interactive) {
  auto options = ParseArgs(argv);
  if (!options.ok()) {
    err << "error: " << options.status().message() << "\n"
        << "See 'kubectl strata --help' for usage.\n";
    return kExitUsage;
  }
  if (options->args.empty()) {
    (options->help ? out : err) << kUsage;
    return options->help ? kExitOk : kExitUsage;
  }
  options->interactive = interactive;
  std::string group = options->args.front();
  std::vector<std::string> rest(options->args.begin() + 1, options->args.end());
  if (group == "help") {
    out << kUsage;
    return kExitOk;
  }
  Context ctx(std::move(*options), out, err, env, getenv_fn, factory, locator_factory);
  if (ctx.options().help) {
    out << kUsage;
    return kExitOk;
  }
  if (group == "maintenance" || group == "maint") return RunMaintenance(ctx, rest);
  if (group == "devices" || group == "device") return RunDevices(ctx, rest);
  if (group == "volumes" || group == "volume") return RunVolumes(ctx, rest);
  if (group == "usage") return RunUsage(ctx, rest);
  return ctx.UsageFail("unknown command \"" + group + "\" (maintenance, devices, volumes, usage)",
                       "");
}

}  // namespace strata::kubectl
