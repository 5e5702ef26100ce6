#include "strata/kube/store.h"

namespace strata::kube {

std::string ResourceVersionOf(const Json& object) {
  if (!object.contains("metadata")) return "";
  return object["metadata"].value("resourceVersion", "");
}

std::optional<Json> Store::Get(const std::string& key) const {
  std::lock_guard g(mu_);
  auto it = objects_.find(key);
  if (it == objects_.end()) return std::nullopt;
  return it->second;
}

std::vector<Json> Store::List() const {
  std::lock_guard g(mu_);
  std::vector<Json> out;
  out.reserve(objects_.size());
  for (const auto& [k, v] : objects_) out.push_back(v);
  return out;
}

std::vector<std::string> Store::Keys() const {
  std::lock_guard g(mu_);
  std::vector<std::string> out;
  for (const auto& [k, v] : objects_) out.push_back(k);
  return out;
}

size_t Store::Size() const {
  std::lock_guard g(mu_);
  return objects_.size();
}

std::optional<StoreDelta> Store::Upsert(Json object) {
  const std::string key = ObjectKey(object);
  std::lock_guard g(mu_);
  auto it = objects_.find(key);
  if (it == objects_.end()) {
    objects_.emplace(key, object);
    return StoreDelta{StoreDelta::Type::kAdded, Json(), std::move(object)};
  }
  if (ResourceVersionOf(it->second) == ResourceVersionOf(object)) return std::nullopt;
  StoreDelta d{StoreDelta::Type::kUpdated, std::move(it->second), object};
  it->second = std::move(object);
  return d;
}

std::optional<StoreDelta> Store::Remove(const Json& object) {
  const std::string key = ObjectKey(object);
  std::lock_guard g(mu_);
  auto it = objects_.find(key);
  if (it == objects_.end()) return std::nullopt;
  StoreDelta d{StoreDelta::Type::kDeleted, std::move(it->second), Json()};
  objects_.erase(it);
  return d;
}

std::vector<StoreDelta> Store::Replace(std::vector<Json> objects) {
  std::map<std::string, Json> fresh;
  for (auto& o : objects) {
    std::string key = ObjectKey(o);
    fresh.emplace(std::move(key), std::move(o));
  }
  std::vector<StoreDelta> deltas;
  std::lock_guard g(mu_);
  for (auto& [key, old] : objects_) {
    if (!fresh.contains(key)) deltas.push_back({StoreDelta::Type::kDeleted, old, Json()});
  }
  for (const auto& [key, obj] : fresh) {
    auto it = objects_.find(key);
    if (it == objects_.end()) {
      deltas.push_back({StoreDelta::Type::kAdded, Json(), obj});
    } else if (ResourceVersionOf(it->second) != ResourceVersionOf(obj)) {
      deltas.push_back({StoreDelta::Type::kUpdated, it->second, obj});
    }
  }
  objects_ = std::move(fresh);
  return deltas;
}

}  // namespace strata::kube
