#pragma once
// OpenSSL's thread-local error queue as text, for the TLS code of the NBD server and the CSI node's
// kernel nbd client (library strata_common_openssl).
#include <string>

namespace strata {

// Every queued error as one line ("; " between them), emptying the queue; "unknown error" when
// the queue is empty.
std::string OpenSslErrors();

}  // namespace strata
