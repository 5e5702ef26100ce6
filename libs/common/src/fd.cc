#include "strata/common/fd.h"

#include <unistd.h>

namespace strata {

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) Reset(other.Release());
  return *this;
}

void Fd::Reset(int fd) {
  // Linux closes the descriptor even when close(2) fails (EINTR included): never retry.
  if (fd_ >= 0 && fd_ != fd) ::close(fd_);
  fd_ = fd;
}

}  // namespace strata
