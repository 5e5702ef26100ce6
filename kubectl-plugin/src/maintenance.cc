// kubectl strata maintenance start|finish|abort|status: MaintenanceWindows (cluster-scoped;
// charts/strata/crds/strata.io_maintenancewindows.yaml) as operator/src/maintenance_window_
// reconciler.cc drives them: Pending -> Draining -> InMaintenance -> Restoring -> Completed, or
// Failed / Aborted.
//
// Selecting one device by name: the reconciler matches spec.deviceSelector against the
// StorageDevices' labels only, and a label selector cannot name an object. So `start` makes sure
// the device carries the label strata.io/device=NAME (the chart's and the demo's convention; added
// with a merge patch when missing, as `kubectl cordon` marks a node) and selects on it. The window
// carries the same label, which is how `finish DEVICE` and `abort DEVICE` find it.
//
// Recurring windows (spec.schedule.recurrence) go back to Pending with status.nextStart after
// each occurrence, the occurrence recorded in status.history (newest first). On them `finish`
// ends the occurrence under way only (the operator sets spec.finish back), and `abort` ends the
// whole series.
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <ostream>
#include <set>
#include <stop_token>
#include <thread>

#include "strata/kube/errors.h"
#include "strata/kubectl/cli.h"

namespace strata::kubectl {
namespace {

constexpr char kDeviceLabel[] = "strata.io/device";
constexpr char kReasonAnnotation[] = "strata.io/reason";
constexpr char kQualifiedKind[] = "maintenancewindow.strata.io";

const std::set<std::string> kTerminal = {"Completed", "Failed", "Aborted"};

std::string Phase(const Json& window) {
  std::string phase = Text(window, "/status/phase");
  return phase.empty() ? "Pending" : phase;
}

// The devices of a window: status.devices once the reconciler fixed them, else what the selector
// names through strata.io/device, else "-".
std::string DevicesCell(const Json& w) {
  std::vector<std::string> names;
  for (const auto& d : w.value("status", Json::object()).value("devices", Json::array())) {
    names.push_back(d.value("name", ""));
  }
  if (names.empty()) {
    std::string selected =
        Text(w, "/spec/deviceSelector/matchLabels/" + std::string("strata.io~1device"));
    if (!selected.empty()) names.push_back(selected);
  }
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ",") + n;
  return out.empty() ? "-" : out;
}

bool SelectsDevice(const Json& w, const std::string& device) {
  if (Text(w, "/metadata/labels/strata.io~1device") == device) return true;
  if (Text(w, "/spec/deviceSelector/matchLabels/strata.io~1device") == device) return true;
  for (const auto& d : w.value("status", Json::object()).value("devices", Json::array())) {
    if (d.value("name", "") == device) return true;
  }
  return false;
}

bool Recurring(const Json& w) { return !Text(w, "/spec/schedule/recurrence").empty(); }

// The newest entry of a recurring window's status.history, or null.
Json LastOccurrence(const Json& w) {
  const Json history = w.value("status", Json::object()).value("history", Json::array());
  return history.is_array() && !history.empty() ? history[0] : Json();
}

// A recurring window between occurrences: Pending with at least one occurrence behind it.
bool BetweenOccurrences(const Json& w) {
  return Recurring(w) && Phase(w) == "Pending" && LastOccurrence(w).is_object();
}

int64_t Int(const Json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_number() ? it->get<int64_t>() : -1;
}

// One LUN's progress as table cells: PROGRESS (bar), COPIED/TOTAL, RATE, ETA.
std::vector<std::string> LunProgressCells(const Json& v) {
  int64_t copied = Int(v, "bytesCopied");
  int64_t total = Int(v, "bytesTotal");
  int64_t rate = Int(v, "rate");
  std::string phase = v.value("phase", "");
  if ((phase == "Moved" || phase == "Restored") && total > 0 && copied < 0) copied = total;
  std::string eta = v.value("eta", "");
  if (eta.empty() && rate > 0 && total >= 0 && copied >= 0 && copied < total) {
    eta = FormatDuration(std::chrono::seconds((total - copied + rate - 1) / rate));
  }
  return {ProgressBar(copied < 0 ? 0 : copied, total, 20),
          (copied < 0 ? std::string("-") : FormatBytes(copied)) + "/" +
              (total < 0 ? std::string("-") : FormatBytes(total)),
          rate < 0 ? "-" : FormatRate(static_cast<double>(rate)), eta.empty() ? "-" : eta};
}

std::string LunTable(const Json& w) {
  Table table({"LUN", "FROM", "TO", "PHASE", "PROGRESS", "COPIED", "RATE", "ETA"});
  for (const auto& v : w.value("status", Json::object()).value("volumes", Json::array())) {
    auto cells = LunProgressCells(v);
    table.AddRow({v.value("lun", ""), v.value("fromDevice", ""), v.value("toDevice", ""),
                  v.value("phase", ""), cells[0], cells[1], cells[2], cells[3]});
  }
  return table.empty() ? "" : table.Render();
}

std::string Detail(const Json& w, WallTime now) {
  auto field = [](const std::string& name, const std::string& value) {
    std::string label = name + ":";
    return label + std::string(label.size() < 14 ? 14 - label.size() : 1, ' ') +
           (value.empty() ? "-" : value) + "\n";
  };
  std::string devices;
  for (const auto& d : w.value("status", Json::object()).value("devices", Json::array())) {
    std::string one = d.value("name", "") + " (" + d.value("phase", "?");
    if (d.contains("volumesRemaining")) {
      one += ", " + d["volumesRemaining"].dump() + " left";
    }
    devices += (devices.empty() ? "" : ", ") + one + ")";
  }
  if (devices.empty()) devices = DevicesCell(w) + " (selected)";
  std::string out;
  out += field("Name", Text(w, "/metadata/name"));
  out += field("Devices", devices);
  out += field("Phase", Phase(w));
  out += field("Progress", Text(w, "/status/progress"));
  out += field("Start", Text(w, "/spec/schedule/start"));
  out += field("Duration", Text(w, "/spec/schedule/duration"));
  if (Recurring(w)) {
    out += field("Recurrence", Text(w, "/spec/schedule/recurrence") +
                                   (Text(w, "/spec/suspend") == "true" ? " (suspended)" : ""));
    out += field("Next start", Text(w, "/status/nextStart"));
    std::string occurrences = Text(w, "/status/occurrences");
    std::string counts = (occurrences.empty() ? "0" : occurrences) + " run";
    if (std::string missed = Text(w, "/status/missedOccurrences"); !missed.empty()) {
      counts += ", " + missed + " missed";
    }
    if (std::string last = Text(w, "/status/lastCompleted"); !last.empty()) {
      counts += ", last completed " + last;
    }
    out += field("Occurrences", counts);
  }
  std::string restore = Text(w, "/spec/restore");
  out += field("Restore", restore.empty() ? "true" : restore);
  std::string requested;
  if (Text(w, "/spec/finish") == "true") requested = "finish";
  if (Text(w, "/spec/abort") == "true") requested += requested.empty() ? "abort" : ", abort";
  out += field("Requested", requested);
  out += field("Reason", Text(w, "/metadata/annotations/strata.io~1reason"));
  for (const auto& c : w.value("status", Json::object()).value("conditions", Json::array())) {
    std::string text = c.value("type", "") + "=" + c.value("status", "");
    if (!c.value("reason", "").empty()) text += " " + c.value("reason", "");
    if (!c.value("message", "").empty()) text += ": " + c.value("message", "");
    out += field("Condition", text);
  }
  out += field("Age", Age(Text(w, "/metadata/creationTimestamp"), now));
  Table history({"OCCURRENCE", "ENDED", "RESULT", "MESSAGE"});
  for (const auto& h : w.value("status", Json::object()).value("history", Json::array())) {
    const std::string message = h.value("message", "");
    history.AddRow({h.value("start", ""), h.value("end", "-"), h.value("result", ""),
                    message.empty() ? "-" : message});
  }
  if (!history.empty()) out += "\n" + history.Render();
  if (std::string luns = LunTable(w); !luns.empty()) out += "\n" + luns;
  return out;
}

// What --wait prints each time the window changes: one summary line and a line per LUN. With
// `bars` (a terminal) each LUN gets a progress bar; otherwise plain fields a log can keep.
std::vector<std::string> ProgressLines(const Json& w, bool bars) {
  std::vector<std::string> lines;
  std::string progress = Text(w, "/status/progress");
  std::string summary =
      Text(w, "/metadata/name") + ": " + Phase(w) + (progress.empty() ? "" : "  " + progress);
  if (Recurring(w) && Phase(w) == "Pending" && !Text(w, "/status/nextStart").empty()) {
    summary += "  next start " + Text(w, "/status/nextStart");
    if (Json last = LastOccurrence(w); last.is_object()) {
      summary += " (last: " + last.value("start", "") + " " + last.value("result", "") + ")";
    }
  }
  lines.push_back(summary);
  for (const auto& v : w.value("status", Json::object()).value("volumes", Json::array())) {
    auto cells = LunProgressCells(v);
    std::string done = cells[0];
    if (!bars) {
      // "[#####-----]  25%" -> "25%"
      const auto close = done.find(']');
      done = close == std::string::npos ? done : done.substr(close + 1);
      done.erase(0, done.find_first_not_of(' '));
    }
    lines.push_back("  " + v.value("lun", "") + "  " + v.value("fromDevice", "") + " -> " +
                    v.value("toDevice", "") + "  " + v.value("phase", "") + "  " + done + "  " +
                    cells[1] + "  " + cells[2] + "  ETA " + cells[3]);
  }
  return lines;
}

// When a --wait ends: nullopt while it goes on; else the exit code and, for a failure, why.
struct Outcome {
  int code = kExitOk;
  std::string message;
};
using Settle = std::function<std::optional<Outcome>(const Json& window)>;

// The message of a window that ended badly: its Ready condition's.
std::string EndedMessage(const Json& w) {
  for (const auto& c : w.value("status", Json::object()).value("conditions", Json::array())) {
    if (c.value("status", "") != "True" && !c.value("message", "").empty()) {
      return ": " + c.value("message", "");
    }
  }
  return "";
}

// Reaching a phase of `success` ends the wait with 0; any other terminal phase with 1.
Settle UntilPhase(const std::string& name, std::set<std::string> success) {
  return [name, success = std::move(success)](const Json& w) -> std::optional<Outcome> {
    const std::string phase = Phase(w);
    if (success.contains(phase)) return Outcome{};
    if (kTerminal.contains(phase)) {
      return Outcome{kExitFailure,
                     "maintenance window \"" + name + "\" ended " + phase + EndedMessage(w)};
    }
    return std::nullopt;
  };
}

// A recurring window's occurrence that started at `occurrence` is over once status.history
// records it (the window is then Pending for the next one): 0 when it Completed, else 1.
std::optional<Outcome> OccurrenceOutcome(const std::string& name, const Json& w,
                                         const std::string& occurrence) {
  for (const auto& h : w.value("status", Json::object()).value("history", Json::array())) {
    if (h.value("start", "") != occurrence) continue;
    const std::string result = h.value("result", "");
    if (result == "Completed") return Outcome{};
    return Outcome{kExitFailure, "maintenance window \"" + name + "\": the occurrence at " +
                                     occurrence + " ended " + result +
                                     (h.contains("message") ? ": " + h.value("message", "") : "")};
  }
  return std::nullopt;
}

// Follows the window by a watch until `settle` says it is over, or the timeout passes (exit 1).
// Progress goes to stdout for tables and to stderr under -o json|yaml (whose stdout holds the
// object). A watch the server ends, or that fails (the apiserver restarting, 410 Gone), is
// resumed from a fresh GET; the deadline holds throughout.
int Follow(Context& ctx, kube::ApiClient& client, const std::string& name, const Settle& settle,
           const std::string& goal, std::chrono::seconds timeout) {
  const bool structured = ctx.options().output != OutputFormat::kTable;
  std::ostream& out = structured ? ctx.err() : ctx.out();
  const bool redraw = ctx.options().interactive && !structured;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // Stops the watch at the deadline, whatever the server does.
  std::stop_source expired;
  std::jthread timer([&expired, deadline](std::stop_token done) {
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock lock(mu);
    if (!cv.wait_until(lock, done, deadline, [] { return false; }) && !done.stop_requested()) {
      expired.request_stop();
    }
  });
  std::vector<std::string> shown;
  std::optional<Outcome> outcome;
  bool deleted = false;
  auto show = [&](const Json& w) {
    auto lines = ProgressLines(w, redraw);
    if (lines != shown) {
      if (redraw && !shown.empty()) out << "\x1b[" << shown.size() << "A\x1b[J";
      for (const auto& l : lines) out << l << "\n";
      out.flush();
      shown = std::move(lines);
    }
    outcome = settle(w);
  };
  Status last_error;
  while (!expired.stop_requested()) {
    auto w = client.Get(kube::resources::MaintenanceWindows(), "", name);
    if (!w.ok()) {
      if (kube::IsNotFound(w.status())) deleted = true;
      if (deleted) break;
      last_error = w.status();
    } else {
      show(*w);
      if (outcome) break;
      kube::WatchOptions watch;
      watch.resource_version = Text(*w, "/metadata/resourceVersion");
      watch.field_selector = "metadata.name=" + name;
      watch.allow_bookmarks = false;
      const auto left = std::chrono::duration_cast<std::chrono::seconds>(
          deadline - std::chrono::steady_clock::now());
      watch.timeout_seconds = static_cast<int>(std::clamp<int64_t>(left.count() + 1, 1, 300));
      Status watched = client.Watch(
          kube::resources::MaintenanceWindows(), "", watch,
          [&](kube::WatchEvent&& e) {
            if (e.type == kube::WatchEventType::kDeleted) {
              deleted = true;
              return false;
            }
            if (e.type == kube::WatchEventType::kBookmark) return true;
            show(e.object);
            return !outcome;
          },
          expired.get_token());
      if (outcome || deleted) break;
      if (watched.ok()) continue;  // the server ended the stream: watch again from a GET
      last_error = watched;
    }
    // An apiserver blip is not the end of a wait that may last hours: look again shortly.
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock lock(mu);
    cv.wait_for(lock, expired.get_token(), std::chrono::seconds(1), [] { return false; });
  }
  if (outcome) {
    return outcome->code == kExitOk ? kExitOk : ctx.Fail(outcome->message);
  }
  if (deleted) return ctx.Fail("maintenance window \"" + name + "\" was deleted while waiting");
  return ctx.Fail("timed out after " + DurationString(timeout) +
                  " waiting for maintenance window \"" + name + "\" to reach " + goal +
                  (last_error.ok() ? "" : " (last error: " + ApiMessage(last_error) + ")"));
}

Result<std::chrono::seconds> WaitTimeout(const Options& o) {
  auto t = ParseDuration(o.timeout);
  if (!t.ok()) return InvalidArgumentError("--timeout: " + t.status().message());
  return *t;
}

int Start(Context& ctx, const std::vector<std::string>& args) {
  if (args.size() != 1) {
    return ctx.UsageFail("maintenance start takes one StorageDevice name", "maintenance");
  }
  const std::string& device = args[0];
  if (device.empty()) return ctx.UsageFail("the StorageDevice name is empty", "maintenance");
  auto duration = ParseDuration(ctx.options().duration);
  if (!duration.ok()) {
    return ctx.UsageFail("--duration: " + duration.status().message(), "maintenance");
  }
  // "maint-" + DEVICE + "-" + 10 digits must stay a valid object name (253 characters).
  if (device.size() > 253 - 17) {
    return ctx.UsageFail("StorageDevice name too long for a window name (maint-NAME-<unix time>)",
                         "maintenance");
  }
  auto timeout = WaitTimeout(ctx.options());
  if (!timeout.ok()) return ctx.UsageFail(timeout.status().message(), "maintenance");
  auto client = ctx.Client();
  if (!client.ok()) return ctx.Fail(client.status());
  kube::ApiClient& api = **client;

  auto d = api.Get(kube::resources::StorageDevices(), "", device);
  if (!d.ok()) {
    if (kube::IsNotFound(d.status())) {
      return ctx.Fail("storagedevice \"" + device + "\" not found");
    }
    return ctx.Fail("reading StorageDevice " + device + ": " + ApiMessage(d.status()));
  }
  // No second window for a device that has one under way.
  auto windows = kube::ListAll(api, kube::resources::MaintenanceWindows(), "", {}, nullptr);
  if (!windows.ok()) {
    return ctx.Fail("listing MaintenanceWindows: " + ApiMessage(windows.status()));
  }
  for (const auto& w : *windows) {
    if (SelectsDevice(w, device) && !kTerminal.contains(Phase(w))) {
      return ctx.Fail("storagedevice \"" + device + "\" already has maintenance window \"" +
                      Text(w, "/metadata/name") + "\" (" + Phase(w) +
                      "); finish or abort it first");
    }
  }
  // The label the window selects on; other devices must not carry it.
  std::string label = Text(*d, "/metadata/labels/strata.io~1device");
  if (!label.empty() && label != device) {
    return ctx.Fail("storagedevice \"" + device + "\" has label " + kDeviceLabel + "=" + label +
                    ", not its own name: a window selecting it would select \"" + label +
                    "\"; fix the label first");
  }
  kube::ListOptions same;
  same.label_selector = std::string(kDeviceLabel) + "=" + device;
  auto labelled = kube::ListAll(api, kube::resources::StorageDevices(), "", same, nullptr);
  if (!labelled.ok()) return ctx.Fail("listing StorageDevices: " + ApiMessage(labelled.status()));
  for (const auto& other : *labelled) {
    // (Re-checked here: the label selector is the server's; a fake may ignore it.)
    if (Text(other, "/metadata/name") != device &&
        Text(other, "/metadata/labels/strata.io~1device") == device) {
      return ctx.Fail("storagedevice \"" + Text(other, "/metadata/name") + "\" also has label " +
                      kDeviceLabel + "=" + device + ": a window would select both");
    }
  }
  if (label.empty()) {
    Json patch = {{"metadata", {{"labels", {{kDeviceLabel, device}}}}}};
    auto patched = api.Patch(kube::resources::StorageDevices(), "", device, kube::PatchType::kMerge,
                             patch, false);
    if (!patched.ok()) {
      return ctx.Fail("labelling StorageDevice " + device + " " + kDeviceLabel + "=" + device +
                      ": " + ApiMessage(patched.status()));
    }
  }

  const WallTime now = ctx.Now();
  const int64_t unix_now =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  const std::string name = "maint-" + device + "-" + std::to_string(unix_now);
  Json window = {{"apiVersion", kube::resources::MaintenanceWindows().ApiVersion()},
                 {"kind", "MaintenanceWindow"},
                 {"metadata", {{"name", name}, {"labels", {{kDeviceLabel, device}}}}},
                 {"spec",
                  {{"deviceSelector", {{"matchLabels", {{kDeviceLabel, device}}}}},
                   {"schedule", {{"start", Rfc3339(now)}, {"duration", DurationString(*duration)}}},
                   {"restore", !ctx.options().no_restore}}}};
  if (!ctx.options().reason.empty()) {
    window["metadata"]["annotations"] = {{kReasonAnnotation, ctx.options().reason}};
  }
  auto created = api.Create(kube::resources::MaintenanceWindows(), "", window);
  if (!created.ok()) {
    return ctx.Fail("creating MaintenanceWindow " + name + ": " + ApiMessage(created.status()));
  }
  if (ctx.options().output == OutputFormat::kTable) {
    ctx.out() << kQualifiedKind << "/" << name << " created\n";
  } else {
    ctx.PrintStructured(*created);
  }
  if (!ctx.options().wait) return kExitOk;
  return Follow(ctx, api, name, UntilPhase(name, {"InMaintenance"}), "InMaintenance", *timeout);
}

// NAME, or the one window under way on device NAME.
Result<Json> ResolveWindow(kube::ApiClient& api, const std::string& name_or_device) {
  auto w = api.Get(kube::resources::MaintenanceWindows(), "", name_or_device);
  if (w.ok()) return w;
  if (!kube::IsNotFound(w.status())) {
    return Status(w.status().code(),
                  "reading MaintenanceWindow " + name_or_device + ": " + ApiMessage(w.status()));
  }
  auto all = kube::ListAll(api, kube::resources::MaintenanceWindows(), "", {}, nullptr);
  if (!all.ok()) {
    return Status(all.status().code(), "listing MaintenanceWindows: " + ApiMessage(all.status()));
  }
  std::vector<Json> active;
  for (auto& one : *all) {
    if (SelectsDevice(one, name_or_device) && !kTerminal.contains(Phase(one))) {
      active.push_back(std::move(one));
    }
  }
  if (active.empty()) {
    return NotFoundError("no maintenance window named \"" + name_or_device +
                         "\" and none under way on a device of that name");
  }
  if (active.size() > 1) {
    std::string names;
    for (const auto& a : active) names += (names.empty() ? "" : ", ") + Text(a, "/metadata/name");
    return FailedPreconditionError("storagedevice \"" + name_or_device + "\" has " +
                                   std::to_string(active.size()) +
                                   " maintenance windows under way (" + names + "): name one");
  }
  return std::move(active.front());
}

// finish / abort: a merge patch of spec.<field>: true.
int Request(Context& ctx, const std::string& verb, const std::vector<std::string>& args) {
  if (args.size() != 1) {
    return ctx.UsageFail("maintenance " + verb + " takes one window or StorageDevice name",
                         "maintenance");
  }
  if (args[0].empty()) return ctx.UsageFail("the window or device name is empty", "maintenance");
  auto timeout = WaitTimeout(ctx.options());
  if (!timeout.ok()) return ctx.UsageFail(timeout.status().message(), "maintenance");
  auto client = ctx.Client();
  if (!client.ok()) return ctx.Fail(client.status());
  auto window = ResolveWindow(**client, args[0]);
  if (!window.ok()) return ctx.Fail(window.status());
  const std::string name = Text(*window, "/metadata/name");
  const std::string phase = Phase(*window);
  if (kTerminal.contains(phase)) {
    return ctx.Fail("maintenance window \"" + name + "\" has already ended (" + phase + ")");
  }
  const bool recurring = Recurring(*window);
  // The occurrence under way (a recurring window's status.nextStart while not Pending).
  const std::string occurrence = Text(*window, "/status/nextStart");
  if (recurring && verb == "finish" && phase == "Pending") {
    return ctx.Fail("maintenance window \"" + name + "\" is Pending: no occurrence is under way" +
                    (occurrence.empty() ? "" : " (the next starts " + occurrence + ")") +
                    "; to skip occurrences set spec.suspend: true");
  }
  Json patch = {{"spec", {{verb, true}}}};
  auto patched = (*client)->Patch(kube::resources::MaintenanceWindows(), "", name,
                                  kube::PatchType::kMerge, patch, false);
  if (!patched.ok()) {
    return ctx.Fail(verb + " of MaintenanceWindow " + name + ": " + ApiMessage(patched.status()));
  }
  if (ctx.options().output == OutputFormat::kTable) {
    ctx.out() << kQualifiedKind << "/" << name << " " << verb << " requested (phase " << phase
              << ")";
    if (recurring) {
      ctx.out() << (verb == "finish" ? "; the series goes on, next after this occurrence"
                                     : "; a recurring window: this ends the whole series");
    }
    ctx.out() << "\n";
  } else {
    ctx.PrintStructured(*patched);
  }
  if (!ctx.options().wait) return kExitOk;
  if (recurring && verb == "finish") {
    Settle settle = [name, occurrence](const Json& w) -> std::optional<Outcome> {
      if (Phase(w) == "Aborted" || Phase(w) == "Failed") {
        return Outcome{kExitFailure,
                       "maintenance window \"" + name + "\" ended " + Phase(w) + EndedMessage(w)};
      }
      return OccurrenceOutcome(name, w, occurrence);
    };
    return Follow(ctx, **client, name, settle, "the end of the occurrence at " + occurrence,
                  *timeout);
  }
  const std::string goal = verb == "finish" ? "Completed" : "Aborted";
  return Follow(ctx, **client, name, UntilPhase(name, {goal}), goal, *timeout);
}

// status NAME --wait: until the window settles. InMaintenance, Completed and Aborted end it with
// 0, Failed with 1; a recurring window also settles Pending after an occurrence (0 when that
// occurrence Completed, 1 when it Failed or was Missed).
Settle Settled(const std::string& name) {
  return [name](const Json& w) -> std::optional<Outcome> {
    const std::string phase = Phase(w);
    if (phase == "InMaintenance" || phase == "Completed" || phase == "Aborted") return Outcome{};
    if (phase == "Failed") {
      return Outcome{kExitFailure,
                     "maintenance window \"" + name + "\" ended Failed" + EndedMessage(w)};
    }
    if (BetweenOccurrences(w)) {
      return OccurrenceOutcome(name, w, LastOccurrence(w).value("start", ""));
    }
    return std::nullopt;
  };
}

int StatusCommand(Context& ctx, const std::vector<std::string>& args) {
  if (args.size() > 1) {
    return ctx.UsageFail("maintenance status takes at most one window name", "maintenance");
  }
  if (ctx.options().wait && args.size() != 1) {
    return ctx.UsageFail("maintenance status --wait takes one window name", "maintenance");
  }
  auto timeout = WaitTimeout(ctx.options());
  if (!timeout.ok()) return ctx.UsageFail(timeout.status().message(), "maintenance");
  auto client = ctx.Client();
  if (!client.ok()) return ctx.Fail(client.status());
  const WallTime now = ctx.Now();
  if (args.size() == 1) {
    if (args[0].empty()) return ctx.UsageFail("the window name is empty", "maintenance");
    auto w = (*client)->Get(kube::resources::MaintenanceWindows(), "", args[0]);
    if (!w.ok()) {
      if (kube::IsNotFound(w.status())) {
        return ctx.Fail("maintenancewindow \"" + args[0] + "\" not found");
      }
      return ctx.Fail("reading MaintenanceWindow " + args[0] + ": " + ApiMessage(w.status()));
    }
    if (ctx.options().wait) {
      // The progress is the output; -o json|yaml then prints the settled object.
      const int rc =
          Follow(ctx, **client, args[0], Settled(args[0]),
                 "a settled phase (InMaintenance, Completed, Failed, Aborted)", *timeout);
      if (ctx.options().output != OutputFormat::kTable) {
        if (auto settled = (*client)->Get(kube::resources::MaintenanceWindows(), "", args[0]);
            settled.ok()) {
          ctx.PrintStructured(*settled);
        }
      }
      return rc;
    }
    if (ctx.options().output == OutputFormat::kTable) {
      ctx.out() << Detail(*w, now);
    } else {
      ctx.PrintStructured(*w);
    }
    return kExitOk;
  }
  kube::ListOptions list;
  list.label_selector = ctx.options().selector;
  auto windows = kube::ListAll(**client, kube::resources::MaintenanceWindows(), "", list, nullptr);
  if (!windows.ok()) {
    return ctx.Fail("listing MaintenanceWindows: " + ApiMessage(windows.status()));
  }
  std::sort(windows->begin(), windows->end(), [](const Json& a, const Json& b) {
    return Text(a, "/metadata/name") < Text(b, "/metadata/name");
  });
  if (ctx.options().output != OutputFormat::kTable) {
    ctx.PrintStructured(ListOf(*windows));
    return kExitOk;
  }
  if (windows->empty()) {
    ctx.err() << "No MaintenanceWindows found.\n";
    return kExitOk;
  }
  Table table({"NAME", "DEVICES", "PHASE", "PROGRESS", "NEXT START", "AGE"});
  for (const auto& w : *windows) {
    std::string progress = Text(w, "/status/progress");
    std::string next = Text(w, "/status/nextStart");
    table.AddRow({Text(w, "/metadata/name"), DevicesCell(w), Phase(w),
                  progress.empty() ? "-" : progress, next.empty() ? "-" : next,
                  Age(Text(w, "/metadata/creationTimestamp"), now)});
  }
  ctx.out() << table.Render();
  return kExitOk;
}

}  // namespace

int RunMaintenance(Context& ctx, const std::vector<std::string>& args) {
  if (args.empty()) {
    return ctx.UsageFail("maintenance needs a subcommand: start, finish, abort or status",
                         "maintenance");
  }
  const std::string& sub = args.front();
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (ctx.options().wait && sub != "start" && sub != "finish" && sub != "abort" &&
      sub != "status") {
    return ctx.UsageFail("--wait goes with start, finish, abort or status NAME", "maintenance");
  }
  if (sub == "start") return Start(ctx, rest);
  if (sub == "finish" || sub == "abort") return Request(ctx, sub, rest);
  if (sub == "status") return StatusCommand(ctx, rest);
  return ctx.UsageFail(
      "unknown maintenance subcommand \"" + sub + "\" (start, finish, abort, status)",
      "maintenance");
}

}  // namespace strata::kubectl
