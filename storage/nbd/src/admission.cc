#include "admission.h"

#include <spdlog/spdlog.h>

namespace strata::nbd {

bool Admission::Take(std::map<std::string, int>* counts, const std::string& key, int limit) {
  int& n = (*counts)[key];
  if (limit > 0 && n >= limit) {
    if (n == 0) counts->erase(key);
    return false;
  }
  ++n;
  return true;
}

void Admission::Give(std::map<std::string, int>* counts, const std::string& key) {
  auto it = counts->find(key);
  if (it == counts->end()) return;
  if (--it->second <= 0) counts->erase(it);
}

bool Admission::AdmitClient(const std::string& address, std::string* why) {
  std::lock_guard lock(mu_);
  if (Take(&per_client_, address, max_per_client_)) return true;
  *why = "client " + address + " already has " + std::to_string(max_per_client_) +
         " connections (--nbd-max-connections-per-client)";
  return false;
}

void Admission::ReleaseClient(const std::string& address) {
  std::lock_guard lock(mu_);
  Give(&per_client_, address);
}

bool Admission::AdmitExport(const std::string& name, std::string* why) {
  std::lock_guard lock(mu_);
  if (Take(&per_export_, name, max_per_export_)) return true;
  uint64_t n = refused_exports_.fetch_add(1) + 1;
  *why = "export '" + name + "' already has " + std::to_string(max_per_export_) +
         " connections (--nbd-max-connections-per-export)";
  // The first ten, then every thousandth: a flood must not flood the log.
  if (n <= 10 || n % 1000 == 0) spdlog::warn("nbd: refused: {} ({} so far)", *why, n);
  return false;
}

void Admission::ReleaseExport(const std::string& name) {
  std::lock_guard lock(mu_);
  Give(&per_export_, name);
}

int Admission::client_connections(const std::string& address) const {
  std::lock_guard lock(mu_);
  auto it = per_client_.find(address);
  return it == per_client_.end() ? 0 : it->second;
}

int Admission::export_connections(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = per_export_.find(name);
  return it == per_export_.end() ? 0 : it->second;
}

}  // namespace strata::nbd
