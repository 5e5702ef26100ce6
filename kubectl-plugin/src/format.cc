#include "strata/kubectl/format.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace strata::kubectl {
namespace {

std::string Printf(const char* format, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, value);
  return buf;
}

}  // namespace

std::string FormatBytes(int64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 0) return "-";
  if (bytes < 1024) return std::to_string(bytes) + "B";
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 6) {
    value /= 1024;
    ++unit;
  }
  // 1023.96 KiB would print as "1024KiB": step up once the rounding reaches 1024.
  if (std::round(value) >= 1024 && unit < 6) {
    value /= 1024;
    ++unit;
  }
  if (value >= 100 || value == std::floor(value)) return Printf("%.0f", value) + kUnits[unit];
  return Printf("%.1f", value) + kUnits[unit];
}

std::string FormatRate(double bytes_per_second) {
  if (bytes_per_second < 0 || std::isnan(bytes_per_second)) return "-";
  return FormatBytes(static_cast<int64_t>(bytes_per_second)) + "/s";
}

std::string FormatDuration(std::chrono::seconds d) {
  // k8s.io/apimachinery/pkg/util/duration.HumanDuration.
  int64_t s = d.count();
  if (s < 0) s = 0;
  auto str = [](int64_t v) { return std::to_string(v); };
  if (s < 60 * 2) return str(s) + "s";
  int64_t minutes = s / 60;
  if (minutes < 10) {
    return s % 60 == 0 ? str(minutes) + "m" : str(minutes) + "m" + str(s % 60) + "s";
  }
  if (minutes < 60 * 3) return str(minutes) + "m";
  int64_t hours = s / 3600;
  if (hours < 8) {
    return minutes % 60 == 0 ? str(hours) + "h" : str(hours) + "h" + str(minutes % 60) + "m";
  }
  if (hours < 48) return str(hours) + "h";
  if (hours < 24 * 8) {
    return hours % 24 == 0 ? str(hours / 24) + "d" : str(hours / 24) + "d" + str(hours % 24) + "h";
  }
  if (hours < 24 * 365 * 2) return str(hours / 24) + "d";
  if (hours < 24 * 365 * 8) {
    int64_t days = hours / 24;
    return days % 365 == 0 ? str(days / 365) + "y" : str(days / 365) + "y" + str(days % 365) + "d";
  }
  return str(hours / 24 / 365) + "y";
}

Result<std::chrono::seconds> ParseDuration(std::string_view text) {
  auto bad = [&](const char* why) {
    return InvalidArgumentError("duration \"" + std::string(text) + "\": " + why +
                                " (examples: 90s, 10m, 1h30m, 24h)");
  };
  if (text.empty()) return bad("empty");
  double total_ms = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) != 0)) ++i;
    if (i == start) return bad("expected a number");
    if (i < text.size() && text[i] == '.') {
      ++i;
      size_t frac = i;
      while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) != 0)) ++i;
      if (i == frac) return bad("expected digits after '.'");
    }
    double number = std::stod(std::string(text.substr(start, i - start)));
    double unit_ms = 0;
    if (text.substr(i, 2) == "ms") {
      unit_ms = 1;
      i += 2;
    } else if (i < text.size() && text[i] == 's') {
      unit_ms = 1000;
      ++i;
    } else if (i < text.size() && text[i] == 'm') {
      unit_ms = 60'000;
      ++i;
    } else if (i < text.size() && text[i] == 'h') {
      unit_ms = 3'600'000;
      ++i;
    } else {
      return bad("each number needs a unit: ms, s, m or h");
    }
    total_ms += number * unit_ms;
  }
  if (total_ms > 1e15) return bad("too long");
  auto seconds = static_cast<int64_t>(total_ms / 1000);
  if (seconds <= 0) return bad("must be at least 1s");
  return std::chrono::seconds(seconds);
}

std::string DurationString(std::chrono::seconds d) {
  int64_t s = d.count();
  if (s <= 0) return "0s";
  std::string out;
  if (s >= 3600) out += std::to_string(s / 3600) + "h";
  if (s % 3600 >= 60) out += std::to_string(s % 3600 / 60) + "m";
  if (s % 60 != 0) out += std::to_string(s % 60) + "s";
  return out;
}

std::string Rfc3339(WallTime t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<WallTime> ParseRfc3339(std::string_view text) {
  std::tm tm{};
  std::string s(text);
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr) return InvalidArgumentError("\"" + s + "\" is not an RFC 3339 time");
  if (*end == '.') {
    ++end;
    while (std::isdigit(static_cast<unsigned char>(*end)) != 0) ++end;
  }
  if (std::string_view(end) != "Z") {
    return InvalidArgumentError("\"" + s + "\" is not an RFC 3339 time in UTC");
  }
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string Age(std::string_view timestamp, WallTime now) {
  auto t = ParseRfc3339(timestamp);
  if (!t.ok()) return "<unknown>";
  return FormatDuration(std::chrono::duration_cast<std::chrono::seconds>(now - *t));
}

std::string ProgressBar(int64_t done, int64_t total, int width) {
  if (width < 1) width = 1;
  if (total <= 0) return "[" + std::string(width, '-') + "]   ?%";
  done = std::clamp<int64_t>(done, 0, total);
  // Full cells only when really done: 99.9% shows one cell short.
  auto cells = static_cast<int>(static_cast<double>(done) * width / static_cast<double>(total));
  auto percent = static_cast<int>(static_cast<double>(done) * 100 / static_cast<double>(total));
  char pct[8];
  std::snprintf(pct, sizeof pct, "%3d%%", percent);
  return "[" + std::string(cells, '#') + std::string(width - cells, '-') + "] " + pct;
}

std::string FormatFixed(double value, int decimals) {
  double scale = std::pow(10.0, decimals);
  double rounded = std::round(value * scale) / scale;
  if (rounded == 0) rounded = 0;  // no "-0.00"
  char format[16];
  std::snprintf(format, sizeof format, "%%.%df", decimals);
  return Printf(format, rounded);
}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(headers_.size());
  for (auto& c : cells) {
    if (c.empty()) c = "<none>";
  }
  rows_.push_back(std::move(cells));
}

