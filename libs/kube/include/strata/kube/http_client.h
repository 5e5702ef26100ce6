#pragma once

#include <memory>

#include "strata/common/result.h"
#include "strata/kube/client.h"
#include "strata/kube/config.h"

namespace strata::kube {

// The ApiClient over HTTPS (cpprestsdk). TLS is verified against config.ca_pem (or the system's
// CAs) unless insecure_skip_tls_verify. Non-watch requests share one token bucket
// (config.qps/burst) and time out after config.request_timeout; a watch has its own connection
// and a timeout a minute beyond its server-side timeoutSeconds.
Result<std::unique_ptr<ApiClient>> NewHttpApiClient(const ClientConfig& config, Env* env);

}  // namespace strata::kube
