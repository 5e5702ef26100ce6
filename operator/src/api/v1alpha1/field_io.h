#pragma once

// Reading and writing of typed API objects, shared by every kind. Each struct describes its
// fields once, in a `Fields(io, s)` function template that both FieldReader (JSON -> struct,
// checking the CRD's rules) and FieldWriter (struct -> JSON) run, so the two directions cannot
// drift apart. `Fields` overloads live in this namespace and are found by argument-dependent
// lookup when FieldReader/FieldWriter reach a nested struct.

#include <concepts>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "strata/common/status.h"
#include "strata/operator/api/v1alpha1/common.h"

namespace strata::op::api::v1alpha1 {

using kube::Json;

enum class Format { kNone, kDateTime, kDuration };

// What the CRD schema says about one field. Designated initializers name the parts used; keep
// this declaration order.
struct Rule {
  bool required = false;
  std::span<const std::string_view> one_of = {};  // enum
  const char* pattern = nullptr;                  // ECMAScript regex, the CRD's own
  Format format = Format::kNone;
  int64_t max_length = -1;
  std::optional<double> minimum = std::nullopt;
  std::optional<double> maximum = std::nullopt;
  int64_t min_items = 0;
  int64_t max_items = -1;
  const char* map_key = nullptr;  // x-kubernetes-list-type: map, keyed by this field
  bool set = false;               // x-kubernetes-list-type: set
  const Rule* items = nullptr;    // rule for each item of a list of scalars
};

// Patterns and enums more than one kind uses.
inline constexpr const char* kDurationPattern = "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$";
inline constexpr const char* kLabelValuePattern = "^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$";
inline constexpr Rule kDurationRule{.format = Format::kDuration, .max_length = 32};
inline constexpr Rule kNonNegative{.minimum = 0};
inline constexpr Rule kTierClassRule{.one_of = kTierClasses};
inline constexpr Rule kRequiredTierClass{.required = true, .one_of = kTierClasses};
inline constexpr Rule kLabelValueRule{.pattern = kLabelValuePattern, .max_length = 63};
// allowedRegions / allowedJurisdictions.
inline constexpr Rule kAuditList{.max_items = 32, .set = true, .items = &kLabelValueRule};
inline constexpr Rule kConditionList{.map_key = "type"};

// Records `path: reason` as the error unless an earlier one is there (the first error wins).
void Fail(Status* error, const std::string& path, const std::string& reason);
// "string \"x\"", "integer 5", "object", ...: what a value of the wrong type was.
std::string Describe(const Json& v);
// Checks a string against the rule's enum, length, pattern and format.
void CheckString(Status* error, const std::string& path, const std::string& s, const Rule& rule);
void CheckRange(Status* error, const std::string& path, double v, const Json& raw,
                const Rule& rule);
// List-map and set uniqueness over the raw items.
void CheckUnique(Status* error, const std::string& path, const Json& items, const Rule& rule);

template <typename T>
struct IsOptional : std::false_type {};
template <typename T>
struct IsOptional<std::optional<T>> : std::true_type {};
template <typename T>
struct IsVector : std::false_type {};
template <typename T>
struct IsVector<std::vector<T>> : std::true_type {};

// `Fields(io, x)` takes the struct const when writing and mutable when reading.
template <typename T, typename U>
concept Is = std::same_as<std::remove_const_t<T>, U>;

// kube::Condition is outside this namespace, so argument-dependent lookup would not find its
// Fields: it is declared before the reader and writer, for ordinary lookup.
inline constexpr std::string_view kConditionStatuses[] = {"True", "False", "Unknown"};

void Fields(auto& io, Is<kube::Condition> auto& c) {
  io.Field("type", c.type, {.required = true, .max_length = 316});
  io.Field("status", c.status, {.required = true, .one_of = kConditionStatuses});
  io.Field("reason", c.reason, {.max_length = 1024});
  io.Field("message", c.message, {.max_length = 32768});
  io.Field("observedGeneration", c.observed_generation, kNonNegative);
  io.Field("lastTransitionTime", c.last_transition_time, {.format = Format::kDateTime});
}

// Reads the fields of one JSON object. Never throws: each value's JSON type is checked before
// it is read. Errors go to a Status shared by the whole object (the first one wins).
class FieldReader {
 public:
  FieldReader(const Json& object, std::string path, Status* error)
      : object_(object), path_(std::move(path)), error_(error) {}

