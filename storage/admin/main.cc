// strata-admin: command line for a strata-stored device's management API.
// Exit codes: 0 success, 1 the server refused or failed, 2 bad usage.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "strata/common/units.h"
#include "strata/device/channel.h"
#include "strata/device/tier.h"
#include "strata/storage/v1/storage.grpc.pb.h"

namespace po = boost::program_options;
namespace v1 = strata::storage::v1;

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

constexpr char kUsage[] =
    "usage: strata-admin --server ADDR (--tls-cert FILE --tls-key FILE --tls-ca FILE "
    "[--tls-crl FILE] | --insecure)\n"
    "                    [-o table|json] [--timeout SECONDS] COMMAND\n"
    "commands:\n"
    "  device status\n"
    "  device maintenance on|off [--reason TEXT]\n"
    "  lun create NAME --size SIZE [--tier ssd|sas|sata] [--dedup] [--owner NS] [--clone-from LUN] "
    "[--from-snapshot SNAP] [--allow IP,CIDR,...|*] [--allow-identity ID]... [--meta "
    "KEY=VALUE]...\n"
    "  lun list [--owner NS]\n"
    "  lun get NAME\n"
    "  lun stats NAME\n"
    "  lun delete NAME\n"
    "  lun resize NAME --size SIZE\n"
    "  lun access NAME [--allow IP,CIDR,...] [--allow-identity ID]...   (replaces both lists;\n"
    "                  both empty: nobody; *: any IP; ID: CN=NAME, DNS:NAME or URI:URI of an NBD\n"
    "                  client's TLS certificate; with IDs and no --allow: any IP)\n"
    "  lun set-dedup NAME on|off [--fold]    (--fold: also fold blocks already written)\n"
    "  lun migrate NAME --tier CLASS [--wait]\n"
    "  lun migrate NAME --to-device ADDR [--tier CLASS] [--wait]\n"
    "  lun migration NAME\n"
    "  lun cancel-migration NAME\n"
    "  snapshot create NAME --lun LUN [--meta KEY=VALUE]...   (read-only, point in time; no copy)\n"
    "  snapshot list [--lun LUN]\n"
    "  snapshot get NAME\n"
    "  snapshot delete NAME\n";

struct Options {
  std::string server;
  std::string tls_cert, tls_key, tls_ca, tls_crl;
  bool insecure = false;
  std::string output;
  int timeout_seconds = 10;
  std::vector<std::string> words;
  std::string size, tier, owner, allow, to_device, reason, clone_from, from_snapshot, lun;
  std::vector<std::string> meta;        // KEY=VALUE, repeatable
  std::vector<std::string> identities;  // --allow-identity, repeatable
  bool dedup = false, wait = false, allow_set = false, fold = false;
};

int Usage(const std::string& why) {
  std::fprintf(stderr, "strata-admin: %s\n%s", why.c_str(), kUsage);
  return kExitUsage;
}

const char* CodeName(grpc::StatusCode c) {
  static const char* kNames[] = {"OK",
                                 "CANCELLED",
                                 "UNKNOWN",
                                 "INVALID_ARGUMENT",
                                 "DEADLINE_EXCEEDED",
                                 "NOT_FOUND",
                                 "ALREADY_EXISTS",
                                 "PERMISSION_DENIED",
                                 "RESOURCE_EXHAUSTED",
                                 "FAILED_PRECONDITION",
                                 "ABORTED",
                                 "OUT_OF_RANGE",
                                 "UNIMPLEMENTED",
                                 "INTERNAL",
                                 "UNAVAILABLE",
                                 "DATA_LOSS",
                                 "UNAUTHENTICATED"};
  int code = static_cast<int>(c);
  return code >= 0 && code <= 16 ? kNames[code] : "UNKNOWN";
}

int Fail(const std::string& what, const grpc::Status& s) {
  std::fprintf(stderr, "strata-admin: %s: %s: %s\n", what.c_str(), CodeName(s.error_code()),
               s.error_message().c_str());
  return kExitFailure;
}

int PrintJson(const google::protobuf::Message& msg) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = true;
  opts.always_print_primitive_fields = true;
  opts.preserve_proto_field_names = true;
  std::string out;
  auto st = google::protobuf::util::MessageToJsonString(msg, &out, opts);
  if (!st.ok()) {
    std::fprintf(stderr, "strata-admin: cannot render JSON: %s\n", st.ToString().c_str());
    return kExitFailure;
  }
  std::cout << out;
  return 0;
}

