#include "strata/kube/config.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "strata/kube/yaml.h"

namespace strata::kube {
namespace {

constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

std::string StringField(const nlohmann::json& obj, const char* key) {
  if (!obj.contains(key) || !obj[key].is_string()) return "";
  return obj[key].get<std::string>();
}

std::string Resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  return base_dir + "/" + path;
}

// `<key>-data` (base64) or `<key>` (a file), either may be absent.
Result<std::string> DataOrFile(Env* env, const nlohmann::json& obj, const std::string& key,
                               const std::string& base_dir, const std::string& where) {
  std::string data = StringField(obj, (key + "-data").c_str());
  if (!data.empty()) {
    auto decoded = Base64Decode(data);
    if (!decoded.ok()) return decoded.status().WithContext(where + ": " + key + "-data");
    return decoded;
  }
  std::string file = StringField(obj, key.c_str());
  if (file.empty()) return std::string();
  auto contents = env->ReadFile(Resolve(base_dir, file));
  if (!contents.ok()) return contents.status().WithContext(where + ": " + key);
  return contents;
}

}  // namespace

Result<std::string> Base64Decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=' || c == '\n' || c == '\r' || c == ' ' || c == '\t') continue;
    int v = value(c);
    if (v < 0) return InvalidArgumentError(std::string("not base64: bad character '") + c + "'");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

Result<ClientConfig> LoadKubeconfig(Env* env, const std::string& path, const std::string& context) {
  return LoadKubeconfigFiles(env, {path}, context);
}

Result<ClientConfig> LoadKubeconfigFiles(Env* env, const std::vector<std::string>& paths,
                                         const std::string& context) {
  if (paths.empty()) return InvalidArgumentError("no kubeconfig file given");
  // What kubectl's clientcmd does with KUBECONFIG=a:b: each named entry (cluster, user,
  // context) comes from the first file that has that name; current-context from the first file
  // that sets it. File references stay relative to the file they were written in.
  struct Entry {
    nlohmann::json value;  // the entry's `cluster`, `user` or `context` object
    std::string file;
  };
  std::map<std::string, std::map<std::string, Entry>> named;  // list -> name -> entry
  std::string current_context, current_context_file;
  for (const std::string& path : paths) {
    STRATA_ASSIGN_OR_RETURN(std::string text, env->ReadFile(path));
    auto parsed = YamlToJson(text);
    if (!parsed.ok()) return parsed.status().WithContext(path);
    const nlohmann::json& config = *parsed;
    if (config.is_null()) continue;  // an empty file merges as nothing, as in kubectl
    if (!config.is_object()) {
      return InvalidArgumentError(path + ": not a kubeconfig (not a mapping)");
    }
    if (current_context.empty()) {
      current_context = StringField(config, "current-context");
      current_context_file = path;
    }
    for (const auto& [list, field] : {std::pair<std::string, std::string>{"clusters", "cluster"},
                                      {"users", "user"},
                                      {"contexts", "context"}}) {
      if (!config.contains(list) || config[list].is_null()) continue;
      if (!config[list].is_array())
        return InvalidArgumentError(path + ": " + list + ": not a list");
      for (const auto& entry : config[list]) {
        if (!entry.is_object() || StringField(entry, "name").empty()) {
          return InvalidArgumentError(path + ": " + list + ": an entry without a name");
        }
        auto& slot = named[list];
        const std::string name = StringField(entry, "name");
        if (slot.contains(name)) continue;  // the first file to name it wins
        slot[name] =
            Entry{entry.contains(field) && entry[field].is_object() ? entry[field]
                                                                    : nlohmann::json::object(),
                  path};
      }
    }
  }
  std::string all;
  for (const auto& p : paths) all += (all.empty() ? "" : ":") + p;
  auto lookup = [&](const std::string& list, const std::string& name) -> Result<const Entry*> {
    auto it = named[list].find(name);
    if (it == named[list].end()) {
      return InvalidArgumentError(all + ": " + list + ": no entry named '" + name + "'");
    }
    return &it->second;
  };
  auto dir_of = [](const std::string& path) {
    return path.find('/') == std::string::npos ? std::string(".") : path.substr(0, path.rfind('/'));
  };

  std::string context_name = context.empty() ? current_context : context;
  if (context_name.empty()) return InvalidArgumentError(all + ": current-context is not set");
  STRATA_ASSIGN_OR_RETURN(const Entry* ctx_entry, lookup("contexts", context_name));
  const nlohmann::json& ctx = ctx_entry->value;
  const std::string cluster_name = StringField(ctx, "cluster");
  const std::string user_name = StringField(ctx, "user");
  if (cluster_name.empty()) {
    return InvalidArgumentError(ctx_entry->file + ": context '" + context_name +
                                "': cluster is not set");
  }
  STRATA_ASSIGN_OR_RETURN(const Entry* cluster_entry, lookup("clusters", cluster_name));
  const nlohmann::json& cluster = cluster_entry->value;

  ClientConfig out;
  const std::string where = cluster_entry->file + ": cluster '" + cluster_name + "'";
  out.server = StringField(cluster, "server");
  if (out.server.empty()) return InvalidArgumentError(where + ": server is not set");
  if (!out.server.starts_with("https://") && !out.server.starts_with("http://")) {
    return InvalidArgumentError(where + ": server '" + out.server + "' is not an http(s) URL");
  }
  while (out.server.ends_with("/")) out.server.pop_back();
  // Checked before it is read: json::value() throws on another type ("true" quoted, a typo).
  if (auto it = cluster.find("insecure-skip-tls-verify"); it != cluster.end() && !it->is_null()) {
    if (!it->is_boolean()) {
      return InvalidArgumentError(
          where + ": insecure-skip-tls-verify: must be true or false, not " + it->dump());
    }
    out.insecure_skip_tls_verify = it->get<bool>();
  }
  STRATA_ASSIGN_OR_RETURN(out.ca_pem, DataOrFile(env, cluster, "certificate-authority",
                                                 dir_of(cluster_entry->file), where));

  if (!user_name.empty()) {
    STRATA_ASSIGN_OR_RETURN(const Entry* user_entry, lookup("users", user_name));
    const nlohmann::json& user = user_entry->value;
    const std::string base_dir = dir_of(user_entry->file);
    const std::string uwhere = user_entry->file + ": user '" + user_name + "'";
    out.token = StringField(user, "token");
    out.token_file = Resolve(base_dir, StringField(user, "tokenFile"));
    STRATA_ASSIGN_OR_RETURN(out.client_cert_pem,
                            DataOrFile(env, user, "client-certificate", base_dir, uwhere));
    STRATA_ASSIGN_OR_RETURN(out.client_key_pem,
                            DataOrFile(env, user, "client-key", base_dir, uwhere));
    if (out.client_cert_pem.empty() != out.client_key_pem.empty()) {
      return InvalidArgumentError(uwhere + ": client-certificate and client-key go together");
    }
    if (user.contains("exec") || user.contains("auth-provider")) {
      return UnimplementedError(uwhere + ": exec and auth-provider credentials are not supported");
    }
  }
  std::string ns = StringField(ctx, "namespace");
  if (!ns.empty()) out.default_namespace = ns;
  return out;
}

