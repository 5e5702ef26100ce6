#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "strata/common/result.h"
#include "strata/common/status.h"

namespace strata::kube {

using Json = nlohmann::json;

// A kind of object the API serves: where it lives in the URL space.
struct Resource {
  std::string group;    // "" for the core group
  std::string version;  // "v1", "v1alpha1"
  std::string plural;   // "storagedevices"
  std::string kind;     // "StorageDevice"
  bool namespaced = false;

  // /api/v1/namespaces/NS/PLURAL[/NAME[/SUB]] or /apis/GROUP/VERSION/...; `ns` is ignored for
  // cluster-scoped resources and means "all namespaces" when empty.
  std::string Path(std::string_view ns, std::string_view name = {},
                   std::string_view subresource = {}) const;
  std::string ApiVersion() const { return group.empty() ? version : group + "/" + version; }
};

namespace resources {
Resource StorageDevices();
Resource Leases();
Resource Events();
Resource ConfigMaps();
Resource Namespaces();
Resource PersistentVolumeClaims();
Resource PersistentVolumes();
Resource Pods();
Resource Nodes();
// strata.io/v1alpha1: the scope of each as its CRD declares it (charts/strata/crds/).
Resource TieringPolicies();
Resource DedupPolicies();
Resource MaintenanceWindows();
Resource BandwidthPolicies();
Resource VirtualNetworkConfigs();
Resource NodeNetworkPolicies();
}  // namespace resources

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  int64_t limit = 0;             // page size; 0 = everything in one response
  std::string continue_token;    // from the previous page
  std::string resource_version;  // "" = most recent (quorum read)
};

struct ListPage {
  std::vector<Json> items;
  std::string resource_version;  // of the list: watch from here
  std::string continue_token;    // empty on the last page
};

struct WatchOptions {
  std::string resource_version;  // start after this version; "" = from now (synthetic ADDEDs)
  bool allow_bookmarks = true;
  int timeout_seconds = 300;  // the server ends the stream after this
  std::string label_selector;
  std::string field_selector;
};

enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark };

struct WatchEvent {
  WatchEventType type;
  Json object;
};

enum class PatchType {
  kMerge,  // application/merge-patch+json (RFC 7386)
  kJson,   // application/json-patch+json (RFC 6902)
};

struct DeleteOptions {
  // Preconditions: the delete fails with 409 (ABORTED) unless the object still has this UID /
  // resourceVersion.
  std::string precondition_uid;
  std::string precondition_resource_version;
  std::string propagation_policy;  // "", "Foreground", "Background", "Orphan"
};

// The Kubernetes REST API. Objects are JSON as the API writes them.
//
// Errors are Status values whose message begins "HTTP <code> <reason>: " followed by the API's own
// message (see errors.h for the code mapping and predicates); transport failures are UNAVAILABLE.
// Implementations are thread-safe.
class ApiClient {
 public:
  virtual ~ApiClient() = default;

  virtual Result<Json> Get(const Resource& r, std::string_view ns, std::string_view name) = 0;
  // One page; see ListAll() for the loop over continue tokens.
  virtual Result<ListPage> List(const Resource& r, std::string_view ns,
                                const ListOptions& options) = 0;
  virtual Result<Json> Create(const Resource& r, std::string_view ns, const Json& object) = 0;
  // PUT of the whole object. metadata.resourceVersion in `object` makes it conditional: a stale
  // one fails with 409 (ABORTED; IsConflict()).
  virtual Result<Json> Update(const Resource& r, const Json& object) = 0;
  // PUT to the status subresource; the API ignores everything but status.
  virtual Result<Json> UpdateStatus(const Resource& r, const Json& object) = 0;
  virtual Result<Json> Patch(const Resource& r, std::string_view ns, std::string_view name,
                             PatchType type, const Json& patch, bool status_subresource) = 0;
  // NOT_FOUND when already gone (callers that want idempotence test IsNotFound()).
  virtual Status Delete(const Resource& r, std::string_view ns, std::string_view name,
                        const DeleteOptions& options) = 0;

  // Streams change events to `on_event` until the server ends the stream (OK), the stream fails
  // (UNAVAILABLE etc.; an ERROR event becomes its Status, e.g. 410 Expired -> IsGone()), `on_event`
  // returns false (OK), or `stop` is requested (CANCELLED). Blocks the calling thread.
  virtual Status Watch(const Resource& r, std::string_view ns, const WatchOptions& options,
                       const std::function<bool(WatchEvent&&)>& on_event, std::stop_token stop) = 0;
};

// Lists every page (limit/continue). Sets *resource_version to the list's version.
// A continue token that expired mid-way (410) restarts the list once from the beginning.
Result<std::vector<Json>> ListAll(ApiClient& client, const Resource& r, std::string_view ns,
                                  ListOptions options, std::string* resource_version);

// Read-modify-write with optimistic concurrency: GETs the object, applies `mutate`, and PUTs it
// (to the status subresource when `status` is set); on 409 Conflict re-reads and tries again, up to
// `attempts` times. `mutate` may return a non-OK Status to abort (returned as is).
Result<Json> UpdateWithRetry(ApiClient& client, const Resource& r, std::string_view ns,
                             std::string_view name, const std::function<Status(Json&)>& mutate,
                             bool status = false, int attempts = 5);

// "NAMESPACE/NAME", or "NAME" for cluster-scoped objects: the key of the informer's store and of
// the work queues.
std::string ObjectKey(const Json& object);
// Splits a key made by ObjectKey into (namespace, name).
std::pair<std::string, std::string> SplitKey(std::string_view key);

}  // namespace strata::kube
