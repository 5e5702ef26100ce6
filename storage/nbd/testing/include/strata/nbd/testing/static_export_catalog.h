#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "strata/storage/volume.h"

namespace strata::nbd {

// A fixed ExportCatalog for tests and the test server: export name -> volume,
// description and the client IPs allowed (empty: everyone). Thread-safe (one lock;
// lookups are per connection, not per request).
class StaticExportCatalog final : public storage::ExportCatalog {
 public:
  // Adds or replaces an export.
  void Add(std::string name, std::shared_ptr<storage::Volume> volume,
           std::vector<std::string> allowed_clients = {}, std::string description = "");
  void Remove(std::string_view name);
  // An unavailable export stays listed but Open fails UNAVAILABLE (a LUN being deleted).
  void SetUnavailable(std::string_view name, bool unavailable);

  std::vector<storage::ExportInfo> List(const storage::ClientInfo& client) override;
  Result<std::shared_ptr<storage::Volume>> Open(std::string_view name,
                                                const storage::ClientInfo& client) override;

 private:
  struct Entry {
    std::shared_ptr<storage::Volume> volume;
    std::vector<std::string> allowed;
    std::string description;
    bool unavailable = false;
  };
  static bool Allowed(const Entry& e, const storage::ClientInfo& client);

  std::mutex mu_;
  std::map<std::string, Entry, std::less<>> exports_;  // guarded by mu_
};

}  // namespace strata::nbd
