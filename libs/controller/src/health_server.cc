// cpprestsdk is confined to this file.
#include "strata/controller/health_server.h"

#include <cpprest/http_listener.h>

namespace strata::ctrl {
namespace {

namespace http = web::http;

class CppRestHealthServer : public HealthServer {
 public:
  CppRestHealthServer(const std::string& uri, std::function<bool()> ready)
      : listener_(uri), ready_(std::move(ready)) {
    listener_.support(http::methods::GET, [this](http::http_request req) {
      const std::string path = req.relative_uri().path();
      if (path == "/healthz" || path == "/livez") {
        req.reply(http::status_codes::OK, "ok", "text/plain");
      } else if (path == "/readyz") {
        if (ready_()) {
          req.reply(http::status_codes::OK, "ok", "text/plain");
        } else {
          req.reply(http::status_codes::ServiceUnavailable, "caches not synced", "text/plain");
        }
      } else {
        req.reply(http::status_codes::NotFound, "not found", "text/plain");
      }
    });
    listener_.open().wait();
  }
  ~CppRestHealthServer() override {
    try {
      listener_.close().wait();
    } catch (...) {  // shutting down anyway
    }
  }

 private:
  http::experimental::listener::http_listener listener_;
  std::function<bool()> ready_;
};

}  // namespace

Result<std::unique_ptr<HealthServer>> StartHealthServer(const std::string& address,
                                                        std::function<bool()> ready) {
  std::string hostport = address;
  if (hostport.starts_with(":")) hostport = "0.0.0.0" + hostport;
  try {
    return std::unique_ptr<HealthServer>(
        std::make_unique<CppRestHealthServer>("http://" + hostport, std::move(ready)));
  } catch (const std::exception& e) {
    return InvalidArgumentError("--health-addr " + address + ": " + e.what());
  }
}

}  // namespace strata::ctrl