  // Reads `key` into `out`. Absent: an error if required; else `out` keeps its value, which is
  // the CRD's default (member initializers) or nullopt.
  template <typename T>
  void Field(const char* key, T& out, const Rule& rule = {}) {
    if (!error_->ok()) return;
    const std::string path = path_.empty() ? key : path_ + "." + key;
    auto it = object_.find(key);
    if (it == object_.end()) {
      if (rule.required) Fail(error_, path, "required");
      return;
    }
    Read(*it, path, out, rule);
  }

  template <typename T>
  void Read(const Json& v, const std::string& path, T& out, const Rule& rule) {
    if constexpr (IsOptional<T>::value) {
      typename T::value_type value{};
      Read(v, path, value, rule);
      if (error_->ok()) out = std::move(value);
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!v.is_string()) return Fail(error_, path, "must be a string, not " + Describe(v));
      out = v.get<std::string>();
      CheckString(error_, path, out, rule);
    } else if constexpr (std::is_same_v<T, int64_t>) {
      if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > INT64_MAX)) {
        return Fail(error_, path, "must be an integer, not " + Describe(v));
      }
      out = v.get<int64_t>();
      CheckRange(error_, path, static_cast<double>(out), v, rule);
    } else if constexpr (std::is_same_v<T, double>) {
      if (!v.is_number()) return Fail(error_, path, "must be a number, not " + Describe(v));
      out = v.get<double>();
      CheckRange(error_, path, out, v, rule);
    } else if constexpr (std::is_same_v<T, bool>) {
      if (!v.is_boolean()) return Fail(error_, path, "must be a boolean, not " + Describe(v));
      out = v.get<bool>();
    } else if constexpr (std::is_same_v<T, std::map<std::string, std::string>>) {
      if (!v.is_object()) return Fail(error_, path, "must be an object, not " + Describe(v));
      for (const auto& [k, item] : v.items()) Read(item, path + "." + k, out[k], {});
    } else if constexpr (IsVector<T>::value) {
      if (!v.is_array()) return Fail(error_, path, "must be an array, not " + Describe(v));
      const auto n = static_cast<int64_t>(v.size());
      if (n < rule.min_items) {
        return Fail(
            error_, path,
            "has " + std::to_string(n) + " items, fewer than " + std::to_string(rule.min_items));
      }
      if (rule.max_items >= 0 && n > rule.max_items) {
        return Fail(
            error_, path,
            "has " + std::to_string(n) + " items, more than " + std::to_string(rule.max_items));
      }
      out.assign(v.size(), {});
      for (size_t i = 0; i < v.size() && error_->ok(); ++i) {
        Read(v[i], path + "[" + std::to_string(i) + "]", out[i],
             rule.items != nullptr ? *rule.items : Rule{});
      }
      if (error_->ok()) CheckUnique(error_, path, v, rule);
    } else {
      if (!v.is_object()) return Fail(error_, path, "must be an object, not " + Describe(v));
      FieldReader nested(v, path, error_);
      Fields(nested, out);
    }
  }

 private:
  const Json& object_;
  const std::string path_;
  Status* const error_;
};

// Writes fields into one JSON object, leaving out absent optionals, empty strings, lists and
// maps (see common.h).
class FieldWriter {
 public:
  explicit FieldWriter(Json& object) : object_(object) {}

