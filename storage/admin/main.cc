// strata-admin: command line for a strata-stored device's management API.
//
//   strata-admin --server ADDR [-o table|json] device status
//
// Exit codes: 0 success, 1 the server refused or failed, 2 bad usage.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "strata/common/units.h"
#include "strata/storage/v1/storage.grpc.pb.h"

namespace po = boost::program_options;
namespace v1 = strata::storage::v1;

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

struct Options {
  std::string server;
  std::string output;
  int timeout_seconds = 10;
  std::vector<std::string> command;
};

int Usage(const std::string& why) {
  std::fprintf(
      stderr,
      "strata-admin: %s\n"
      "usage: strata-admin --server ADDR [-o table|json] [--timeout SECONDS] device status\n",
      why.c_str());
  return kExitUsage;
}

int Fail(const std::string& what, const grpc::Status& s) {
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
  int code = static_cast<int>(s.error_code());
  std::fprintf(stderr, "strata-admin: %s: %s: %s\n", what.c_str(),
               code >= 0 && code <= 16 ? kNames[code] : "UNKNOWN", s.error_message().c_str());
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

std::string TierName(v1::TierClass c) {
  switch (c) {
    case v1::TIER_CLASS_SSD:
      return "ssd";
    case v1::TIER_CLASS_SAS:
      return "sas";
    case v1::TIER_CLASS_SATA:
      return "sata";
    default:
      return "unspecified";
  }
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

void PrintDeviceTable(const v1::DeviceStatus& st) {
  std::printf("Device:    %s\n", st.name().c_str());
  std::printf("ID:        %s\n", st.device_id().c_str());
  std::printf("Version:   %s\n", st.version().c_str());
  std::printf("State:     %s\n", StateName(st.state()).c_str());
  std::printf("Uptime:    %llus\n", static_cast<unsigned long long>(st.uptime_seconds()));
  std::printf("LUNs:      %u\n", st.lun_count());
  std::printf("Capacity:  %s (%s used)\n", strata::FormatSize(st.capacity_bytes()).c_str(),
              strata::FormatSize(st.used_bytes()).c_str());
  std::string portals;
  for (const auto& p : st.portals()) portals += (portals.empty() ? "" : ", ") + p;
  std::printf("Portals:   %s\n", portals.empty() ? "(none)" : portals.c_str());
  std::printf("\n%-6s %-12s %-12s %-14s %-8s %s\n", "TIER", "CAPACITY", "USED", "PRICE/GiB-h",
              "HEALTH", "PATH");
  for (const auto& t : st.tiers()) {
    std::printf("%-6s %-12s %-12s %-14.6f %-8s %s%s%s\n", TierName(t.class_()).c_str(),
                strata::FormatSize(t.capacity_bytes()).c_str(),
                strata::FormatSize(t.used_bytes()).c_str(), t.price_per_gib_hour(),
                t.healthy() ? "ok" : "FAILED", t.path().c_str(), t.healthy() ? "" : ": ",
                t.message().c_str());
  }
}

int DeviceStatus(v1::StorageDevice::Stub& stub, const Options& opt) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(opt.timeout_seconds));
  v1::DeviceStatus resp;
  grpc::Status s = stub.GetDeviceStatus(&ctx, v1::GetDeviceStatusRequest(), &resp);
  if (!s.ok()) return Fail("device status", s);
  if (opt.output == "json") return PrintJson(resp);
  PrintDeviceTable(resp);
  return 0;
}

int Run(int argc, char** argv) {
  Options opt;
  po::options_description desc("Options");
  desc.add_options()("help,h", "show this help")("server,s", po::value(&opt.server),
                                                 "strata-stored management address ADDR:PORT")(
      "output,o", po::value(&opt.output)->default_value("table"), "table|json")(
      "timeout", po::value(&opt.timeout_seconds)->default_value(10), "seconds per call")(
      "command", po::value(&opt.command), "command words");
  po::positional_options_description pos;
  pos.add("command", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return Usage(e.what());
  }
  if (vm.count("help")) {
    std::cout << "usage: strata-admin --server ADDR [-o table|json] device status\n\n" << desc;
    return 0;
  }
  if (opt.server.empty()) return Usage("--server is required");
  if (opt.output != "table" && opt.output != "json") {
    return Usage("--output: '" + opt.output + "' is not one of table, json");
  }
  if (opt.timeout_seconds <= 0) return Usage("--timeout: must be a positive number of seconds");

  auto channel = grpc::CreateChannel(opt.server, grpc::InsecureChannelCredentials());
  v1::StorageDevice::Stub stub(channel);
  const auto& cmd = opt.command;
  if (cmd.size() == 2 && cmd[0] == "device" && cmd[1] == "status") return DeviceStatus(stub, opt);
  std::string joined;
  for (const auto& w : cmd) joined += (joined.empty() ? "" : " ") + w;
  return Usage(cmd.empty() ? "no command given" : "unknown command '" + joined + "'");
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
