#pragma once

#include <cstddef>
#include <memory>

namespace strata::storage {

// The size of the buffers a move's source reads blocks into and sends from.
inline constexpr size_t kCopyBufferBytes = 1 << 20;

// A buffer of `bytes` for a move's copy. Buffers of kCopyBufferBytes come from a
// process-wide pool and go back to it when their last owner lets go (a fresh 1 MiB
// allocation per group costs a page fault per 4 KiB on first touch); the pool lives as
// long as the process, since a transport may hold a buffer after the writer that
// filled it is gone. At most a few dozen idle buffers are kept. Thread-safe.
std::shared_ptr<char[]> SharedCopyBuffer(size_t bytes);

}  // namespace strata::storage
