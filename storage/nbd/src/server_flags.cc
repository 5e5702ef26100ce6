#include "strata/nbd/server_flags.h"

#include <boost/program_options.hpp>
#include <cerrno>
#include <cstdlib>

#include "strata/common/units.h"

namespace strata::nbd {

namespace po = boost::program_options;

namespace {

std::string Millis(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

}  // namespace

void AddNbdServerFlags(po::options_description* desc, NbdServerFlags* f) {
  const NbdServerOptions d;
  desc->add_options()("nbd-max-connections",
                      po::value(&f->max_connections)->default_value(d.max_connections),
                      "NBD connections open at once; more are accepted and closed at once")(
      "nbd-max-connections-per-client",
      po::value(&f->max_connections_per_client)->default_value(d.max_connections_per_client),
      "NBD connections from one client address (0: no limit); more are closed at once")(
      "nbd-max-connections-per-export",
      po::value(&f->max_connections_per_export)->default_value(d.max_connections_per_export),
      "NBD connections on one export (0: no limit); NBD_OPT_GO beyond it gets "
      "NBD_REP_ERR_POLICY")(
      "nbd-queue-depth", po::value(&f->queue_depth)->default_value(d.threads_per_connection),
      "requests of one NBD connection served at once, 1 to 256; a client pipelining more is "
      "not read from until one finishes")(
      "nbd-max-request-size", po::value(&f->max_request_size)->default_value("32MiB"),
      "largest NBD READ/WRITE, 4KiB to 2GiB (advertised as the maximum block size)")(
      "nbd-max-inflight-bytes", po::value(&f->max_inflight)->default_value("1GiB"),
      "payload bytes held by NBD requests in flight, server-wide (0: no limit); a READ or "
      "WRITE beyond it gets ENOMEM")(
      "nbd-handshake-timeout",
      po::value(&f->handshake_timeout)->default_value(Millis(d.handshake_timeout)),
      "an NBD client must finish its handshake within this time, e.g. 30s")(
      "nbd-idle-timeout", po::value(&f->idle_timeout)->default_value("0"),
      "close an NBD connection with no request for this long, e.g. 10m (0: never; the "
      "kernel nbd client keeps idle connections for the device's lifetime)")(
      "nbd-send-timeout", po::value(&f->send_timeout)->default_value(Millis(d.send_timeout)),
      "drop an NBD client that does not take a reply within this time, e.g. 30s")(
      "nbd-follow-client-cpu",
      po::value(&f->follow_client_cpu)->default_value(d.follow_client_cpu)->implicit_value(true),
      "serve a connection that sends one small request at a time on the CPU its requests "
      "arrive on (saves two cross-CPU wake-ups a request); false: leave placement to the "
      "scheduler");
}

Result<std::chrono::milliseconds> ParseDurationFlag(const std::string& text,
                                                    const std::string& field) {
  auto bad = [&](const std::string& why) {
    return InvalidArgumentError(field + ": '" + text + "' " + why +
                                " (expected a duration like 30s, 500ms, 10m or 0)");
  };
  if (text.empty()) return bad("is empty");
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (end == text.c_str() || text[0] == '-' || errno == ERANGE) return bad("is not a number");
  std::string unit(end);
  uint64_t ms_per = 0;
  if (unit == "ms") {
    ms_per = 1;
  } else if (unit == "s") {
    ms_per = 1000;
  } else if (unit == "m") {
    ms_per = 60'000;
  } else if (unit == "h") {
    ms_per = 3'600'000;
  } else if (unit.empty() && v == 0) {
    ms_per = 1;
  } else {
    return bad(unit.empty() ? "has no unit" : "has an unknown unit '" + unit + "'");
  }
  if (v > (uint64_t{1} << 40) / ms_per) return bad("is too long");
  return std::chrono::milliseconds(static_cast<int64_t>(v * ms_per));
}

Result<NbdServerOptions> NbdServerOptionsFromFlags(const NbdServerFlags& f) {
  NbdServerOptions o;
  if (f.max_connections < 1) {
    return InvalidArgumentError("--nbd-max-connections: must be at least 1, got " +
                                std::to_string(f.max_connections));
  }
  if (f.max_connections_per_client < 0) {
    return InvalidArgumentError("--nbd-max-connections-per-client: must be 0 (no limit) or more");
  }
  if (f.max_connections_per_export < 0) {
    return InvalidArgumentError("--nbd-max-connections-per-export: must be 0 (no limit) or more");
  }
  if (f.queue_depth < 1 || f.queue_depth > 256) {
    return InvalidArgumentError("--nbd-queue-depth: must be 1 to 256, got " +
                                std::to_string(f.queue_depth));
  }
  o.max_connections = f.max_connections;
  o.max_connections_per_client = f.max_connections_per_client;
  o.max_connections_per_export = f.max_connections_per_export;
  o.threads_per_connection = f.queue_depth;
  o.follow_client_cpu = f.follow_client_cpu;
  auto size = ParseSize(f.max_request_size);
  if (!size.ok()) return size.status().WithContext("--nbd-max-request-size");
  if (*size < 4096 || *size > (uint64_t{1} << 31)) {
    return InvalidArgumentError("--nbd-max-request-size: '" + f.max_request_size +
                                "' is not between 4KiB and 2GiB");
  }
  o.max_payload_bytes = static_cast<uint32_t>(*size);
  auto inflight = ParseSize(f.max_inflight);
  if (!inflight.ok()) return inflight.status().WithContext("--nbd-max-inflight-bytes");
  if (*inflight != 0 && *inflight < o.max_payload_bytes) {
    return InvalidArgumentError("--nbd-max-inflight-bytes: '" + f.max_inflight +
                                "' is less than --nbd-max-request-size (0: no limit)");
  }
  o.max_inflight_bytes = *inflight;
  STRATA_ASSIGN_OR_RETURN(o.handshake_timeout,
                          ParseDurationFlag(f.handshake_timeout, "--nbd-handshake-timeout"));
  if (o.handshake_timeout.count() <= 0) {
    return InvalidArgumentError("--nbd-handshake-timeout: must be more than 0");
  }
  STRATA_ASSIGN_OR_RETURN(o.idle_timeout, ParseDurationFlag(f.idle_timeout, "--nbd-idle-timeout"));
  STRATA_ASSIGN_OR_RETURN(o.send_timeout, ParseDurationFlag(f.send_timeout, "--nbd-send-timeout"));
  if (o.send_timeout.count() <= 0) {
    return InvalidArgumentError("--nbd-send-timeout: must be more than 0");
  }
  return o;
}

}  // namespace strata::nbd