  template <typename T>
  void Field(const char* key, const T& value, const Rule& = {}) {
    Json j;
    if (Write(value, j)) object_[key] = std::move(j);
  }

  // False when `value` is to be left out.
  template <typename T>
  static bool Write(const T& value, Json& j) {
    if constexpr (IsOptional<T>::value) {
      return value.has_value() && Write(*value, j);
    } else if constexpr (std::is_same_v<T, std::string> ||
                         std::is_same_v<T, std::map<std::string, std::string>>) {
      if (value.empty()) return false;
      j = value;
    } else if constexpr (std::is_arithmetic_v<T>) {
      j = value;
    } else if constexpr (IsVector<T>::value) {
      if (value.empty()) return false;
      j = Json::array();
      for (const auto& item : value) {
        Json out;
        Write(item, out);
        j.push_back(std::move(out));
      }
    } else {
      j = Json::object();
      FieldWriter nested(j);
      Fields(nested, value);
    }
    return true;
  }

 private:
  Json& object_;
};

void Fields(auto& io, Is<ObjectMeta> auto& m) {
  io.Field("name", m.name);
  io.Field("namespace", m.namespace_);
  io.Field("uid", m.uid);
  io.Field("resourceVersion", m.resource_version);
  io.Field("generation", m.generation, kNonNegative);
  io.Field("creationTimestamp", m.creation_timestamp, {.format = Format::kDateTime});
  io.Field("deletionTimestamp", m.deletion_timestamp, {.format = Format::kDateTime});
  io.Field("labels", m.labels);
  io.Field("annotations", m.annotations);
  io.Field("finalizers", m.finalizers);
}

inline constexpr std::string_view kSelectorOperators[] = {"In", "NotIn", "Exists", "DoesNotExist"};

void Fields(auto& io, Is<LabelSelectorRequirement> auto& r) {
  io.Field("key", r.key, {.required = true, .max_length = 317});
  io.Field("operator", r.operator_, {.required = true, .one_of = kSelectorOperators});
  io.Field("values", r.values);
}

void Fields(auto& io, Is<LabelSelector> auto& s) {
  io.Field("matchLabels", s.match_labels);
  io.Field("matchExpressions", s.match_expressions);
}

// observedGeneration and conditions (ObjectStatus), the part of every kind's status it shares.
void ObjectStatusFields(auto& io, auto& status) {
  io.Field("observedGeneration", status.observed_generation, kNonNegative);
  io.Field("conditions", status.conditions, kConditionList);
}

// The envelope every kind shares: apiVersion, kind, metadata (required), spec (required),
// status. `Kind` is one of the kinds (an Object<Spec, Status> with a static kKind).
template <typename Kind>
Result<Kind> ObjectFromJson(const Json& json) {
  Status error;
  if (!json.is_object()) {
    return InvalidArgumentError(std::string(Kind::kKind) + ": must be an object, not " +
                                Describe(json));
  }
  FieldReader root(json, "", &error);
  std::string api_version, kind;
  const std::string_view api_versions[] = {kApiVersion};
  const std::string_view kinds[] = {Kind::kKind};
  root.Field("apiVersion", api_version, {.one_of = api_versions});
  root.Field("kind", kind, {.one_of = kinds});
  Kind out;
  root.Field("metadata", out.metadata, {.required = true});
  root.Field("spec", out.spec, {.required = true});
  root.Field("status", out.status);
  if (!error.ok()) return error;
  return out;
}

template <typename Kind>
Json ObjectToJson(const Kind& o) {
  Json j = {{"apiVersion", std::string(kApiVersion)}, {"kind", std::string(Kind::kKind)}};
  FieldWriter w(j);
  w.Field("metadata", o.metadata);
  w.Field("spec", o.spec);
  Json status;
  FieldWriter::Write(o.status, status);
  if (!status.empty()) j["status"] = std::move(status);
  return j;
}

}  // namespace strata::op::api::v1alpha1
