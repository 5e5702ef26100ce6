#pragma once

// strata-stored's flags for the NBD server's limits (--nbd-*), kept beside the
// options they set so the daemon's main only wires them.

#include <boost/program_options/options_description.hpp>
#include <string>

#include "strata/common/result.h"
#include "strata/nbd/server.h"

namespace strata::nbd {

// The flags as typed; defaults are NbdServerOptions' defaults.
struct NbdServerFlags {
  int max_connections = 0;
  int max_connections_per_client = 0;
  int max_connections_per_export = 0;
  int queue_depth = 0;
  std::string max_request_size;
  std::string max_inflight;
  std::string handshake_timeout;
  std::string idle_timeout;
  std::string send_timeout;
  bool follow_client_cpu = true;
};

// Adds --nbd-max-connections, --nbd-max-connections-per-client,
// --nbd-max-connections-per-export, --nbd-queue-depth, --nbd-max-request-size,
// --nbd-handshake-timeout, --nbd-idle-timeout, --nbd-send-timeout and
// --nbd-follow-client-cpu to `desc`,
// stored into *flags (which must outlive parsing).
void AddNbdServerFlags(boost::program_options::options_description* desc, NbdServerFlags* flags);

// The options the flags ask for; INVALID_ARGUMENT naming the flag and the reason
// when one is out of range or unparsable.
Result<NbdServerOptions> NbdServerOptionsFromFlags(const NbdServerFlags& flags);

// "30s", "500ms", "2m", "0": a duration in milliseconds. `field` names the flag.
Result<std::chrono::milliseconds> ParseDurationFlag(const std::string& text,
                                                    const std::string& field);

}  // namespace strata::nbd