// The shared tier names (strata/device/tier.h); "-" where a tier is unset.
std::string TierName(v1::TierClass c) {
  std::string_view n = strata::device::TierName(c);
  return n.empty() ? "-" : std::string(n);
}

bool ParseTier(const std::string& s, v1::TierClass* out) {
  auto t = strata::device::ParseTier(s);
  if (!t.ok() || *t == v1::TIER_CLASS_UNSPECIFIED) return false;
  *out = *t;
  return true;
}

std::string StateName(v1::DeviceState s) {
  switch (s) {
    case v1::DEVICE_STATE_ONLINE:
      return "Online";
    case v1::DEVICE_STATE_MAINTENANCE:
      return "Maintenance";
    case v1::DEVICE_STATE_DEGRADED:
      return "Degraded";
    default:
      return "Unknown";
  }
}

std::string MigrationName(v1::MigrationState s) {
  switch (s) {
    case v1::MIGRATION_STATE_NONE:
      return "none";
    case v1::MIGRATION_STATE_RUNNING:
      return "running";
    case v1::MIGRATION_STATE_DONE:
      return "done";
    case v1::MIGRATION_STATE_CANCELLED:
      return "cancelled";
    case v1::MIGRATION_STATE_FAILED:
      return "failed";
    default:
      return "-";
  }
}

std::string Join(const google::protobuf::RepeatedPtrField<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::string Ratio(const v1::SpaceStats& s) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f", s.dedup_ratio());
  return buf;
}

void PrintDeviceTable(const v1::DeviceStatus& st) {
  std::printf("Device:    %s\n", st.name().c_str());
  std::printf("ID:        %s\n", st.device_id().c_str());
  std::printf("Version:   %s\n", st.version().c_str());
  std::printf("State:     %s%s%s\n", StateName(st.state()).c_str(),
              st.state_reason().empty() ? "" : ": ", st.state_reason().c_str());
  std::printf("Uptime:    %llus\n", static_cast<unsigned long long>(st.uptime_seconds()));
  std::printf("LUNs:      %u\n", st.lun_count());
  std::printf("Capacity:  %s (%s used)\n", strata::FormatSize(st.capacity_bytes()).c_str(),
              strata::FormatSize(st.used_bytes()).c_str());
  std::printf("Dedup:     %s%s logical in %s unique, ratio %s (block %s)\n",
              st.dedup_enabled() ? "" : "off for this device; ",
              strata::FormatSize(st.space().logical_bytes()).c_str(),
              strata::FormatSize(st.space().unique_bytes()).c_str(), Ratio(st.space()).c_str(),
              strata::FormatSize(st.block_size()).c_str());
  std::printf("Portals:   %s\n", st.portals().empty() ? "(none)" : Join(st.portals()).c_str());
  std::printf("\n%-6s %-12s %-12s %-14s %-8s %s\n", "TIER", "CAPACITY", "USED", "PRICE/GiB-h",
              "HEALTH", "PATH");
  for (const auto& t : st.tiers()) {
    std::printf("%-6s %-12s %-12s %-14.6f %-8s %s%s%s\n", TierName(t.class_()).c_str(),
                strata::FormatSize(t.capacity_bytes()).c_str(),
                strata::FormatSize(t.used_bytes()).c_str(), t.price_per_gib_hour(),
                t.healthy() ? "ok" : "FAILED", t.path().c_str(), t.healthy() ? "" : ": ",
                t.message().c_str());
  }
  if (!st.owners().empty()) {
    std::printf("\n%-20s %-12s %-12s %-6s %-12s %s\n", "OWNER", "LOGICAL", "UNIQUE", "RATIO",
                "SHARED", "SNAPSHOTS");
    for (const auto& o : st.owners()) {
      std::printf("%-20s %-12s %-12s %-6s %-12s %s\n",
                  o.owner().empty() ? "(none)" : o.owner().c_str(),
                  strata::FormatSize(o.space().logical_bytes()).c_str(),
                  strata::FormatSize(o.space().unique_bytes()).c_str(), Ratio(o.space()).c_str(),
                  strata::FormatSize(o.space().shared_bytes()).c_str(),
                  strata::FormatSize(o.space().snapshot_bytes()).c_str());
    }
  }
}

