#include "strata/nbd/testing/static_export_catalog.h"

#include <algorithm>

namespace strata::nbd {

void StaticExportCatalog::Add(std::string name, std::shared_ptr<storage::Volume> volume,
                              std::vector<std::string> allowed_clients, std::string description) {
  std::lock_guard lock(mu_);
  exports_[std::move(name)] =
      Entry{std::move(volume), std::move(allowed_clients), std::move(description), false};
}

void StaticExportCatalog::Remove(std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = exports_.find(name);
  if (it != exports_.end()) exports_.erase(it);
}

void StaticExportCatalog::SetUnavailable(std::string_view name, bool unavailable) {
  std::lock_guard lock(mu_);
  auto it = exports_.find(name);
  if (it != exports_.end()) it->second.unavailable = unavailable;
}

bool StaticExportCatalog::Allowed(const Entry& e, const storage::ClientInfo& client) {
  return e.allowed.empty() ||
         std::find(e.allowed.begin(), e.allowed.end(), client.peer_address) != e.allowed.end();
}

std::vector<storage::ExportInfo> StaticExportCatalog::List(const storage::ClientInfo& client) {
  std::lock_guard lock(mu_);
  std::vector<storage::ExportInfo> out;
  for (const auto& [name, e] : exports_) {
    if (!Allowed(e, client)) continue;
    out.push_back({name, e.description, e.volume->size_bytes()});
  }
  return out;
}

Result<std::shared_ptr<storage::Volume>> StaticExportCatalog::Open(
    std::string_view name, const storage::ClientInfo& client) {
  std::lock_guard lock(mu_);
  auto it = exports_.find(name);
  if (it == exports_.end()) return NotFoundError("no export named '" + std::string(name) + "'");
  if (!Allowed(it->second, client)) {
    return PermissionDeniedError("client " + client.peer_address +
                                 " is not on the access list of '" + std::string(name) + "'");
  }
  if (it->second.unavailable) {
    return UnavailableError("export '" + std::string(name) + "' cannot serve now");
  }
  return it->second.volume;
}

}  // namespace strata::nbd