std::string Table::Render() const {
  std::vector<size_t> widths(headers_.size());
  for (size_t i = 0; i < headers_.size(); ++i) widths[i] = headers_[i].size();
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    std::string l;
    for (size_t i = 0; i < cells.size(); ++i) {
      l += cells[i];
      if (i + 1 < cells.size()) l += std::string(widths[i] - cells[i].size() + 3, ' ');
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l + "\n";
  };
  line(headers_);
  for (const auto& row : rows_) line(row);
  return out;
}

namespace {

bool NeedsQuotes(const std::string& s) {
  if (s.empty()) return true;
  static const char* kSpecial[] = {"true", "false", "True", "False", "TRUE", "FALSE", "yes",
                                   "no",   "Yes",   "No",   "YES",   "NO",   "on",    "off",
                                   "On",   "Off",   "ON",   "OFF",   "null", "Null",  "NULL",
                                   "~",    "y",     "n",    "Y",     "N"};
  for (const char* k : kSpecial) {
    if (s == k) return true;
  }
  if (std::string_view("-?:,[]{}#&*!|>'\"%@`").find(s.front()) != std::string_view::npos) {
    return true;
  }
  if (s.front() == ' ' || s.back() == ' ') return true;
  if (s.find(": ") != std::string::npos || s.find(" #") != std::string::npos) return true;
  if (s.back() == ':') return true;
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  }
  // Anything that reads as a number (or a date, or .inf/.nan) in YAML 1.1 or 1.2.
  bool numeric_looking = std::isdigit(static_cast<unsigned char>(s.front())) != 0 ||
                         s.front() == '+' || s.front() == '.';
  for (char c : s) {
    if (std::string_view("0123456789+-.eE_:xXoObB").find(c) == std::string_view::npos &&
        !(std::isxdigit(static_cast<unsigned char>(c)) != 0)) {
      numeric_looking = false;
      break;
    }
  }
  if (numeric_looking) return true;
  // YAML 1.1 timestamps ("2026-12-06", "2026-12-06T06:57:31Z") load as dates, not strings.
  if (s.size() >= 8 && std::isdigit(static_cast<unsigned char>(s[0])) != 0 &&
      std::isdigit(static_cast<unsigned char>(s[1])) != 0 &&
      std::isdigit(static_cast<unsigned char>(s[2])) != 0 &&
      std::isdigit(static_cast<unsigned char>(s[3])) != 0 && s[4] == '-') {
    return true;
  }
  if (s[0] == '.' && (s.find("inf") != std::string::npos || s.find("nan") != std::string::npos ||
                      s.find("Inf") != std::string::npos || s.find("NaN") != std::string::npos)) {
    return true;
  }
  return false;
}

std::string Scalar(const Json& v) {
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    return NeedsQuotes(s) ? Json(s).dump() : s;
  }
  return v.dump();  // numbers, booleans, null
}

bool IsEmptyCollection(const Json& v) { return (v.is_object() || v.is_array()) && v.empty(); }

void Emit(const Json& v, int indent, std::string& out);

// Writes `key: value` (a scalar or empty collection on the line, otherwise a nested block).
void EmitMember(const std::string& key, const Json& v, int indent, std::string& out) {
  out += std::string(indent, ' ') + Scalar(Json(key)) + ":";
  if (v.is_object() && !v.empty()) {
    out += "\n";
    Emit(v, indent + 2, out);
  } else if (v.is_array() && !v.empty()) {
    out += "\n";
    Emit(v, indent, out);  // kubectl style: sequences at the key's indent
  } else {
    out += " " + (IsEmptyCollection(v) ? v.dump() : Scalar(v)) + "\n";
  }
}

void Emit(const Json& v, int indent, std::string& out) {
  const std::string pad(indent, ' ');
  if (v.is_object()) {
    if (v.empty()) {
      out += pad + "{}\n";
      return;
    }
    for (const auto& [k, val] : v.items()) EmitMember(k, val, indent, out);
  } else if (v.is_array()) {
    if (v.empty()) {
      out += pad + "[]\n";
      return;
    }
    for (const auto& item : v) {
      if (item.is_object() && !item.empty()) {
        // "- " then the first member on the same line, the rest indented under it.
        std::string nested;
        Emit(item, indent + 2, nested);
        out += pad + "- " + nested.substr(indent + 2);
      } else if (item.is_array() && !item.empty()) {
        out += pad + "-\n";
        Emit(item, indent + 2, out);
      } else {
        out += pad + "- " + (IsEmptyCollection(item) ? item.dump() : Scalar(item)) + "\n";
      }
    }
  } else {
    out += pad + Scalar(v) + "\n";
  }
}

}  // namespace

std::string ToYaml(const Json& value) {
  std::string out;
  Emit(value, 0, out);
  return out;
}

}  // namespace strata::kubectl
