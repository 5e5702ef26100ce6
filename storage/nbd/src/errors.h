#pragma once

#include <cstdint>

#include "strata/common/status.h"

namespace strata::nbd {

// The NBD error value for a failed Volume call: OUT_OF_RANGE and INVALID_ARGUMENT
// -> EINVAL, RESOURCE_EXHAUSTED -> ENOSPC, PERMISSION_DENIED -> EPERM, anything
// else (INTERNAL, UNAVAILABLE, ...) -> EIO. OK -> 0.
uint32_t NbdErrorFromStatus(const Status& status);

// The option reply error for a failed ExportCatalog::Open: NOT_FOUND and UNAVAILABLE
// -> NBD_REP_ERR_UNKNOWN ("the requested export is not available"; ERR_SHUTDOWN is
// kept for the whole server stopping, since it obliges the client to disconnect),
// PERMISSION_DENIED -> NBD_REP_ERR_POLICY, INVALID_ARGUMENT -> NBD_REP_ERR_INVALID,
// anything else -> NBD_REP_ERR_UNKNOWN.
uint32_t OptionErrorFromStatus(const Status& status);

}  // namespace strata::nbd
