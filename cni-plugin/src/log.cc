#include "strata/cni/log.h"

#include <unistd.h>

#include <string>

namespace strata::cni {

void LogWarning(std::string_view message) {
  std::string line = "strata-cni: warning: ";
  line += message;
  line += '\n';
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace strata::cni
