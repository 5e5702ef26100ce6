#include <cmath>
#include <cstdio>
#include <mutex>
#include <regex>
#include <set>

#include "field_io.h"

namespace strata::op::api::v1alpha1 {
namespace {

std::string Number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

std::string Truncated(std::string s) {
  constexpr size_t kMax = 80;
  if (s.size() > kMax) s = s.substr(0, kMax) + "...";
  return s;
}

// The CRD patterns are constants, compiled once. A coarse lock: parsing is not a hot path.
bool Matches(const char* pattern, const std::string& s) {
  static std::mutex mu;
  static auto* compiled = new std::map<std::string, std::regex>();
  std::lock_guard lock(mu);
  auto it = compiled->find(pattern);
  if (it == compiled->end()) it = compiled->emplace(pattern, std::regex(pattern)).first;
  return std::regex_search(s, it->second);
}

// RFC 3339 date-time, as the apiserver's "date-time" format checks it.
constexpr const char* kDateTimePattern =
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{"
    "2})$";

// Characters (code points), as the apiserver counts maxLength.
int64_t Length(const std::string& s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace

void Fail(Status* error, const std::string& path, const std::string& reason) {
  if (error->ok()) *error = InvalidArgumentError(path + ": " + reason);
}

std::string Describe(const Json& v) {
  if (v.is_object() || v.is_array()) return v.type_name();
  if (v.is_number_integer()) return "integer " + v.dump();
  return std::string(v.type_name()) + " " + Truncated(v.dump());
}

void CheckString(Status* error, const std::string& path, const std::string& s, const Rule& rule) {
  const std::string quoted = Truncated(Json(s).dump());
  if (!rule.one_of.empty()) {
    std::string values;
    bool found = false;
    for (std::string_view v : rule.one_of) {
      found = found || v == s;
      values += (values.empty() ? "" : ", ") + std::string(v);
    }
    if (!found) return Fail(error, path, quoted + " is not one of " + values);
  }
  if (rule.max_length >= 0 && Length(s) > rule.max_length) {
    return Fail(error, path,
                quoted + " is longer than " + std::to_string(rule.max_length) + " characters");
  }
  if (rule.pattern != nullptr && !Matches(rule.pattern, s)) {
    return Fail(error, path, quoted + " does not match " + rule.pattern);
  }
  if (rule.format == Format::kDuration && !ParseDuration(s).ok()) {
    return Fail(error, path, quoted + " is not a duration (e.g. 90s, 10m, 1h30m)");
  }
  if (rule.format == Format::kDateTime && !Matches(kDateTimePattern, s)) {
    return Fail(error, path, quoted + " is not an RFC 3339 date-time (e.g. 2025-06-01T02:00:00Z)");
  }
}

void CheckRange(Status* error, const std::string& path, double v, const Json& raw,
                const Rule& rule) {
  if (rule.minimum && v < *rule.minimum) {
    Fail(error, path, raw.dump() + " is less than the minimum " + Number(*rule.minimum));
  } else if (rule.maximum && v > *rule.maximum) {
    Fail(error, path, raw.dump() + " is greater than the maximum " + Number(*rule.maximum));
  }
}

void CheckUnique(Status* error, const std::string& path, const Json& items, const Rule& rule) {
  if (rule.map_key == nullptr && !rule.set) return;
  std::set<std::string> seen;
  for (size_t i = 0; i < items.size(); ++i) {
    const Json& item = items[i];
    const bool keyed = rule.map_key != nullptr && item.is_object() && item.contains(rule.map_key);
    const std::string key = keyed ? item[rule.map_key].dump() : item.dump();
    if (!seen.insert(key).second) {
      return Fail(
          error, path + "[" + std::to_string(i) + "]",
          "duplicate " + (keyed ? std::string(rule.map_key) + " " : "value ") + Truncated(key));
    }
  }
}

Result<std::chrono::nanoseconds> ParseDuration(std::string_view text) {
  auto bad = [&] {
    return InvalidArgumentError("\"" + std::string(text) + "\" is not a duration");
  };
  if (text.empty()) return bad();
  long double total = 0;  // nanoseconds
  size_t i = 0;
  auto digits = [&](long double* value, long double* scale) {
    const size_t start = i;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
      *value = *value * 10 + (text[i] - '0');
      *scale *= 10;
    }
    return i > start;
  };
  while (i < text.size()) {
    long double whole = 0, fraction = 0, unused = 1, scale = 1;
    if (!digits(&whole, &unused)) return bad();
    if (i < text.size() && text[i] == '.') {
      ++i;
      if (!digits(&fraction, &scale)) return bad();
    }
    const std::string_view rest = text.substr(i);
    long double unit = 0;
    if (rest.starts_with("ms")) {
      unit = 1e6L, i += 2;
    } else if (rest.starts_with("s")) {
      unit = 1e9L, i += 1;
    } else if (rest.starts_with("m")) {
      unit = 60e9L, i += 1;
    } else if (rest.starts_with("h")) {
      unit = 3600e9L, i += 1;
    } else {
      return bad();
    }
    total += (whole + fraction / scale) * unit;
  }
  if (total > static_cast<long double>(INT64_MAX)) return bad();
  return std::chrono::nanoseconds(static_cast<int64_t>(total));
}

}  // namespace strata::op::api::v1alpha1