// Sorted by key (protobuf maps have no order).
std::map<std::string, std::string> SortedMetadata(
    const google::protobuf::Map<std::string, std::string>& m) {
  return std::map<std::string, std::string>(m.begin(), m.end());
}

std::string MetadataList(const v1::Lun& l) {
  std::string out;
  for (const auto& [k, v] : SortedMetadata(l.metadata())) {
    out += (out.empty() ? "" : ",") + k + "=" + v;
  }
  return out.empty() ? "-" : out;
}

void PrintLunRows(const std::vector<const v1::Lun*>& luns) {
  std::printf("%-24s %-10s %-5s %-6s %-12s %-10s %-10s %-6s %-20s %s\n", "NAME", "SIZE", "TIER",
              "DEDUP", "OWNER", "LOGICAL", "UNIQUE", "RATIO", "WWN", "METADATA");
  for (const v1::Lun* l : luns) {
    std::printf("%-24s %-10s %-5s %-6s %-12s %-10s %-10s %-6s %-20s %s\n", l->name().c_str(),
                strata::FormatSize(l->size_bytes()).c_str(), TierName(l->tier()).c_str(),
                l->dedup() ? "on" : "off", l->owner().empty() ? "-" : l->owner().c_str(),
                strata::FormatSize(l->space().logical_bytes()).c_str(),
                strata::FormatSize(l->space().unique_bytes()).c_str(), Ratio(l->space()).c_str(),
                l->wwn().c_str(), MetadataList(*l).c_str());
  }
}

void PrintMigration(const v1::Migration& m) {
  std::printf("LUN %s: migration %s", m.lun().c_str(), MigrationName(m.state()).c_str());
  if (!m.to_device().empty()) {
    std::printf(" to device %s, %s copied, %s verified", m.to_device().c_str(),
                strata::FormatSize(m.bytes_copied()).c_str(),
                strata::FormatSize(m.verified_bytes()).c_str());
    if (m.verified_bytes() > 0) std::printf(" in %.2f s", m.verify_seconds());
  } else if (m.state() != v1::MIGRATION_STATE_NONE) {
    std::printf(" %s -> %s, %s of %s copied", TierName(m.from_tier()).c_str(),
                TierName(m.to_tier()).c_str(), strata::FormatSize(m.bytes_copied()).c_str(),
                strata::FormatSize(m.bytes_total()).c_str());
    if (m.bytes_per_second() > 0) {
      std::printf(" at %s/s",
                  strata::FormatSize(static_cast<uint64_t>(m.bytes_per_second())).c_str());
    }
  }
  if (!m.message().empty()) std::printf(" (%s)", m.message().c_str());
  std::printf("\n");
}

void PrintKind(const char* name, const v1::IoKindStats& k) {
  std::printf(
      "%-13s %-10llu %-10.1f %-10s %-12s %-7llu %-10.1f %-10.1f %-10.1f\n", name,
      static_cast<unsigned long long>(k.ops()), k.iops(), strata::FormatSize(k.bytes()).c_str(),
      (strata::FormatSize(static_cast<uint64_t>(k.bytes_per_second())) + "/s").c_str(),
      static_cast<unsigned long long>(k.errors()), static_cast<double>(k.latency_p50_ns()) / 1000.0,
      static_cast<double>(k.latency_p99_ns()) / 1000.0,
      static_cast<double>(k.latency_max_ns()) / 1000.0);
}

