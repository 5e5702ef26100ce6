#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "strata/common/result.h"

namespace strata::kubectl {

using Json = nlohmann::json;
using WallTime = std::chrono::system_clock::time_point;

// Byte sizes in binary units, compact for table cells: "0B", "512B", "1.5KiB", "10GiB", "12.3TiB".
// One decimal below 100 of a unit unless the value is whole.
std::string FormatBytes(int64_t bytes);

// A rate: FormatBytes(bytes per second) + "/s"; "-" when negative.
std::string FormatRate(double bytes_per_second);

// kubectl's human durations (its AGE column): "45s", "5m30s", "42m", "3h20m", "20h", "2d4h",
// "30d", "2y". Negative durations print as "0s".
std::string FormatDuration(std::chrono::seconds d);

// Go-style durations as the CRDs take them ("90s", "10m", "1h30m", "1.5h", "500ms"), rounded down
// to whole seconds. INVALID_ARGUMENT naming the text when it is not one or is not positive.
Result<std::chrono::seconds> ParseDuration(std::string_view text);

// The Go-style text of a whole number of seconds: "24h", "1h30m", "45s".
std::string DurationString(std::chrono::seconds d);

// RFC 3339 in UTC with whole seconds ("2026-12-06T06:57:31Z"), as metav1.Time writes it.
std::string Rfc3339(WallTime t);
// Parses what the apiserver writes (UTC, "Z", optional fraction); INVALID_ARGUMENT otherwise.
Result<WallTime> ParseRfc3339(std::string_view text);
// The AGE of an object created at `timestamp` (RFC 3339): FormatDuration(now - created), or
// "<unknown>" when the timestamp does not parse.
std::string Age(std::string_view timestamp, WallTime now);

// "[##########----------]  50%" with `width` cells inside the brackets. `total` <= 0 prints the
// empty bar and "  ?%"; `done` is clamped to [0, total].
std::string ProgressBar(int64_t done, int64_t total, int width = 20);

// A fixed-point number: FormatFixed(6.125, 2) == "6.13" (round half away from zero).
std::string FormatFixed(double value, int decimals);

// A table as kubectl prints one: upper-case headers, columns left-aligned and separated by three
// spaces, no trailing blanks. Empty cells print as "<none>".
class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  void AddRow(std::vector<std::string> cells);
  bool empty() const { return rows_.empty(); }
  std::string Render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// JSON as block YAML (what `kubectl get -o yaml` prints): two-space indents, sequences of
// mappings as "- key: value"; strings are quoted (JSON-style, a YAML double-quoted scalar) when
// plain style would change their meaning or type ("true", "123", "", ": ", leading "-", ...).
std::string ToYaml(const Json& value);

}  // namespace strata::kubectl
