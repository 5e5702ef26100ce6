#pragma once

// The node-local record of what strata-netd created for each NodeNetworkPolicy (bond, bridge,
// enslaved uplinks), so that removing a policy tears down exactly that, across agent restarts.
// One JSON file, `STATE_DIR/uplinks.json`, written atomically (temp + fsync + rename) through Env:
//   {"version": 1, "policies": {"NAME": {"uid": ..., "bond": "bond0", "createdBond": true,
//    "enslaved": ["eth1", "eth2"], "bridge": "br0", "createdBridge": true}}}
//
// Thread-safety: thread-compatible (the reconciler serializes its use under its own mutex).

#include <map>
#include <string>

#include "strata/common/env.h"
#include "strata/common/result.h"
#include "strata/netd/uplinks.h"

namespace strata::netd {

class UplinkStateFile {
 public:
  UplinkStateFile(Env* env, std::string path) : env_(env), path_(std::move(path)) {}

  // An absent file is an empty record; a corrupt one is FAILED_PRECONDITION naming the path (the
  // agent refuses to guess what it owns).
  Result<std::map<std::string, UplinkOwnership>> Load() const;
  Status Save(const std::map<std::string, UplinkOwnership>& policies) const;

  const std::string& path() const { return path_; }

 private:
  Env* const env_;
  const std::string path_;
};

}  // namespace strata::netd
