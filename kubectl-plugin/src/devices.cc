// kubectl strata devices: the StorageDevices, their state and capacity per media tier.
#include <ostream>

#include "strata/kubectl/cli.h"

namespace strata::kubectl {
namespace {

constexpr const char* kTiers[] = {"ssd", "sas", "sata"};

// "USED/CAPACITY" of one tier from status.tiers (else spec.tiers' capacity), "-" when the device
// has no such tier.
std::string TierCell(const Json& device, const std::string& tier) {
  const Json status_tiers = device.value("status", Json::object()).value("tiers", Json::array());
  for (const auto& t : status_tiers) {
    if (t.value("class", "") != tier) continue;
    std::string used = t.contains("usedBytes") ? FormatBytes(t["usedBytes"].get<int64_t>()) : "?";
    std::string cap =
        t.contains("capacityBytes") ? FormatBytes(t["capacityBytes"].get<int64_t>()) : "?";
    return used + "/" + cap;
  }
  const Json spec_tiers = device.value("spec", Json::object()).value("tiers", Json::array());
  for (const auto& t : spec_tiers) {
    if (t.value("class", "") == tier) {
      return "?/" + FormatBytes(t.value("capacityBytes", int64_t{0}));
    }
  }
  return "-";
}

}  // namespace

int RunDevices(Context& ctx, const std::vector<std::string>& args) {
  if (!args.empty()) {
    return ctx.UsageFail("devices takes no arguments (got \"" + args.front() + "\")", "devices");
  }
  auto client = ctx.Client();
  if (!client.ok()) return ctx.Fail(client.status());
  kube::ListOptions list;
  list.label_selector = ctx.options().selector;
  auto devices = kube::ListAll(**client, kube::resources::StorageDevices(), "", list, nullptr);
  if (!devices.ok()) return ctx.Fail("listing StorageDevices: " + ApiMessage(devices.status()));
  std::sort(devices->begin(), devices->end(), [](const Json& a, const Json& b) {
    return a["metadata"].value("name", "") < b["metadata"].value("name", "");
  });

  if (ctx.options().output != OutputFormat::kTable) {
    ctx.PrintStructured(ListOf(*devices));
    return kExitOk;
  }
  if (devices->empty()) {
    ctx.err() << "No StorageDevices found.\n";
    return kExitOk;
  }
  Table table({"NAME", "STATE", "REGION", "JURISDICTION", "LUNS", "SSD", "SAS", "SATA"});
  for (const auto& d : *devices) {
    std::string state = Text(d, "/status/phase");
    if (state.empty()) state = "Pending";
    std::string luns = Text(d, "/status/lunCount");
    std::vector<std::string> row = {Text(d, "/metadata/name"), state, Text(d, "/spec/region"),
                                    Text(d, "/spec/jurisdiction"), luns.empty() ? "?" : luns};
    for (const char* tier : kTiers) row.push_back(TierCell(d, tier));
    table.AddRow(std::move(row));
  }
  ctx.out() << table.Render();
  return kExitOk;
}

}  // namespace strata::kubectl
