#include "xxh3_stream.h"

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>
#if defined(__x86_64__)
#define XXH_DISPATCH_DISABLE_REPLACE
#include <xxh_x86dispatch.h>
#endif

namespace strata::storage::engine {
namespace {

static_assert(sizeof(XXH3_state_t) <= 640 && alignof(XXH3_state_t) <= 64,
              "Xxh3Stream::state_ does not hold an XXH3_state_t");

XXH3_state_t* StateOf(unsigned char* raw) { return reinterpret_cast<XXH3_state_t*>(raw); }
const XXH3_state_t* StateOf(const unsigned char* raw) {
  return reinterpret_cast<const XXH3_state_t*>(raw);
}

}  // namespace

Xxh3Stream::Xxh3Stream(const Xxh3Stream& other) { *this = other; }

Xxh3Stream& Xxh3Stream::operator=(const Xxh3Stream& other) {
  XXH3_copyState(StateOf(state_), StateOf(other.state_));
  return *this;
}

void Xxh3Stream::Reset() { XXH3_64bits_reset(StateOf(state_)); }

void Xxh3Stream::Update(const void* data, size_t n) {
#if defined(__x86_64__)
  XXH3_64bits_update_dispatch(StateOf(state_), data, n);
#else
  XXH3_64bits_update(StateOf(state_), data, n);
#endif
}

uint64_t Xxh3Stream::Digest() const { return XXH3_64bits_digest(StateOf(state_)); }

uint64_t Xxh3Of(const void* data, size_t n) {
#if defined(__x86_64__)
  return XXH3_64bits_dispatch(data, n);
#else
  return XXH3_64bits(data, n);
#endif
}

}  // namespace strata::storage::engine
