#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "strata/nbd/server.h"

namespace strata::nbd {

// Connection counts per client address and per export, checked against the
// server's limits when a connection is accepted (per client) and when a client
// picks an export (per export). Refusals are counted by reason for the metrics.
//
// Thread-safe (one mutex; every call is a map update).
class Admission {
 public:
  // A limit of 0 means unlimited.
  Admission(int max_per_client, int max_per_export)
      : max_per_client_(max_per_client), max_per_export_(max_per_export) {}

  // Takes a slot for `address`; false (and a message naming the limit) when the
  // client already has max_per_client connections. Release with ReleaseClient().
  bool AdmitClient(const std::string& address, std::string* why);
  void ReleaseClient(const std::string& address);

  // The same for an export picked in the handshake.
  bool AdmitExport(const std::string& name, std::string* why);
  void ReleaseExport(const std::string& name);

  int client_connections(const std::string& address) const;
  uint64_t refused_exports() const { return refused_exports_.load(); }
  int export_connections(const std::string& name) const;

 private:
  static bool Take(std::map<std::string, int>* counts, const std::string& key, int limit);
  static void Give(std::map<std::string, int>* counts, const std::string& key);

  const int max_per_client_;
  const int max_per_export_;
  std::atomic<uint64_t> refused_exports_{0};
  mutable std::mutex mu_;
  std::map<std::string, int> per_client_;  // guarded by mu_; only keys with count > 0
  std::map<std::string, int> per_export_;  // guarded by mu_; only keys with count > 0
};

}  // namespace strata::nbd
