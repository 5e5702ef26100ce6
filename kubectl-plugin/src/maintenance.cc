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
#include <unistd.h>

#include <map>
#include <ostream>
#include <set>
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
  if (std::string luns = LunTable(w); !luns.empty()) out += "\n" + luns;
  return out;
}

// What --wait prints each time the window changes: one summary line and a line per LUN.
std::vector<std::string> ProgressLines(const Json& w) {
  std::vector<std::string> lines;
  std::string progress = Text(w, "/status/progress");
  lines.push_back(Text(w, "/metadata/name") + ": " + Phase(w) +
                  (progress.empty() ? "" : "  " + progress));
  for (const auto& v : w.value("status", Json::object()).value("volumes", Json::array())) {
    auto cells = LunProgressCells(v);
    lines.push_back("  " + v.value("lun", "") + "  " + v.value("fromDevice", "") + " -> " +
                    v.value("toDevice", "") + "  " + v.value("phase", "") + "  " + cells[0] + "  " +
                    cells[1] + "  " + cells[2] + "  ETA " + cells[3]);
  }
  return lines;
}

// Follows the window until its phase is one of `success` (exit 0), a terminal phase or one of
// `failure` (exit 1), or the timeout passes (exit 1). Progress goes to stdout for tables and to
// stderr under -o json|yaml (whose stdout holds the object).
int Follow(Context& ctx, kube::ApiClient& client, const std::string& name,
           const std::set<std::string>& success, std::chrono::seconds timeout) {
  const bool structured = ctx.options().output != OutputFormat::kTable;
  std::ostream& out = structured ? ctx.err() : ctx.out();
  const bool redraw = ctx.options().interactive && !structured;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<std::string> shown;
  while (true) {
    auto w = client.Get(kube::resources::MaintenanceWindows(), "", name);
    if (!w.ok()) {
      if (kube::IsNotFound(w.status())) {
        return ctx.Fail("maintenance window \"" + name + "\" was deleted while waiting");
      }
      // A blip of the apiserver is not the end of a wait that may last hours.
      if (std::chrono::steady_clock::now() >= deadline) return ctx.Fail(w.status());
    } else {
      auto lines = ProgressLines(*w);
      if (lines != shown) {
        if (redraw && !shown.empty()) out << "\x1b[" << shown.size() << "A\x1b[J";
        for (const auto& l : lines) out << l << "\n";
        out.flush();
        shown = std::move(lines);
      }
      std::string phase = Phase(*w);
      if (success.contains(phase)) return kExitOk;
      if (kTerminal.contains(phase)) {
        std::string message;
        for (const auto& c :
             w->value("status", Json::object()).value("conditions", Json::array())) {
          if (c.value("status", "") != "True" && !c.value("message", "").empty()) {
            message = ": " + c.value("message", "");
          }
        }
        return ctx.Fail("maintenance window \"" + name + "\" ended " + phase + message);
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return ctx.Fail("timed out after " + DurationString(timeout) +
                      " waiting for maintenance window \"" + name + "\" to reach " +
                      *success.begin());
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));  // a poll interval, not a sync point
  }
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
  return Follow(ctx, api, name, {"InMaintenance"}, *timeout);
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
  Json patch = {{"spec", {{verb, true}}}};
  auto patched = (*client)->Patch(kube::resources::MaintenanceWindows(), "", name,
                                  kube::PatchType::kMerge, patch, false);
  if (!patched.ok()) {
    return ctx.Fail(verb + " of MaintenanceWindow " + name + ": " + ApiMessage(patched.status()));
  }
  if (ctx.options().output == OutputFormat::kTable) {
    ctx.out() << kQualifiedKind << "/" << name << " " << verb << " requested (phase " << phase
              << ")\n";
  } else {
    ctx.PrintStructured(*patched);
  }
  if (!ctx.options().wait) return kExitOk;
  return Follow(ctx, **client, name, {verb == "finish" ? "Completed" : "Aborted"}, *timeout);
}

int StatusCommand(Context& ctx, const std::vector<std::string>& args) {
  if (args.size() > 1) {
    return ctx.UsageFail("maintenance status takes at most one window name", "maintenance");
  }
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
  Table table({"NAME", "DEVICES", "PHASE", "PROGRESS", "AGE"});
  for (const auto& w : *windows) {
    std::string progress = Text(w, "/status/progress");
    table.AddRow({Text(w, "/metadata/name"), DevicesCell(w), Phase(w),
                  progress.empty() ? "-" : progress,
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
  if (ctx.options().wait && sub != "start" && sub != "finish" && sub != "abort") {
    return ctx.UsageFail("--wait goes with start, finish or abort", "maintenance");
  }
  if (sub == "start") return Start(ctx, rest);
  if (sub == "finish" || sub == "abort") return Request(ctx, sub, rest);
  if (sub == "status") return StatusCommand(ctx, rest);
  return ctx.UsageFail(
      "unknown maintenance subcommand \"" + sub + "\" (start, finish, abort, status)",
      "maintenance");
}

}  // namespace strata::kubectl