std::string FormatNanos(uint64_t unix_nanos) {
  const std::time_t t = static_cast<std::time_t>(unix_nanos / 1000000000ull);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void PrintSnapshotRows(const std::vector<const v1::Snapshot*>& snaps) {
  std::printf("%-24s %-24s %-10s %-5s %-12s %-10s %-10s %-21s %s\n", "NAME", "SOURCE", "SIZE",
              "TIER", "OWNER", "UNIQUE", "SHARED", "CREATED", "ID");
  for (const v1::Snapshot* s : snaps) {
    std::printf("%-24s %-24s %-10s %-5s %-12s %-10s %-10s %-21s %s\n", s->name().c_str(),
                s->source_lun().c_str(), strata::FormatSize(s->size_bytes()).c_str(),
                TierName(s->tier()).c_str(), s->owner().empty() ? "-" : s->owner().c_str(),
                strata::FormatSize(s->unique_bytes()).c_str(),
                strata::FormatSize(s->shared_bytes()).c_str(),
                FormatNanos(s->created_unix_nanos()).c_str(), s->id().c_str());
  }
}

// KEY=VALUE flags into a metadata map; false (and `bad` set) for a malformed one.
bool ParseMeta(const std::vector<std::string>& flags,
               google::protobuf::Map<std::string, std::string>* out, std::string* bad) {
  for (const auto& kv : flags) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      *bad = kv;
      return false;
    }
    (*out)[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return true;
}

class Cli {
 public:
  Cli(const Options& opt, std::shared_ptr<grpc::Channel> channel)
      : opt_(opt), stub_(v1::StorageDevice::NewStub(channel)) {}

  // Calls one RPC with the per-call deadline.
  template <typename Req, typename Resp>
  grpc::Status Call(grpc::Status (v1::StorageDevice::Stub::*rpc)(grpc::ClientContext*, const Req&,
                                                                 Resp*),
                    const Req& req, Resp* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(opt_.timeout_seconds));
    return ((*stub_).*rpc)(&ctx, req, resp);
  }

  int Run() {
    const auto& w = opt_.words;
    if (w.size() == 2 && w[0] == "device" && w[1] == "status") return DeviceStatus();
    if (w.size() == 3 && w[0] == "device" && w[1] == "maintenance") {
      if (w[2] != "on" && w[2] != "off") {
        return Usage("device maintenance: '" + w[2] + "' is not on or off");
      }
      return DeviceMaintenance(w[2] == "on");
    }
    if (w.size() >= 2 && w[0] == "lun") {
      const std::string& verb = w[1];
      static const char* kVerbs[] = {"create", "get",     "stats",     "delete",          "resize",
                                     "access", "migrate", "migration", "cancel-migration"};
      if (verb == "list" && w.size() == 2) return LunList();
      if (verb == "set-dedup") {
        if (w.size() != 4) return Usage("'lun set-dedup' takes NAME and on|off");
        if (w[3] != "on" && w[3] != "off") {
          return Usage("lun set-dedup: '" + w[3] + "' is not on or off");
        }
        return LunSetDedup(w[2], w[3] == "on");
      }
      bool known = std::find(std::begin(kVerbs), std::end(kVerbs), verb) != std::end(kVerbs);
      if (known && w.size() != 3) return Usage("'lun " + verb + "' takes exactly one NAME");
      const std::string& name = w[2];
      if (verb == "create") return LunCreate(name);
      if (verb == "get") return LunGet(name);
      if (verb == "stats") return LunStats(name);
      if (verb == "delete") return LunDelete(name);
      if (verb == "resize") return LunResize(name);
      if (verb == "access") return LunAccess(name);
      if (verb == "migrate") return LunMigrate(name);
      if (verb == "migration") return LunMigration(name);
      if (verb == "cancel-migration") return LunCancel(name);
    }
    if (w.size() >= 2 && w[0] == "snapshot") {
      const std::string& verb = w[1];
      if (verb == "list") {
        if (w.size() != 2) return Usage("'snapshot list' takes no NAME (filter with --lun)");
        return SnapshotList();
      }
      if (verb == "create" || verb == "get" || verb == "delete") {
        if (w.size() != 3) return Usage("'snapshot " + verb + "' takes exactly one NAME");
        if (verb == "create") return SnapshotCreate(w[2]);
        if (verb == "get") return SnapshotGet(w[2]);
        return SnapshotDelete(w[2]);
      }
    }
    std::string joined;
    for (const auto& s : w) joined += (joined.empty() ? "" : " ") + s;
    return Usage(w.empty() ? "no command given" : "unknown command '" + joined + "'");
  }

 private:
  bool json() const { return opt_.output == "json"; }

  int DeviceStatus() {
    v1::DeviceStatus resp;
    auto s = Call(&v1::StorageDevice::Stub::GetDeviceStatus, v1::GetDeviceStatusRequest(), &resp);
    if (!s.ok()) return Fail("device status", s);
    if (json()) return PrintJson(resp);
    PrintDeviceTable(resp);
    return 0;
  }

  int DeviceMaintenance(bool on) {
    v1::SetDeviceStateRequest req;
    req.set_state(on ? v1::DEVICE_STATE_MAINTENANCE : v1::DEVICE_STATE_ONLINE);
    req.set_reason(opt_.reason);
    v1::DeviceStatus resp;
    auto s = Call(&v1::StorageDevice::Stub::SetDeviceState, req, &resp);
    if (!s.ok()) return Fail("device maintenance", s);
    if (json()) return PrintJson(resp);
    PrintDeviceTable(resp);
    return 0;
  }

  int ShowLun(const v1::Lun& l) {
    if (json()) return PrintJson(l);
    PrintLunRows({&l});
    const auto& a = l.access();
    std::string access = a.allowed_clients().empty()
                             ? (a.allowed_identities().empty() ? "(nobody)" : "(any IP)")
                             : Join(a.allowed_clients());
    if (!a.allowed_identities().empty()) {
      access += "; identities: " + Join(a.allowed_identities());
    }
    std::printf("\naccess:   %s\nportals:  %s\nexport:   %s\n", access.c_str(),
                Join(l.portals()).c_str(), l.export_name().c_str());
    std::printf("space:    %s exclusive, %s shared, %s held only by its snapshots\n",
                strata::FormatSize(l.space().exclusive_bytes()).c_str(),
                strata::FormatSize(l.space().shared_bytes()).c_str(),
                strata::FormatSize(l.space().snapshot_bytes()).c_str());
    if (!l.publications().empty()) {
      std::printf("published to:\n");
      for (const auto& p : l.publications()) {
        std::printf("  %s (%s)\n", p.node_id().c_str(), Join(p.access_entries()).c_str());
      }
    }
    if (!l.metadata().empty()) {
      std::printf("metadata:\n");
      for (const auto& [k, v] : SortedMetadata(l.metadata())) {
        std::printf("  %s=%s\n", k.c_str(), v.c_str());
      }
    }
    if (l.migration().state() != v1::MIGRATION_STATE_NONE) PrintMigration(l.migration());
    return 0;
  }

  int LunCreate(const std::string& name) {
    if (opt_.size.empty()) return Usage("lun create: --size is required");
    auto size = strata::ParseSize(opt_.size);
    if (!size.ok()) return Usage("--size: " + size.status().message());
    v1::CreateLunRequest req;
    req.set_name(name);
    req.set_size_bytes(*size);
    if (!opt_.tier.empty()) {
      v1::TierClass t;
      if (!ParseTier(opt_.tier, &t)) {
        return Usage("--tier: '" + opt_.tier + "' is not one of ssd, sas, sata");
      }
      req.set_tier(t);
    }
    req.set_dedup(opt_.dedup);
    req.set_owner(opt_.owner);
    req.set_clone_from(opt_.clone_from);
    req.set_from_snapshot(opt_.from_snapshot);
    if (std::string bad; !ParseMeta(opt_.meta, req.mutable_metadata(), &bad)) {
      return Usage("--meta: '" + bad + "' is not KEY=VALUE");
    }
    if (opt_.allow_set || !opt_.identities.empty()) {
      for (const auto& c : SplitList(opt_.allow)) req.mutable_access()->add_allowed_clients(c);
      for (const auto& id : opt_.identities) req.mutable_access()->add_allowed_identities(id);
      req.mutable_access();
    }
    v1::Lun resp;
    auto s = Call(&v1::StorageDevice::Stub::CreateLun, req, &resp);
    if (!s.ok()) return Fail("lun create " + name, s);
    return ShowLun(resp);
  }

  int LunGet(const std::string& name) {
    v1::GetLunRequest req;
    req.set_name(name);
    v1::Lun resp;
    auto s = Call(&v1::StorageDevice::Stub::GetLun, req, &resp);
    if (!s.ok()) return Fail("lun get " + name, s);
    return ShowLun(resp);
  }

  int LunList() {
    v1::ListLunsRequest req;
    req.set_owner(opt_.owner);
    req.set_page_size(100);
    v1::ListLunsResponse all;
    for (;;) {
      v1::ListLunsResponse page;
      auto s = Call(&v1::StorageDevice::Stub::ListLuns, req, &page);
      if (!s.ok()) return Fail("lun list", s);
      for (auto& l : *page.mutable_luns()) *all.add_luns() = std::move(l);
      if (page.next_page_token().empty()) break;
      req.set_page_token(page.next_page_token());
    }
    if (json()) return PrintJson(all);
    std::vector<const v1::Lun*> rows;
    for (const auto& l : all.luns()) rows.push_back(&l);
    PrintLunRows(rows);
    return 0;
  }

  int LunStats(const std::string& name) {
    v1::GetLunStatsRequest req;
    req.set_name(name);
    v1::LunStats resp;
    auto s = Call(&v1::StorageDevice::Stub::GetLunStats, req, &resp);
    if (!s.ok()) return Fail("lun stats " + name, s);
    if (json()) return PrintJson(resp);
    std::printf("%-13s %-10s %-10s %-10s %-12s %-7s %-10s %-10s %-10s\n", "KIND", "OPS", "IOPS",
                "BYTES", "BYTES/S", "ERRORS", "P50(us)", "P99(us)", "MAX(us)");
    PrintKind("read", resp.read());
    PrintKind("write", resp.write());
    PrintKind("flush", resp.flush());
    PrintKind("trim", resp.trim());
    PrintKind("write_zeroes", resp.write_zeroes());
    std::printf("\nspace: %s logical, %s unique, dedup ratio %s\n",
                strata::FormatSize(resp.space().logical_bytes()).c_str(),
                strata::FormatSize(resp.space().unique_bytes()).c_str(),
                Ratio(resp.space()).c_str());
    std::printf("tier:  %s\nidle:  %llus\n", TierName(resp.tier()).c_str(),
                static_cast<unsigned long long>(resp.idle_seconds()));
    return 0;
  }

  int LunSetDedup(const std::string& name, bool on) {
    v1::SetLunDedupRequest req;
    req.set_name(name);
    req.set_dedup(on);
    req.set_fold_existing(opt_.fold);
    v1::Lun resp;
    auto s = Call(&v1::StorageDevice::Stub::SetLunDedup, req, &resp);
    if (!s.ok()) return Fail("lun set-dedup " + name, s);
    return ShowLun(resp);
  }

  int LunDelete(const std::string& name) {
    v1::DeleteLunRequest req;
    req.set_name(name);
    v1::DeleteLunResponse resp;
    auto s = Call(&v1::StorageDevice::Stub::DeleteLun, req, &resp);
    if (!s.ok()) return Fail("lun delete " + name, s);
    if (json()) return PrintJson(resp);
    std::printf("LUN %s deleted\n", name.c_str());
    return 0;
  }

  int LunResize(const std::string& name) {
    if (opt_.size.empty()) return Usage("lun resize: --size is required");
    auto size = strata::ParseSize(opt_.size);
    if (!size.ok()) return Usage("--size: " + size.status().message());
    v1::ResizeLunRequest req;
    req.set_name(name);
    req.set_size_bytes(*size);
    v1::Lun resp;
    auto s = Call(&v1::StorageDevice::Stub::ResizeLun, req, &resp);
    if (!s.ok()) return Fail("lun resize " + name, s);
    return ShowLun(resp);
  }

  int LunAccess(const std::string& name) {
    if (!opt_.allow_set && opt_.identities.empty()) {
      return Usage("lun access: --allow or --allow-identity is required (--allow '' for nobody)");
    }
    v1::SetLunAccessRequest req;
    req.set_name(name);
    req.mutable_access();
    for (const auto& c : SplitList(opt_.allow)) req.mutable_access()->add_allowed_clients(c);
    for (const auto& id : opt_.identities) req.mutable_access()->add_allowed_identities(id);
    v1::Lun resp;
    auto s = Call(&v1::StorageDevice::Stub::SetLunAccess, req, &resp);
    if (!s.ok()) return Fail("lun access " + name, s);
    return ShowLun(resp);
  }

  int LunMigrate(const std::string& name) {
    if (opt_.tier.empty() && opt_.to_device.empty()) {
      return Usage("lun migrate: --tier or --to-device is required");
    }
    v1::MigrateLunRequest req;
    req.set_name(name);
    req.set_to_device(opt_.to_device);
    if (!opt_.tier.empty()) {
      v1::TierClass t;
      if (!ParseTier(opt_.tier, &t)) {
        return Usage("--tier: '" + opt_.tier + "' is not one of ssd, sas, sata");
      }
      req.set_to_tier(t);
    }
    v1::Migration resp;
    auto s = Call(&v1::StorageDevice::Stub::MigrateLun, req, &resp);
    if (!s.ok()) return Fail("lun migrate " + name, s);
    if (opt_.wait) {
      // A long poll (wait_ms): the server replies as the move ends. A server that does
      // not know wait_ms replies at once: then this polls every 50 ms as before.
      constexpr auto kPoll = std::chrono::milliseconds(50);
      while (resp.state() == v1::MIGRATION_STATE_RUNNING) {
        v1::GetMigrationRequest g;
        g.set_name(name);
        g.set_wait_ms(1000);
        const auto asked = std::chrono::steady_clock::now();
        s = Call(&v1::StorageDevice::Stub::GetMigration, g, &resp);
        if (!s.ok()) return Fail("lun migration " + name, s);
        const auto took = std::chrono::steady_clock::now() - asked;
        if (resp.state() == v1::MIGRATION_STATE_RUNNING && took < kPoll) {
          std::this_thread::sleep_for(kPoll - took);  // a CLI's progress poll, old servers
        }
      }
    }
    if (json()) return PrintJson(resp);
    PrintMigration(resp);
    bool failed = resp.state() == v1::MIGRATION_STATE_FAILED ||
                  (opt_.wait && resp.state() == v1::MIGRATION_STATE_CANCELLED);
    return failed ? kExitFailure : 0;
  }

  int LunMigration(const std::string& name) {
    v1::GetMigrationRequest req;
    req.set_name(name);
    v1::Migration resp;
    auto s = Call(&v1::StorageDevice::Stub::GetMigration, req, &resp);
    if (!s.ok()) return Fail("lun migration " + name, s);
    if (json()) return PrintJson(resp);
    PrintMigration(resp);
    return 0;
  }

  int LunCancel(const std::string& name) {
    v1::CancelMigrationRequest req;
    req.set_name(name);
    v1::Migration resp;
    auto s = Call(&v1::StorageDevice::Stub::CancelMigration, req, &resp);
    if (!s.ok()) return Fail("lun cancel-migration " + name, s);
    if (json()) return PrintJson(resp);
    PrintMigration(resp);
    return 0;
  }

  int ShowSnapshot(const v1::Snapshot& s) {
    if (json()) return PrintJson(s);
    PrintSnapshotRows({&s});
    if (!s.metadata().empty()) {
      std::printf("\nmetadata:\n");
      for (const auto& [k, v] : SortedMetadata(s.metadata())) {
        std::printf("  %s=%s\n", k.c_str(), v.c_str());
      }
    }
    return 0;
  }

  int SnapshotCreate(const std::string& name) {
    if (opt_.lun.empty()) return Usage("snapshot create: --lun (the source LUN) is required");
    v1::CreateSnapshotRequest req;
    req.set_name(name);
    req.set_source_lun(opt_.lun);
    if (std::string bad; !ParseMeta(opt_.meta, req.mutable_metadata(), &bad)) {
      return Usage("--meta: '" + bad + "' is not KEY=VALUE");
    }
    v1::Snapshot resp;
    auto s = Call(&v1::StorageDevice::Stub::CreateSnapshot, req, &resp);
    if (!s.ok()) return Fail("snapshot create " + name, s);
    return ShowSnapshot(resp);
  }

  int SnapshotGet(const std::string& name) {
    v1::GetSnapshotRequest req;
    req.set_name(name);
    v1::Snapshot resp;
    auto s = Call(&v1::StorageDevice::Stub::GetSnapshot, req, &resp);
    if (!s.ok()) return Fail("snapshot get " + name, s);
    return ShowSnapshot(resp);
  }

  int SnapshotDelete(const std::string& name) {
    v1::DeleteSnapshotRequest req;
    req.set_name(name);
    v1::DeleteSnapshotResponse resp;
    auto s = Call(&v1::StorageDevice::Stub::DeleteSnapshot, req, &resp);
    if (!s.ok()) return Fail("snapshot delete " + name, s);
    if (json()) return PrintJson(resp);
    std::printf("snapshot %s deleted\n", name.c_str());
    return 0;
  }

  int SnapshotList() {
    v1::ListSnapshotsRequest req;
    req.set_source_lun(opt_.lun);
    req.set_max_entries(100);
    v1::ListSnapshotsResponse all;
    for (;;) {
      v1::ListSnapshotsResponse page;
      auto s = Call(&v1::StorageDevice::Stub::ListSnapshots, req, &page);
      if (!s.ok()) return Fail("snapshot list", s);
      for (auto& sn : *page.mutable_snapshots()) *all.add_snapshots() = std::move(sn);
      if (page.next_token().empty()) break;
      req.set_starting_token(page.next_token());
    }
    if (json()) return PrintJson(all);
    std::vector<const v1::Snapshot*> rows;
    for (const auto& sn : all.snapshots()) rows.push_back(&sn);
    PrintSnapshotRows(rows);
    return 0;
  }

  const Options& opt_;
  std::unique_ptr<v1::StorageDevice::Stub> stub_;
};

