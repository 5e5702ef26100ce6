#include "strata/kube/events.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <optional>

#include "strata/kube/conditions.h"

namespace strata::kube {

ApiEventRecorder::ApiEventRecorder(ApiClient* client, std::string component, std::string instance,
                                   Clock* clock, std::string default_namespace)
    : client_(client),
      component_(std::move(component)),
      instance_(std::move(instance)),
      clock_(clock),
      default_namespace_(std::move(default_namespace)) {}

void ApiEventRecorder::Record(const Json& obj, EventType type, const std::string& reason,
                              const std::string& message) {
  const Json& meta = obj.contains("metadata") ? obj["metadata"] : Json::object();
  const std::string obj_ns = meta.value("namespace", "");
  const std::string ns = obj_ns.empty() ? default_namespace_ : obj_ns;
  const std::string uid = meta.value("uid", "");
  const std::string type_text = type == EventType::kNormal ? "Normal" : "Warning";
  const std::string now = FormatTime(clock_->WallNow());
  const std::string key = uid + "|" + type_text + "|" + reason + "|" + message;

  std::unique_lock lock(mu_);
  auto it = seen_.find(key);
  if (it != seen_.end() && clock_->Now() - it->second.last < std::chrono::minutes(10)) {
    Seen& s = it->second;
    s.count++;
    s.last = clock_->Now();
    Json patch = {{"count", s.count}, {"lastTimestamp", now}};
    const std::string ev_ns = s.ns, ev_name = s.name;
    lock.unlock();
    auto r = client_->Patch(resources::Events(), ev_ns, ev_name, PatchType::kMerge, patch, false);
    if (r.ok()) return;
    lock.lock();
    seen_.erase(key);  // the Event expired or was deleted: create a new one
  }
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, ".%llx%llx",
                static_cast<unsigned long long>(clock_->WallNow().time_since_epoch().count()),
                static_cast<unsigned long long>(++sequence_));
  const std::string name = meta.value("name", "unknown") + suffix;
  seen_[key] = Seen{ns, name, 1, clock_->Now()};
  lock.unlock();

  Json involved = {{"kind", obj.value("kind", "")},
                   {"apiVersion", obj.value("apiVersion", "")},
                   {"name", meta.value("name", "")},
                   {"uid", uid},
                   {"resourceVersion", meta.value("resourceVersion", "")}};
  if (!obj_ns.empty()) involved["namespace"] = obj_ns;
  Json event = {{"apiVersion", "v1"},
                {"kind", "Event"},
                {"metadata", {{"name", name}, {"namespace", ns}}},
                {"involvedObject", involved},
                {"reason", reason},
                {"message", message},
                {"type", type_text},
                {"count", 1},
                {"firstTimestamp", now},
                {"lastTimestamp", now},
                {"source", {{"component", component_}}},
                {"reportingComponent", component_},
                {"reportingInstance", instance_}};
  auto r = client_->Create(resources::Events(), ns, event);
  if (!r.ok())
    spdlog::warn("event {} on {}: {}", reason, meta.value("name", ""), r.status().ToString());
}

QueuedEventRecorder::QueuedEventRecorder(EventRecorder* target, size_t capacity,
                                         std::chrono::milliseconds drain_on_stop)
    : target_(target),
      capacity_(capacity),
      drain_on_stop_(drain_on_stop),
      thread_([this](std::stop_token stop) { Deliver(stop); }) {}

QueuedEventRecorder::~QueuedEventRecorder() {
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
}

void QueuedEventRecorder::Record(const Json& involved_object, EventType type,
                                 const std::string& reason, const std::string& message) {
  {
    std::lock_guard g(mu_);
    if (queue_.size() >= capacity_) {
      // Log the first drop and then every 100th, not each one.
      if (dropped_++ % 100 == 0) {
        spdlog::warn("events: {} waiting to be written; dropped event {} ({} dropped so far)",
                     queue_.size(), reason, dropped_);
      }
      return;
    }
    queue_.push_back({involved_object, type, reason, message});
  }
  cv_.notify_one();
}

uint64_t QueuedEventRecorder::dropped() const {
  std::lock_guard g(mu_);
  return dropped_;
}

void QueuedEventRecorder::Deliver(std::stop_token stop) {
  std::optional<std::chrono::steady_clock::time_point> give_up;
  for (;;) {
    Pending next;
    {
      std::unique_lock l(mu_);
      cv_.wait(l, stop, [&] { return !queue_.empty(); });
      if (stop.stop_requested()) {
        if (!give_up) give_up = std::chrono::steady_clock::now() + drain_on_stop_;
        if (queue_.empty() || std::chrono::steady_clock::now() >= *give_up) {
          dropped_ += queue_.size();
          queue_.clear();
          return;
        }
      }
      next = std::move(queue_.front());
      queue_.pop_front();
    }
    target_->Record(next.object, next.type, next.reason, next.message);
  }
}

}  // namespace strata::kube
