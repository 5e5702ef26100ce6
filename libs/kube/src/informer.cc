#include "strata/kube/informer.h"

#include <spdlog/spdlog.h>

#include <random>

#include "strata/kube/errors.h"

namespace strata::kube {

Informer::Informer(ApiClient* client, Resource resource, Options options, Clock* clock)
    : client_(client),
      resource_(std::move(resource)),
      options_(std::move(options)),
      clock_(clock) {}

Informer::~Informer() { Stop(); }

void Informer::AddHandlers(EventHandlers handlers) { handlers_.push_back(std::move(handlers)); }

void Informer::Start() {
  thread_ = std::jthread([this](std::stop_token stop) { Run(stop); });
}

void Informer::Stop() {
  if (thread_.joinable()) {
    thread_.request_stop();
    thread_.join();
  }
}

bool Informer::WaitForSync(Duration timeout) {
  std::unique_lock lock(mu_);
  return sync_cv_.wait_for(lock, timeout, [this] { return synced_.load(); });
}

Informer::Stats Informer::stats() const {
  std::lock_guard g(mu_);
  return stats_;
}

std::string Informer::last_resource_version() const {
  std::lock_guard g(mu_);
  return resource_version_;
}

void Informer::Dispatch(const StoreDelta& d) {
  for (const auto& h : handlers_) {
    switch (d.type) {
      case StoreDelta::Type::kAdded:
        if (h.on_add) h.on_add(d.object);
        break;
      case StoreDelta::Type::kUpdated:
        if (h.on_update) h.on_update(d.old_object, d.object);
        break;
      case StoreDelta::Type::kDeleted:
        if (h.on_delete) h.on_delete(d.old_object);
        break;
    }
  }
}

void StripForCache(Json& object) {
  if (!object.is_object()) return;
  auto m = object.find("metadata");
  if (m == object.end() || !m->is_object()) return;
  // Safe to drop: an update that leaves managedFields out keeps the server's (only an explicit
  // empty list resets them). Annotations stay: a full-object update (finalizers) writes them back.
  m->erase("managedFields");
}

bool Informer::ListAndReplace(std::stop_token stop) {
  ListOptions lo;
  lo.limit = options_.page_size;
  lo.label_selector = options_.label_selector;
  lo.field_selector = options_.field_selector;
  std::string rv;
  auto items = ListAll(*client_, resource_, options_.namespace_, lo, &rv);
  if (!items.ok()) {
    if (!stop.stop_requested()) {
      spdlog::warn("informer {}: list failed: {}", resource_.plural, items.status().ToString());
    }
    return false;
  }
  if (options_.transform) {
    for (Json& o : *items) options_.transform(o);
  }
  auto deltas = store_.Replace(std::move(*items));
  {
    std::lock_guard g(mu_);
    resource_version_ = rv;
    stats_.lists++;
  }
  for (const auto& d : deltas) Dispatch(d);
  if (!synced_.exchange(true)) {
    std::lock_guard g(mu_);
    sync_cv_.notify_all();
  }
  spdlog::debug("informer {}: listed {} objects at resourceVersion {}", resource_.plural,
                store_.Size(), rv);
  return true;
}

void Informer::Run(std::stop_token stop) {
  std::mt19937_64 rng(std::random_device{}());
  Duration backoff = options_.min_backoff;
  auto back_off = [&]() {
    bool slept = clock_->SleepFor(backoff, stop);
    backoff = std::min(backoff * 2, options_.max_backoff);
    return slept;
  };

  bool need_list = true;
  bool first_watch = true;
  while (!stop.stop_requested()) {
    if (need_list) {
      if (!ListAndReplace(stop)) {
        if (!back_off()) return;
        continue;
      }
      need_list = false;
    }

    WatchOptions wo;
    wo.resource_version = last_resource_version();
    wo.label_selector = options_.label_selector;
    wo.field_selector = options_.field_selector;
    wo.allow_bookmarks = true;
    wo.timeout_seconds = options_.watch_timeout_seconds +
                         static_cast<int>(rng() % (options_.watch_timeout_seconds + 1));
    {
      std::lock_guard g(mu_);
      stats_.watch_starts++;
      if (!first_watch) stats_.watch_restarts++;
    }
    first_watch = false;
    bool progressed = false;
    Status st = client_->Watch(
        resource_, options_.namespace_, wo,
        [&](WatchEvent&& ev) {
          const std::string rv = ResourceVersionOf(ev.object);
          if (ev.type == WatchEventType::kBookmark) {
            std::lock_guard g(mu_);
            if (!rv.empty()) resource_version_ = rv;
            return true;
          }
          progressed = true;
          if (options_.transform) options_.transform(ev.object);
          std::optional<StoreDelta> d = ev.type == WatchEventType::kDeleted
                                            ? store_.Remove(ev.object)
                                            : store_.Upsert(std::move(ev.object));
          {
            std::lock_guard g(mu_);
            if (!rv.empty()) resource_version_ = rv;
            stats_.events++;
          }
          if (d) Dispatch(*d);
          return true;
        },
        stop);
    if (stop.stop_requested()) return;
    if (IsGone(st)) {
      // The resourceVersion we hold is older than the apiserver keeps: list again.
      spdlog::info("informer {}: {}; relisting", resource_.plural, st.message());
      {
        std::lock_guard g(mu_);
        stats_.relists_on_gone++;
      }
      need_list = true;
      continue;
    }
    if (st.ok()) {
      backoff = options_.min_backoff;  // the server closed a healthy stream: resume at once
      continue;
    }
    spdlog::warn("informer {}: watch failed: {}; resuming from resourceVersion {}",
                 resource_.plural, st.ToString(), last_resource_version());
    if (progressed) backoff = options_.min_backoff;
    if (!back_off()) return;
  }
}

}  // namespace strata::kube
