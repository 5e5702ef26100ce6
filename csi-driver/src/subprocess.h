#pragma once

// Running a host tool (dmsetup, blkid, mkfs, mount) from the node plugin.

#include <string>
#include <vector>

#include "strata/common/result.h"
#include "strata/common/status.h"

namespace strata::csi {

// "a b c": the command line for messages.
std::string JoinArgs(const std::vector<std::string>& args);

// Runs args[0] (searched in PATH) with stdin from /dev/null; its stdout (and stderr, for
// error messages) into `*out` when given (at most 1 MiB kept). Returns the exit status;
// an error when it cannot be started or was killed by a signal.
Result<int> RunStatus(const std::vector<std::string>& args, std::string* out);

// Runs the command; OK when it exits 0, else INTERNAL with the command line, the exit
// status and its output.
Status Run(const std::vector<std::string>& args, std::string* out = nullptr);

}  // namespace strata::csi
