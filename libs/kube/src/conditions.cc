#include "strata/kube/conditions.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

namespace strata::kube {
namespace {

// Empty reason and message are left out rather than written as "": the kube-apiserver 1.20 of
// the test control plane rejects an empty string in a custom resource as "null" ("must be of type
// string"), and an absent field means the same to every reader.
Json ToJson(const Condition& c) {
  Json j = {{"type", c.type},
            {"status", c.status},
            {"observedGeneration", c.observed_generation},
            {"lastTransitionTime", c.last_transition_time}};
  if (!c.reason.empty()) j["reason"] = c.reason;
  if (!c.message.empty()) j["message"] = c.message;
  return j;
}

std::string Format(WallTime t, bool micro) {
  const auto secs = std::chrono::time_point_cast<std::chrono::seconds>(t);
  const std::time_t tt = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out = buf;
  if (micro) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t - secs).count();
    std::snprintf(buf, sizeof buf, ".%06lld", static_cast<long long>(us));
    out += buf;
  }
  return out + "Z";
}

}  // namespace

std::string FormatTime(WallTime t) { return Format(t, false); }
std::string FormatMicroTime(WallTime t) { return Format(t, true); }

std::optional<WallTime> ParseTime(std::string_view text) {
  std::tm tm{};
  std::string s(text);
  const char* rest = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == nullptr) return std::nullopt;
  WallTime t = std::chrono::system_clock::from_time_t(timegm(&tm));
  if (*rest == '.') {
    ++rest;
    long long frac = 0;
    int digits = 0;
    while (*rest >= '0' && *rest <= '9') {
      if (digits < 6) {
        frac = frac * 10 + (*rest - '0');
        ++digits;
      }
      ++rest;
    }
    while (digits++ < 6) frac *= 10;
    t += std::chrono::microseconds(frac);
  }
  if (*rest != 'Z') return std::nullopt;  // the API always writes UTC
  return t;
}

bool SetCondition(Json& status, const Condition& c, WallTime now) {
  if (!status.is_object()) status = Json::object();
  Json& list = status["conditions"];
  if (!list.is_array()) list = Json::array();
  for (Json& existing : list) {
    if (existing.value("type", "") != c.type) continue;
    Condition merged = c;
    merged.last_transition_time = existing.value("status", "") == c.status
                                      ? existing.value("lastTransitionTime", FormatTime(now))
                                      : FormatTime(now);
    Json next = ToJson(merged);
    if (next == existing) return false;
    existing = std::move(next);
    return true;
  }
  Condition fresh = c;
  fresh.last_transition_time = FormatTime(now);
  list.push_back(ToJson(fresh));
  return true;
}

std::optional<Condition> FindCondition(const Json& status, std::string_view type) {
  if (!status.is_object() || !status.contains("conditions") || !status["conditions"].is_array()) {
    return std::nullopt;
  }
  for (const Json& c : status["conditions"]) {
    if (c.value("type", "") != type) continue;
    return Condition{c.value("type", ""),
                     c.value("status", ""),
                     c.value("reason", ""),
                     c.value("message", ""),
                     c.value("observedGeneration", int64_t{0}),
                     c.value("lastTransitionTime", "")};
  }
  return std::nullopt;
}

bool IsConditionTrue(const Json& status, std::string_view type) {
  auto c = FindCondition(status, type);
  return c && c->status == "True";
}

bool RemoveCondition(Json& status, std::string_view type) {
  if (!status.is_object() || !status.contains("conditions")) return false;
  Json& list = status["conditions"];
  for (auto it = list.begin(); it != list.end(); ++it) {
    if (it->value("type", "") == type) {
      list.erase(it);
      return true;
    }
  }
  return false;
}

bool HasFinalizer(const Json& object, std::string_view finalizer) {
  if (!object.contains("metadata") || !object["metadata"].contains("finalizers")) return false;
  for (const Json& f : object["metadata"]["finalizers"]) {
    if (f.is_string() && f.get<std::string>() == finalizer) return true;
  }
  return false;
}

bool AddFinalizer(Json& object, std::string_view finalizer) {
  if (HasFinalizer(object, finalizer)) return false;
  Json& list = object["metadata"]["finalizers"];
  if (!list.is_array()) list = Json::array();
  list.push_back(std::string(finalizer));
  return true;
}

bool RemoveFinalizer(Json& object, std::string_view finalizer) {
  if (!HasFinalizer(object, finalizer)) return false;
  Json& list = object["metadata"]["finalizers"];
  Json kept = Json::array();
  for (Json& f : list) {
    if (!(f.is_string() && f.get<std::string>() == finalizer)) kept.push_back(std::move(f));
  }
  list = std::move(kept);
  return true;
}

}  // namespace strata::kube
