#pragma once

#include <cstdint>
#include <span>

#include "dedup_index.h"
#include "strata/common/result.h"
#include "strata/storage/volume.h"

namespace strata::storage::engine {

// Volume::Write of a volume an Engine opened, with the dedup fingerprints of the
// write's whole blocks computed already: EngineImpl::WriteHashed (what fps holds, and
// why a wrong fingerprint never shares wrong data). The engine's own receive path
// calls WriteHashed directly; this entry is for its tests. INVALID_ARGUMENT for a
// volume the engine did not open.
Status WriteWithFingerprints(Volume& volume, uint64_t offset, std::span<const char> data,
                             std::span<const Fingerprint> fps, bool fua);

}  // namespace strata::storage::engine
