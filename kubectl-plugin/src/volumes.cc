// kubectl strata volumes: PVC -> PV -> the CSI volume handle (DEVICE/LUN of block.csi.strata.io)
// -> the StorageDevice holding the LUN now, its tier and the portals to reach it.
//
// The cluster gives the PV's spec.csi (volumeHandle, volumeAttributes as the driver's
// CreateVolume wrote them), the StorageClass's requested tier and the StorageDevice's endpoint and
// portals. A LUN that a maintenance window or a tiering policy moved keeps its original handle, so
// the live device, tier and portals come from the devices (LunLocator: GetLun, following
// moved_to, a short deadline); a device that does not answer shows "?" with a warning.
#include <map>
#include <ostream>
#include <set>

#include "strata/kubectl/cli.h"

namespace strata::kubectl {
namespace {

constexpr char kDriver[] = "block.csi.strata.io";

kube::Resource StorageClasses() {
  return {.group = "storage.k8s.io",
          .version = "v1",
          .plural = "storageclasses",
          .kind = "StorageClass",
          .namespaced = false};
}

std::map<std::string, Json> ByName(std::vector<Json> objects) {
  std::map<std::string, Json> out;
  for (auto& o : objects) {
    std::string name =
        Text(o, "/metadata/name");  // before the move: Json's operator= takes by value
    out[name] = std::move(o);
  }
  return out;
}

std::vector<std::string> Split(const std::string& text, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(sep, start);
    if (end == std::string::npos) end = text.size();
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string Join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

}  // namespace

int RunVolumes(Context& ctx, const std::vector<std::string>& args) {
  if (!args.empty()) {
    return ctx.UsageFail("volumes takes no arguments (got \"" + args.front() + "\")", "volumes");
  }
  // The devices are asked where each LUN lives: how to reach them is checked before anything runs.
  auto located = ctx.Locator();
  if (!located.ok()) return ctx.UsageFail(located.status().message(), "volumes");
  LunLocator* const locator = *located;
  auto client = ctx.Client();
  if (!client.ok()) return ctx.Fail(client.status());
  std::string ns;
  if (!ctx.options().all_namespaces) {
    auto n = ctx.Namespace();
    if (!n.ok()) return ctx.Fail(n.status());
    ns = *n;
  }
  kube::ListOptions list;
  list.label_selector = ctx.options().selector;
  auto pvcs = kube::ListAll(**client, kube::resources::PersistentVolumeClaims(), ns, list, nullptr);
  if (!pvcs.ok()) return ctx.Fail("listing PersistentVolumeClaims: " + ApiMessage(pvcs.status()));
  auto pvs = kube::ListAll(**client, kube::resources::PersistentVolumes(), "", {}, nullptr);
  if (!pvs.ok()) return ctx.Fail("listing PersistentVolumes: " + ApiMessage(pvs.status()));
  // Optional joins: without them the tier and portals print as "?".
  auto classes = kube::ListAll(**client, StorageClasses(), "", {}, nullptr);
  auto devices = kube::ListAll(**client, kube::resources::StorageDevices(), "", {}, nullptr);
  const auto pv_by_name = ByName(std::move(*pvs));
  const auto class_by_name =
      classes.ok() ? ByName(std::move(*classes)) : std::map<std::string, Json>{};
  const auto device_by_name =
      devices.ok() ? ByName(std::move(*devices)) : std::map<std::string, Json>{};
  std::map<std::string, std::string> device_by_address;  // spec.endpoint -> name
  for (const auto& [name, d] : device_by_name) {
    if (std::string endpoint = Text(d, "/spec/endpoint"); !endpoint.empty()) {
      device_by_address[endpoint] = name;
    }
  }
  std::set<std::string> warned;
  // The live device, tier and portals of one LUN into `r`; false when the devices cannot say.
  auto locate = [&](const std::string& device, const std::string& lun, Json& r) {
    auto d = device_by_name.find(device);
    if (locator == nullptr || d == device_by_name.end()) return false;
    const std::string endpoint = Text(d->second, "/spec/endpoint");
    if (endpoint.empty()) return false;
    auto live = locator->Locate(endpoint, lun);
    if (!live.ok()) {
      r["deviceError"] = live.status().message();
      if (warned.insert(device).second) {
        ctx.err() << "warning: storagedevice " << device << " (" << endpoint
                  << "): " << live.status().message() << "\n";
      }
      return false;
    }
    auto named = device_by_address.find(live->address);
    r["liveDevice"] = named != device_by_address.end() ? named->second : live->address;
    r["tier"] = live->tier;
    if (!live->portals.empty()) r["portals"] = live->portals;
    return true;
  };

  std::sort(pvcs->begin(), pvcs->end(), [](const Json& a, const Json& b) {
    return std::pair(Text(a, "/metadata/namespace"), Text(a, "/metadata/name")) <
           std::pair(Text(b, "/metadata/namespace"), Text(b, "/metadata/name"));
  });
  std::vector<Json> records;
  for (const auto& pvc : *pvcs) {
    Json r = {{"namespace", Text(pvc, "/metadata/namespace")},
              {"pvc", Text(pvc, "/metadata/name")},
              {"phase", Text(pvc, "/status/phase")},
              {"pv", Text(pvc, "/spec/volumeName")}};
    std::string capacity = Text(pvc, "/status/capacity/storage");
    r["capacity"] = capacity;
    std::string storage_class = Text(pvc, "/spec/storageClassName");
    auto pv_it = pv_by_name.find(r["pv"].get<std::string>());
    if (pv_it != pv_by_name.end()) {
      const Json& pv = pv_it->second;
      if (capacity.empty()) r["capacity"] = Text(pv, "/spec/capacity/storage");
      if (std::string sc = Text(pv, "/spec/storageClassName"); !sc.empty()) storage_class = sc;
      r["driver"] = Text(pv, "/spec/csi/driver");
      if (r["driver"] == kDriver) {
        std::string handle = Text(pv, "/spec/csi/volumeHandle");
        r["volumeHandle"] = handle;
        auto slash = handle.find('/');
        r["device"] = slash == std::string::npos ? std::string("?") : handle.substr(0, slash);
        r["lun"] = slash == std::string::npos ? std::string("?") : handle.substr(slash + 1);
        std::vector<std::string> portals =
            Split(Text(pv, "/spec/csi/volumeAttributes/portals"), ',');
        if (portals.empty()) {
          if (auto d = device_by_name.find(r["device"]); d != device_by_name.end()) {
            for (const auto& p :
                 d->second.value("status", Json::object()).value("portals", Json::array())) {
              if (p.is_string()) portals.push_back(p.get<std::string>());
            }
          }
        }
        r["portals"] = portals;
        if (auto d = device_by_name.find(r["device"]); d != device_by_name.end()) {
          r["deviceState"] = Text(d->second, "/status/phase");
        }
        locate(r["device"].get<std::string>(), r["lun"].get<std::string>(), r);
      }
    }
    if (auto sc = class_by_name.find(storage_class); sc != class_by_name.end()) {
      r["requestedTier"] = Text(sc->second, "/parameters/tier");
    }
    r["storageClass"] = storage_class;
    records.push_back(std::move(r));
  }

  if (ctx.options().output != OutputFormat::kTable) {
    ctx.PrintStructured(ListOf(records));
    return kExitOk;
  }
  if (records.empty()) {
    ctx.err() << (ns.empty() ? std::string("No PersistentVolumeClaims found.\n")
                             : "No PersistentVolumeClaims found in namespace " + ns + ".\n");
    return kExitOk;
  }
  std::vector<std::string> headers = {"NAME",   "STATUS", "VOLUME", "CAPACITY",
                                      "DEVICE", "LUN",    "TIER",   "PORTALS"};
  if (ctx.options().all_namespaces) headers.insert(headers.begin(), "NAMESPACE");
  Table table(headers);
  for (const auto& r : records) {
    bool ours = r.value("driver", "") == kDriver;
    auto dash = [&](const char* key) {
      if (!ours) return std::string("-");
      std::string v = r.value(key, "");
      return v.empty() ? std::string("?") : v;
    };
    std::vector<std::string> portals;
    for (const auto& p : r.value("portals", Json::array())) portals.push_back(p);
    std::string device = dash("device");
    if (std::string live = r.value("liveDevice", ""); ours && !live.empty() && live != device) {
      device = live + " (from " + device + ")";
    }
    std::vector<std::string> row = {r["pvc"],
                                    r["phase"].get<std::string>().empty() ? "Pending" : r["phase"],
                                    r["pv"].get<std::string>().empty() ? "-" : r["pv"],
                                    r["capacity"].get<std::string>().empty() ? "-" : r["capacity"],
                                    device,
                                    dash("lun"),
                                    !ours ? "-" : dash("tier"),
                                    !ours ? "-" : (portals.empty() ? "?" : Join(portals, ","))};
    if (ctx.options().all_namespaces) row.insert(row.begin(), r["namespace"]);
    table.AddRow(std::move(row));
  }
  ctx.out() << table.Render();
  return kExitOk;
}

}  // namespace strata::kubectl
