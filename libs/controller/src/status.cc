#include "strata/controller/status.h"

#include <spdlog/spdlog.h>

#include "strata/kube/conditions.h"
#include "strata/kube/errors.h"

namespace strata::ctrl {

using kube::Json;

namespace {
Json StatusOf(const Json& object) {
  return object.is_object() && object.contains("status") && object["status"].is_object()
             ? object["status"]
             : Json::object();
}
}  // namespace

Result<StatusWrite> WriteStatus(kube::ApiClient& client, const kube::Resource& resource,
                                Json object, const DesiredStatusFn& desired, int attempts) {
  StatusWrite out;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    const Json old_status = StatusOf(object);
    auto status = desired(object);
    if (!status.ok()) return status.status();
    if (*status == old_status) {
      out.object = std::move(object);
      out.replaced = old_status;
      return out;
    }
    Json update = object;
    update["status"] = *status;
    auto written = client.UpdateStatus(resource, update);
    if (written.ok()) {
      out.changed = true;
      out.object = std::move(*written);
      out.replaced = old_status;
      return out;
    }
    if (kube::IsNotFound(written.status())) {
      out.gone = true;
      out.object = std::move(object);
      return out;
    }
    if (!kube::IsConflict(written.status())) {
      return written.status().WithContext(resource.kind + " " + kube::ObjectKey(object) +
                                          ": status update");
    }
    // Our copy was behind (a spec edit, or another writer): recompute on the fresh object.
    auto [ns, name] = kube::SplitKey(kube::ObjectKey(object));
    auto fresh = client.Get(resource, ns, name);
    if (!fresh.ok()) {
      if (kube::IsNotFound(fresh.status())) {
        out.gone = true;
        out.object = std::move(object);
        return out;
      }
      return fresh.status().WithContext(resource.kind + " " + name + ": re-read after conflict");
    }
    object = std::move(*fresh);
  }
  return AbortedError(resource.kind + " " + kube::ObjectKey(object) +
                      ": status update: " + std::to_string(attempts) + " conflicts in a row");
}

Status ReportInvalidObject(kube::ApiClient& client, kube::EventRecorder& events,
                           const kube::Resource& resource, Json object, const Status& error,
                           kube::WallTime now, const std::string& reason,
                           const std::string& error_phase) {
  // Nothing we can write to without an object and its metadata (a bad metadata field may be the
  // name, which a status update and an Event need).
  if (!object.is_object() || !object.contains("metadata") || !object["metadata"].is_object() ||
      !object["metadata"].contains("name") || !object["metadata"]["name"].is_string() ||
      error.message().rfind("metadata", 0) == 0) {
    spdlog::warn("{}: ignoring an object that does not parse: {}", resource.kind, error.message());
    return Status::Ok();
  }
  const Json& meta = object["metadata"];
  if (meta.contains("deletionTimestamp")) return Status::Ok();
  const int64_t generation = meta.contains("generation") && meta["generation"].is_number_integer()
                                 ? meta["generation"].get<int64_t>()
                                 : 0;
  // The status is ours: when it is the part that does not parse, it is rewritten from scratch.
  if (error.message().rfind("status", 0) == 0) object["status"] = Json::object();
  auto written = WriteStatus(client, resource, std::move(object), [&](const Json& o) {
    Json status = StatusOf(o);
    status["observedGeneration"] = generation;
    if (!error_phase.empty()) status["phase"] = error_phase;
    kube::SetCondition(status, {"Ready", "False", reason, error.message(), generation, ""}, now);
    return Result<Json>(std::move(status));
  });
  if (!written.ok()) return written.status();
  // Unchanged (a resync or relist of the same bad object): no second Event.
  if (!written->changed) return Status::Ok();
  events.Record(written->object, kube::EventType::kWarning, reason, error.message());
  spdlog::warn("{} {}: {}", resource.kind, kube::ObjectKey(written->object), error.message());
  return Status::Ok();
}

}  // namespace strata::ctrl
