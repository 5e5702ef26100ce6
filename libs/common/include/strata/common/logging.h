#pragma once

#include <string_view>

#include "strata/common/status.h"

namespace strata {

// Configures the default spdlog logger for a daemon or CLI: level is one of
// trace|debug|info|warn|error|critical|off; format is "text" or "json" (one JSON
// object per line with time, level, logger and msg). Logs go to stderr.
Status InitLogging(std::string_view level, std::string_view format);

}  // namespace strata