std::vector<std::string> SplitKubeconfigList(std::string_view list) {
  std::vector<std::string> out;
  while (!list.empty()) {
    const size_t colon = list.find(':');
    std::string path(list.substr(0, colon));
    list = colon == std::string_view::npos ? std::string_view() : list.substr(colon + 1);
    if (path.empty()) continue;
    // kubectl lists a file named twice once (its first place counts).
    if (std::find(out.begin(), out.end(), path) == out.end()) out.push_back(std::move(path));
  }
  return out;
}

Result<ClientConfig> LoadKubeconfigList(Env* env, std::string_view list,
                                        const std::string& context) {
  std::vector<std::string> existing;
  for (auto& path : SplitKubeconfigList(list)) {
    // Files of the list that do not exist are skipped, as kubectl does.
    if (env->Stat(path).ok()) existing.push_back(std::move(path));
  }
  if (existing.empty()) {
    return NotFoundError("no file of KUBECONFIG=" + std::string(list) + " exists");
  }
  return LoadKubeconfigFiles(env, existing, context);
}

Result<ClientConfig> LoadInClusterConfig(Env* env,
                                         const std::function<const char*(const char*)>& getenv_fn) {
  const char* host = getenv_fn("KUBERNETES_SERVICE_HOST");
  const char* port = getenv_fn("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || port == nullptr || *host == '\0' || *port == '\0') {
    return FailedPreconditionError(
        "not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set "
        "(use --kubeconfig)");
  }
  ClientConfig out;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";  // IPv6 service address
  out.server = "https://" + h + ":" + port;
  const std::string dir = kServiceAccountDir;
  out.token_file = dir + "/token";
  STRATA_ASSIGN_OR_RETURN(out.token, env->ReadFile(out.token_file));
  STRATA_ASSIGN_OR_RETURN(out.ca_pem, env->ReadFile(dir + "/ca.crt"));
  if (auto ns = env->ReadFile(dir + "/namespace"); ns.ok() && !ns->empty()) {
    out.default_namespace = *ns;
  }
  return out;
}

}  // namespace strata::kube