int Run(int argc, char** argv) {
  // Log lines (e.g. the channel's "device ...: server certificate ... is revoked") go to stderr:
  // stdout carries the command's output (-o json).
  spdlog::set_default_logger(spdlog::stderr_color_st("strata-admin"));
  Options opt;
  po::options_description desc("Options");
  desc.add_options()("help,h", "show this help")("server,s", po::value(&opt.server),
                                                 "strata-stored management address ADDR:PORT")(
      "tls-cert", po::value(&opt.tls_cert), "client certificate, PEM (tls.crt)")(
      "tls-key", po::value(&opt.tls_key), "its private key, PEM (tls.key)")(
      "tls-ca", po::value(&opt.tls_ca),
      "CA bundle the device's server certificate must chain to, PEM (ca.crt)")(
      "tls-crl", po::value(&opt.tls_crl),
      "revocation lists (PEM, signed by a CA of --tls-ca) the device's certificate is checked "
      "against")("insecure", po::bool_switch(&opt.insecure),
                 "plaintext, no certificates (a device started with --insecure)")(
      "output,o", po::value(&opt.output)->default_value("table"), "table|json")(
      "timeout", po::value(&opt.timeout_seconds)->default_value(10), "seconds per call")(
      "size", po::value(&opt.size), "LUN size, e.g. 10GiB")(
      "tier", po::value(&opt.tier), "ssd|sas|sata")("dedup", po::bool_switch(&opt.dedup),
                                                    "inline de-duplication for the LUN")(
      "owner", po::value(&opt.owner), "tenant or namespace")(
      "clone-from", po::value(&opt.clone_from),
      "lun create: a clone of this LUN (shares its blocks; no data copied)")(
      "from-snapshot", po::value(&opt.from_snapshot),
      "lun create: restore this snapshot (shares its blocks; no data copied)")(
      "lun", po::value(&opt.lun), "snapshot create: the source LUN; snapshot list: only its")(
      "allow", po::value(&opt.allow), "access list: IPs or CIDRs, comma-separated; * for any")(
      "allow-identity", po::value(&opt.identities)->composing(),
      "access list: an NBD TLS client certificate identity, CN=NAME, DNS:NAME or URI:URI "
      "(repeatable)")("meta", po::value(&opt.meta)->composing(),
                      "lun create: KEY=VALUE metadata kept with the LUN (repeatable)")(
      "fold", po::bool_switch(&opt.fold),
      "lun set-dedup on: also fold blocks already written, in the background")(
      "wait", po::bool_switch(&opt.wait), "wait for a migration to end")(
      "to-device", po::value(&opt.to_device), "management address of another strata-stored")(
      "reason", po::value(&opt.reason), "why the device enters maintenance")(
      "words", po::value(&opt.words), "command words");
  po::positional_options_description pos;
  pos.add("words", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return Usage(e.what());
  }
  if (vm.count("help")) {
    std::cout << kUsage << "\n" << desc;
    return 0;
  }
  opt.allow_set = vm.count("allow") > 0;
  if (opt.server.empty()) return Usage("--server is required");
  if (opt.output != "table" && opt.output != "json") {
    return Usage("--output: '" + opt.output + "' is not one of table, json");
  }
  if (opt.timeout_seconds <= 0) return Usage("--timeout: must be a positive number of seconds");
  auto tls = strata::device::ClientTlsFromFlags(opt.tls_cert, opt.tls_key, opt.tls_ca, opt.insecure,
                                                opt.tls_crl);
  if (!tls.ok()) return Usage(tls.status().message());
  strata::device::SetClientTls(*tls);
  Cli cli(opt, strata::device::NewDeviceChannel(opt.server));
  return cli.Run();
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
