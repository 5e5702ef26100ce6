#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "strata/kube/client.h"
#include "strata/kube/clock.h"
#include "strata/kube/store.h"

namespace strata::kube {

struct EventHandlers {
  std::function<void(const Json& object)> on_add;
  std::function<void(const Json& old_object, const Json& object)> on_update;
  // `object` is the last state the informer saw (it may be older than the deletion when the
  // delete happened while the watch was down and a relist noticed it).
  std::function<void(const Json& object)> on_delete;
};

// A reflector and its store for one kind, with client-go semantics: LIST (paged) into the store,
// then WATCH from the list's resourceVersion with bookmarks; a watch that ends or breaks resumes
// from the last resourceVersion seen (event or bookmark); 410 Gone means the window was missed and
// triggers a full relist whose differences are reported as adds, updates and deletes.
// Handlers run on the informer's thread, in event order; they must not block for long (enqueue
// keys). Thread-safe.
// Drops metadata.managedFields (often larger than the rest of a small object), what
// controller-runtime users strip with a cache transform. An update of an object read from such a
// cache keeps the server's managedFields (leaving the field out means "unchanged").
void StripForCache(Json& object);

class Informer {
 public:
  struct Options {
    std::string namespace_;  // "" = all namespaces (or a cluster-scoped kind)
    std::string label_selector;
    std::string field_selector;  // e.g. "spec.nodeName=node-a" (a node agent's own pods)
    int64_t page_size = 500;
    int watch_timeout_seconds = 300;  // randomized up to 2x, as client-go, to spread reconnects
    Duration min_backoff = std::chrono::milliseconds(200);
    Duration max_backoff = std::chrono::seconds(10);
    // Applied to every object before it enters the store (client-go's TransformFunc): e.g.
    // StripForCache drops what no controller reads, to keep the cache small.
    std::function<void(Json& object)> transform;
  };

  struct Stats {
    uint64_t lists = 0;            // successful full lists (the first included)
    uint64_t relists_on_gone = 0;  // lists caused by 410
    uint64_t watch_starts = 0;
    uint64_t watch_restarts = 0;  // watches that ended or failed and were re-established
    uint64_t events = 0;
  };

  Informer(ApiClient* client, Resource resource, Options options, Clock* clock = Clock::Real());
  ~Informer();
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  // REQUIRES: before Start().
  void AddHandlers(EventHandlers handlers);

  void Start();
  // Ends the watch and joins the thread. Idempotent.
  void Stop();

  // True once the first list is in the store.
  bool HasSynced() const { return synced_.load(); }
  // Waits until HasSynced() or the timeout; returns HasSynced().
  bool WaitForSync(Duration timeout);

  const Store& store() const { return store_; }
  const Resource& resource() const { return resource_; }
  Stats stats() const;
  // The last resourceVersion seen (from a list, an event or a bookmark).
  std::string last_resource_version() const;

 private:
  void Run(std::stop_token stop);
  // Lists everything; true on success.
  bool ListAndReplace(std::stop_token stop);
  void Dispatch(const StoreDelta& delta);

  ApiClient* const client_;
  const Resource resource_;
  const Options options_;
  Clock* const clock_;
  std::vector<EventHandlers> handlers_;
  Store store_;
  std::atomic<bool> synced_{false};

  mutable std::mutex mu_;
  std::condition_variable sync_cv_;
  std::string resource_version_;  // guarded by mu_
  Stats stats_;                   // guarded by mu_
  std::jthread thread_;
};

}  // namespace strata::kube
