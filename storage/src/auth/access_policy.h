#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "strata/common/result.h"
#include "strata/tls/file_signature.h"

namespace strata::storage::auth {

// What a certificate identity may do on the management API.
enum class Role {
  // Everything: the operator, the CSI controller, an administrator's strata-admin.
  kAdmin,
  // What another strata-stored needs to move a LUN here: GetDeviceStatus, CreateLun, GetLun,
  // DeleteLun, AcceptLun and the data RPCs (WriteLunData, ReadLunData, FlushLun, GetLunChecksums,
  // OpenMoveExport).
  kDevice,
  // Only LUNs (and their snapshots) whose owner is one of `owners`: create, get, list, stat,
  // resize, access, dedup, tier moves, snapshots. Never the device's state, device-to-device
  // moves, or the data RPCs (tenants do I/O over NBD).
  kTenant,
};

std::string_view RoleName(Role role);

struct Grant {
  std::string identity;
  Role role = Role::kTenant;
  // kTenant: owner names; an entry ending in '*' matches every owner starting with the rest.
  std::vector<std::string> owners;

  bool MayUseOwner(std::string_view owner) const;
};

// The device's allow list per identity (strata-stored --authz FILE), JSON:
//
//   {"identities": [
//     {"identity": "strata-operator", "role": "admin"},
//     {"identity": "spiffe://cluster.local/ns/strata/sa/strata-csi-controller", "role": "admin"},
//     {"identity": "stored-b", "role": "device"},
//     {"identity": "tenant-a", "role": "tenant", "owners": ["team-a", "team-a-*"]}]}
//
// An entry's identity is either bare, what PeerCertificate::identity() names (first URI
// SAN, else the CN), or prefixed as in NBD export access lists: "CN=strata-operator",
// "URI:spiffe://...", "DNS:stored-b.strata.svc" (any of the certificate's names). A
// certificate no entry names may do nothing (PERMISSION_DENIED). Value type.
class AccessPolicy {
 public:
  // INVALID_ARGUMENT naming `source` and the JSON path of the bad field.
  static Result<AccessPolicy> Parse(std::string_view json, std::string_view source);
  // No --authz: every identity the client CA vouches for is an admin (the CA is then the
  // whole trust boundary, as with Longhorn's mTLS).
  static AccessPolicy AllowAnyVerified();

  // The grant of the entry written exactly `identity`; nullptr when none is.
  const Grant* Find(const std::string& identity) const;
  // The entries that name a certificate: bare entries equal to its `identity` (first URI
  // SAN, else CN) and prefixed ones ("CN=...", "DNS:...", "URI:...", the spelling NBD
  // access lists use) equal to one of its `names` (nbd::CertificateIdentities).
  std::vector<const Grant*> Match(const std::string& identity,
                                  const std::vector<std::string>& names) const;
  bool allow_any_verified() const { return allow_any_verified_; }

 private:
  bool allow_any_verified_ = false;
  std::map<std::string, Grant> grants_;
};

// An AccessPolicy file re-read when it changes (one stat per lookup), like a ConfigMap
// volume updated in place. A rewritten file that does not parse is logged and ignored (the
// last good policy stays) and tried again at the next lookup. Thread-safe.
class AccessPolicyFile {
 public:
  // Loads the file now: INVALID_ARGUMENT naming --authz when it cannot be read or parsed.
  static Result<std::unique_ptr<AccessPolicyFile>> Open(std::string path);

  // The grant of a certificate (see AccessPolicy::Match) under the current policy, copied
  // (the policy may change under later calls); nullopt when no entry names it;
  // PERMISSION_DENIED naming the entries when more than one does (spelled two ways with
  // different grants is a policy mistake: refused rather than guessed).
  Result<std::optional<Grant>> Lookup(const std::string& identity,
                                      const std::vector<std::string>& names);

 private:
  explicit AccessPolicyFile(std::string path) : path_(std::move(path)) {}
  Status ReloadLocked(const tls::FileSignature& sig);

  const std::string path_;
  std::mutex mu_;
  tls::FileSignature loaded_;  // guarded by mu_
  AccessPolicy policy_;        // guarded by mu_
};

}  // namespace strata::storage::auth
