// kubectl strata usage: the pay-per-use ledger, one UsageReport named "usage" per namespace
// (kept by strata-operator; schema charts/strata/crds/strata.io_usagereports.yaml).
#include <ostream>

#include "strata/kube/errors.h"
#include "strata/kubectl/cli.h"

namespace strata::kubectl {
namespace {

constexpr char kReportName[] = "usage";

// strata.io/v1alpha1 usagereports. libs/kube's resources() has none (the operator's typed API
// defines its own; this binary does not link the operator's libraries).
kube::Resource UsageReports() {
  return {.group = "strata.io",
          .version = "v1alpha1",
          .plural = "usagereports",
          .kind = "UsageReport",
          .namespaced = true};
}

double Number(const Json& object, std::string_view pointer) {
  Json::json_pointer p{std::string(pointer)};
  return object.contains(p) && object.at(p).is_number() ? object.at(p).get<double>() : 0.0;
}

std::string BytesCell(const Json& object, std::string_view pointer) {
  Json::json_pointer p{std::string(pointer)};
  if (!object.contains(p) || !object.at(p).is_number()) return "-";
  return FormatBytes(object.at(p).get<int64_t>());
}

}  // namespace

int RunUsage(Context& ctx, const std::vector<std::string>& args) {
  if (!args.empty()) {
    return ctx.UsageFail("usage takes no arguments (got \"" + args.front() + "\")", "usage");
  }
  auto client = ctx.Client();
  if (!client.ok()) return ctx.Fail(client.status());
  std::vector<Json> reports;
  if (ctx.options().all_namespaces) {
    auto all = kube::ListAll(**client, UsageReports(), "", {}, nullptr);
    if (!all.ok()) return ctx.Fail("listing UsageReports: " + ApiMessage(all.status()));
    for (auto& r : *all) {
      if (r["metadata"].value("name", "") == kReportName) reports.push_back(std::move(r));
    }
    std::sort(reports.begin(), reports.end(), [](const Json& a, const Json& b) {
      return a["metadata"].value("namespace", "") < b["metadata"].value("namespace", "");
    });
  } else {
    auto ns = ctx.Namespace();
    if (!ns.ok()) return ctx.Fail(ns.status());
    auto report = (*client)->Get(UsageReports(), *ns, kReportName);
    if (!report.ok()) {
      if (kube::IsNotFound(report.status())) {
        return ctx.Fail("no UsageReport in namespace \"" + *ns +
                        "\" (strata-operator writes one once the namespace has volumes)");
      }
      return ctx.Fail("reading UsageReport " + *ns + "/" + kReportName + ": " +
                      ApiMessage(report.status()));
    }
    reports.push_back(std::move(*report));
  }

  if (ctx.options().output != OutputFormat::kTable) {
    if (!ctx.options().all_namespaces) {
      ctx.PrintStructured(reports.front());
    } else {
      ctx.PrintStructured(ListOf(reports));
    }
    return kExitOk;
  }
  if (reports.empty()) {
    ctx.err() << "No UsageReports found.\n";
    return kExitOk;
  }
  Table summary(
      {"NAMESPACE", "VOLUMES", "GIB-HOURS", "COST", "LOGICAL", "UNIQUE", "SINCE", "UPDATED"});
  Table tiers({"NAMESPACE", "TIER", "GIB-HOURS", "COST"});
  const WallTime now = ctx.Now();
  for (const auto& r : reports) {
    std::string ns = Text(r, "/metadata/namespace");
    std::string volumes = Text(r, "/status/volumeCount");
    std::string since = Text(r, "/status/windowStart");
    std::string updated = Text(r, "/status/lastUpdate");
    summary.AddRow(
        {ns, volumes.empty() ? "0" : volumes, FormatFixed(Number(r, "/status/gibHours"), 2),
         FormatFixed(Number(r, "/status/totalCost"), 2), BytesCell(r, "/status/logicalBytes"),
         BytesCell(r, "/status/uniqueBytes"), since.empty() ? "-" : Age(since, now),
         updated.empty() ? "-" : Age(updated, now) + " ago"});
    const Json rows = r.value("status", Json::object()).value("tiers", Json::array());
    for (const auto& t : rows) {
      tiers.AddRow({ns, t.value("tier", ""), FormatFixed(Number(t, "/gibHours"), 2),
                    FormatFixed(Number(t, "/cost"), 2)});
    }
  }
  ctx.out() << summary.Render();
  if (!tiers.empty()) ctx.out() << "\n" << tiers.Render();
  return kExitOk;
}

}  // namespace strata::kubectl
