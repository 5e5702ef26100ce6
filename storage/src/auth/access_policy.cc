#include "auth/access_policy.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace strata::storage::auth {

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kAdmin:
      return "admin";
    case Role::kDevice:
      return "device";
    case Role::kTenant:
      return "tenant";
  }
  return "?";
}

bool Grant::MayUseOwner(std::string_view owner) const {
  for (const std::string& o : owners) {
    if (!o.empty() && o.back() == '*') {
      if (owner.substr(0, o.size() - 1) == std::string_view(o).substr(0, o.size() - 1)) {
        return true;
      }
    } else if (o == owner) {
      return true;
    }
  }
  return false;
}

Result<AccessPolicy> AccessPolicy::Parse(std::string_view text, std::string_view source) {
  const std::string where(source);
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return InvalidArgumentError(where + ": not valid JSON");
  if (!doc.is_object()) return InvalidArgumentError(where + ": must be a JSON object");
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (it.key() != "identities") {
      return InvalidArgumentError(where + ": unknown field '" + it.key() +
                                  "' (only \"identities\")");
    }
  }
  auto ids = doc.find("identities");
  if (ids == doc.end() || !ids->is_array()) {
    return InvalidArgumentError(where + ": identities: is required, a list");
  }
  AccessPolicy p;
  for (size_t i = 0; i < ids->size(); ++i) {
    const std::string at = where + ": identities[" + std::to_string(i) + "]";
    const nlohmann::json& e = (*ids)[i];
    if (!e.is_object()) return InvalidArgumentError(at + ": must be an object");
    for (auto it = e.begin(); it != e.end(); ++it) {
      if (it.key() != "identity" && it.key() != "role" && it.key() != "owners") {
        return InvalidArgumentError(at + ": unknown field '" + it.key() +
                                    "' (identity, role, owners)");
      }
    }
    Grant g;
    auto id = e.find("identity");
    if (id == e.end() || !id->is_string() || id->get<std::string>().empty()) {
      return InvalidArgumentError(at + ".identity: is required, a non-empty string");
    }
    g.identity = id->get<std::string>();
    for (const char* prefix : {"CN=", "DNS:", "URI:"}) {
      if (g.identity.rfind(prefix, 0) == 0 && g.identity.size() == std::strlen(prefix)) {
        return InvalidArgumentError(at + ".identity: '" + g.identity + "' names nothing after " +
                                    prefix);
      }
    }
    auto role = e.find("role");
    const std::string r = role != e.end() && role->is_string() ? role->get<std::string>() : "";
    if (r == "admin") {
      g.role = Role::kAdmin;
    } else if (r == "device") {
      g.role = Role::kDevice;
    } else if (r == "tenant") {
      g.role = Role::kTenant;
    } else {
      return InvalidArgumentError(at + ".role: '" + r + "' is not one of admin, device, tenant");
    }
    auto owners = e.find("owners");
    if (owners != e.end()) {
      if (g.role != Role::kTenant) {
        return InvalidArgumentError(at + ".owners: only a tenant has owners (an " +
                                    std::string(RoleName(g.role)) + " may use every LUN)");
      }
      if (!owners->is_array()) return InvalidArgumentError(at + ".owners: must be a list");
      for (size_t j = 0; j < owners->size(); ++j) {
        const nlohmann::json& o = (*owners)[j];
        if (!o.is_string() || o.get<std::string>().empty() || o.get<std::string>() == "*") {
          return InvalidArgumentError(at + ".owners[" + std::to_string(j) +
                                      "]: must be an owner name or a prefix ending in '*' "
                                      "(not empty, not a bare '*': that is an admin)");
        }
        g.owners.push_back(o.get<std::string>());
      }
    }
    if (g.role == Role::kTenant && g.owners.empty()) {
      return InvalidArgumentError(at + ".owners: a tenant needs at least one owner");
    }
    if (p.grants_.count(g.identity)) {
      return InvalidArgumentError(at + ".identity: '" + g.identity + "' is listed twice");
    }
    std::string key = g.identity;
    p.grants_.emplace(std::move(key), std::move(g));
  }
  return p;
}

AccessPolicy AccessPolicy::AllowAnyVerified() {
  AccessPolicy p;
  p.allow_any_verified_ = true;
  return p;
}

const Grant* AccessPolicy::Find(const std::string& identity) const {
  auto it = grants_.find(identity);
  return it == grants_.end() ? nullptr : &it->second;
}

std::vector<const Grant*> AccessPolicy::Match(const std::string& identity,
                                              const std::vector<std::string>& names) const {
  std::vector<const Grant*> out;
  if (const Grant* g = Find(identity)) out.push_back(g);
  for (const std::string& name : names) {
    const Grant* g = Find(name);
    if (g != nullptr && std::find(out.begin(), out.end(), g) == out.end()) out.push_back(g);
  }
  return out;
}

Result<std::unique_ptr<AccessPolicyFile>> AccessPolicyFile::Open(std::string path) {
  std::unique_ptr<AccessPolicyFile> f(new AccessPolicyFile(std::move(path)));
  std::lock_guard lock(f->mu_);
  STRATA_RETURN_IF_ERROR(f->ReloadLocked(tls::FileSignature::Of(f->path_)));
  return f;
}

Status AccessPolicyFile::ReloadLocked(const tls::FileSignature& sig) {
  std::ifstream in(path_, std::ios::binary);
  if (!in) return InvalidArgumentError("--authz: cannot read '" + path_ + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  STRATA_ASSIGN_OR_RETURN(AccessPolicy p, AccessPolicy::Parse(ss.str(), "--authz " + path_));
  policy_ = std::move(p);
  loaded_ = sig;
  return Status::Ok();
}

Result<std::optional<Grant>> AccessPolicyFile::Lookup(const std::string& identity,
                                                      const std::vector<std::string>& names) {
  std::lock_guard lock(mu_);
  tls::FileSignature now = tls::FileSignature::Of(path_);
  if (now != loaded_) {
    if (Status s = ReloadLocked(now); !s.ok()) {
      spdlog::warn("keeping the previous access policy: {}", s.message());
    } else {
      spdlog::info("access policy {} reloaded", path_);
    }
  }
  std::vector<const Grant*> found = policy_.Match(identity, names);
  if (found.empty()) return std::optional<Grant>();
  if (found.size() > 1) {
    std::string entries;
    for (const Grant* g : found) entries += (entries.empty() ? "'" : ", '") + g->identity + "'";
    return Status(StatusCode::kPermissionDenied, "identity '" + identity + "' is named by " +
                                                     std::to_string(found.size()) +
                                                     " entries of the device's access policy (" +
                                                     entries + "): list each certificate once");
  }
  return std::optional<Grant>(*found.front());
}

}  // namespace strata::storage::auth
