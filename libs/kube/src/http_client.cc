// cpprestsdk is confined to this file: its exceptions stop here and become Status values.
#include "strata/kube/http_client.h"

#include <cpprest/containerstream.h>
#include <cpprest/http_client.h>

#include <boost/asio/ssl.hpp>
#include <mutex>
#include <thread>

#include "strata/kube/errors.h"
#include "strata/kube/rate_limiter.h"

namespace strata::kube {
namespace {

namespace http = web::http;
using http::client::http_client;
using http::client::http_client_config;

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

class Query {
 public:
  Query& Add(std::string_view key, std::string_view value) {
    if (value.empty()) return *this;
    text_ += text_.empty() ? "?" : "&";
    text_ += key;
    text_ += "=";
    text_ += UrlEncode(value);
    return *this;
  }
  const std::string& str() const { return text_; }

 private:
  std::string text_;
};

// The bearer token, re-read from its file when older than a minute or after a 401: the kubelet
// rotates projected service-account tokens well before they expire.
class TokenSource {
 public:
  TokenSource(Env* env, std::string token, std::string file)
      : env_(env),
        token_(std::move(token)),
        file_(std::move(file)),
        read_at_(Clock::Real()->Now()) {}

  std::string Get(bool force_reread) {
    std::lock_guard g(mu_);
    const TimePoint now = Clock::Real()->Now();
    if (!file_.empty() &&
        (force_reread || token_.empty() || now - read_at_ > std::chrono::minutes(1))) {
      if (auto t = env_->ReadFile(file_); t.ok()) {
        token_ = *t;
        while (!token_.empty() && (token_.back() == '\n' || token_.back() == '\r'))
          token_.pop_back();
      }
      read_at_ = now;
    }
    return token_;
  }
  bool rereadable() const { return !file_.empty(); }

 private:
  Env* const env_;
  std::mutex mu_;
  std::string token_;  // guarded by mu_
  const std::string file_;
  TimePoint read_at_;  // guarded by mu_
};

class HttpApiClient : public ApiClient {
 public:
  HttpApiClient(const ClientConfig& config, Env* env)
      : config_(config),
        tokens_(env, config.token, config.token_file),
        bucket_(config.qps, config.burst, Clock::Real()),
        client_(config.server, MakeConfig(config.request_timeout)) {}

  Result<Json> Get(const Resource& r, std::string_view ns, std::string_view name) override {
    return DoJson(http::methods::GET, r.Path(ns, name), nullptr, "");
  }

  Result<ListPage> List(const Resource& r, std::string_view ns, const ListOptions& o) override {
    Query q;
    q.Add("labelSelector", o.label_selector).Add("fieldSelector", o.field_selector);
    if (o.limit > 0) q.Add("limit", std::to_string(o.limit));
    q.Add("continue", o.continue_token).Add("resourceVersion", o.resource_version);
    STRATA_ASSIGN_OR_RETURN(Json list,
                            DoJson(http::methods::GET, r.Path(ns) + q.str(), nullptr, ""));
    ListPage page;
    if (list.contains("items") && list["items"].is_array()) {
      for (auto& item : list["items"]) {
        // Items of a list carry no kind/apiVersion; add them so that objects look the same
        // whether they came from a list, a get or a watch.
        item["kind"] = r.kind;
        item["apiVersion"] = r.ApiVersion();
        page.items.push_back(std::move(item));
      }
    }
    const Json& meta = list.contains("metadata") ? list["metadata"] : Json::object();
    page.resource_version = meta.value("resourceVersion", "");
    page.continue_token = meta.value("continue", "");
    return page;
  }

  Result<Json> Create(const Resource& r, std::string_view ns, const Json& object) override {
    std::string target_ns(ns);
    if (target_ns.empty() && object.contains("metadata")) {
      target_ns = object["metadata"].value("namespace", "");
    }
    return DoJson(http::methods::POST, r.Path(target_ns), &object, "application/json");
  }

  Result<Json> Update(const Resource& r, const Json& object) override { return Put(r, object, ""); }

  Result<Json> UpdateStatus(const Resource& r, const Json& object) override {
    return Put(r, object, "status");
  }

  Result<Json> Patch(const Resource& r, std::string_view ns, std::string_view name, PatchType type,
                     const Json& patch, bool status_subresource) override {
    const char* content_type =
        type == PatchType::kMerge ? "application/merge-patch+json" : "application/json-patch+json";
    return DoJson(http::methods::PATCH, r.Path(ns, name, status_subresource ? "status" : ""),
                  &patch, content_type);
  }

  Status Delete(const Resource& r, std::string_view ns, std::string_view name,
                const DeleteOptions& o) override {
    Json body = {{"kind", "DeleteOptions"}, {"apiVersion", "v1"}};
    if (!o.precondition_uid.empty()) body["preconditions"]["uid"] = o.precondition_uid;
    if (!o.precondition_resource_version.empty()) {
      body["preconditions"]["resourceVersion"] = o.precondition_resource_version;
    }
    if (!o.propagation_policy.empty()) body["propagationPolicy"] = o.propagation_policy;
    return DoJson(http::methods::DEL, r.Path(ns, name), &body, "application/json").status();
  }

  Status Watch(const Resource& r, std::string_view ns, const WatchOptions& o,
               const std::function<bool(WatchEvent&&)>& on_event, std::stop_token stop) override;

 private:
  http_client_config MakeConfig(std::chrono::seconds timeout) const {
    http_client_config c;
    c.set_timeout(timeout);
    c.set_validate_certificates(!config_.insecure_skip_tls_verify);
    std::string ca = config_.ca_pem, cert = config_.client_cert_pem, key = config_.client_key_pem;
    c.set_ssl_context_callback([ca, cert, key](boost::asio::ssl::context& ctx) {
      // Errors here surface as a failed handshake on the first request, with OpenSSL's reason.
      boost::system::error_code ec;
      if (!ca.empty()) ctx.add_certificate_authority(boost::asio::buffer(ca), ec);
      if (!cert.empty()) {
        ctx.use_certificate_chain(boost::asio::buffer(cert), ec);
        ctx.use_private_key(boost::asio::buffer(key), boost::asio::ssl::context::pem, ec);
      }
    });
    return c;
  }

  Result<Json> Put(const Resource& r, const Json& object, std::string_view sub) {
    const Json& meta = object.contains("metadata") ? object["metadata"] : Json::object();
    std::string name = meta.value("name", "");
    if (name.empty()) return InvalidArgumentError("update: metadata.name is not set");
    return DoJson(http::methods::PUT, r.Path(meta.value("namespace", ""), name, sub), &object,
                  "application/json");
  }

  http::http_request MakeRequest(const http::method& method, const std::string& path_query,
                                 bool reread_token) {
    http::http_request req(method);
    req.set_request_uri(path_query);
    req.headers().add("Accept", "application/json");
    req.headers().add("User-Agent", "strata-operator/0.1");
    std::string token = tokens_.Get(reread_token);
    if (!token.empty()) req.headers().add("Authorization", "Bearer " + token);
    return req;
  }

  Result<Json> DoJson(const http::method& method, const std::string& path_query, const Json* body,
                      const char* content_type) {
    const std::string what = method + " " + path_query;
    for (int attempt = 0;; ++attempt) {
      if (Duration wait = bucket_.Reserve(); wait > Duration::zero())
        std::this_thread::sleep_for(wait);
      http::http_request req = MakeRequest(method, path_query, attempt > 0);
      if (body != nullptr) req.set_body(body->dump(), content_type);
      int code = 0;
      std::string text;
      try {
        http::http_response resp = client_.request(req).get();
        code = resp.status_code();
        text = resp.extract_utf8string(true).get();
      } catch (const std::exception& e) {
        // A pooled connection the server closed (an apiserver restart, an idle timeout) fails
        // on first use. One retry on a fresh connection is safe when the request never left
        // (write or connect failed) and for reads in any case.
        const std::string_view msg = e.what();
        const bool not_sent =
            msg.starts_with("Failed to write") || msg.starts_with("Failed to connect");
        if (attempt < 2 && (not_sent || method == http::methods::GET)) continue;
        return UnavailableError(what + ": " + e.what());
      }
      if (code == 401 && attempt == 0 && tokens_.rereadable()) continue;  // rotated token
      if (code < 200 || code > 299) return ApiErrorFromBody(code, text).WithContext(what);
      auto parsed = Json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (parsed.is_discarded()) return InternalError(what + ": response is not JSON");
      return parsed;
    }
  }

  const ClientConfig config_;
  TokenSource tokens_;
  TokenBucket bucket_;
  http_client client_;
};

Status HttpApiClient::Watch(const Resource& r, std::string_view ns, const WatchOptions& o,
                            const std::function<bool(WatchEvent&&)>& on_event,
                            std::stop_token stop) {
  Query q;
  q.Add("watch", "1").Add("resourceVersion", o.resource_version);
  if (o.allow_bookmarks) q.Add("allowWatchBookmarks", "true");
  q.Add("timeoutSeconds", std::to_string(o.timeout_seconds));
  q.Add("labelSelector", o.label_selector).Add("fieldSelector", o.field_selector);
  const std::string path = r.Path(ns) + q.str();
  const std::string what = "WATCH " + path;

  pplx::cancellation_token_source cts;
  std::stop_callback on_stop(stop, [&cts] { cts.cancel(); });
  try {
    // A connection of its own: a watch holds it for minutes. The client-side timeout is a
    // backstop for a silently dead peer; the server ends the stream first.
    http_client client(config_.server, MakeConfig(std::chrono::seconds(o.timeout_seconds + 60)));
    http::http_request req = MakeRequest(http::methods::GET, path, false);
    http::http_response resp = client.request(req, cts.get_token()).get();
    if (resp.status_code() != http::status_codes::OK) {
      std::string text = resp.extract_utf8string(true).get();
      if (resp.status_code() == 401) tokens_.Get(true);  // the next attempt uses a fresh token
      return ApiErrorFromBody(resp.status_code(), text).WithContext(what);
    }
    concurrency::streams::istream body = resp.body();
    while (true) {
      if (stop.stop_requested()) return Status(StatusCode::kCancelled, what + ": stopped");
      concurrency::streams::container_buffer<std::string> line;
      size_t n = body.read_line(line).get();
      if (n == 0) {
        if (body.is_eof()) return Status::Ok();  // the server ended the watch (timeoutSeconds)
        continue;                                // an empty line
      }
      auto event = Json::parse(line.collection(), nullptr, /*allow_exceptions=*/false);
      if (!event.is_object() || !event.contains("type")) {
        return InternalError(what + ": undecodable watch event");
      }
      const std::string type = event["type"].get<std::string>();
      WatchEvent ev;
      if (type == "ADDED") {
        ev.type = WatchEventType::kAdded;
      } else if (type == "MODIFIED") {
        ev.type = WatchEventType::kModified;
      } else if (type == "DELETED") {
        ev.type = WatchEventType::kDeleted;
      } else if (type == "BOOKMARK") {
        ev.type = WatchEventType::kBookmark;
      } else if (type == "ERROR") {
        const Json& st = event["object"];
        return ApiError(st.value("code", 500), st.value("reason", ""), st.value("message", ""))
            .WithContext(what);
      } else {
        return InternalError(what + ": unknown watch event type '" + type + "'");
      }
      ev.object = std::move(event["object"]);
      if (!on_event(std::move(ev))) return Status::Ok();
    }
  } catch (const pplx::task_canceled&) {
    return Status(StatusCode::kCancelled, what + ": stopped");
  } catch (const std::exception& e) {
    if (stop.stop_requested()) return Status(StatusCode::kCancelled, what + ": stopped");
    return UnavailableError(what + ": " + e.what());
  }
}

}  // namespace

Result<std::unique_ptr<ApiClient>> NewHttpApiClient(const ClientConfig& config, Env* env) {
  if (config.server.empty()) return InvalidArgumentError("client config: server is not set");
  if (config.qps <= 0 || config.burst < 1) {
    return InvalidArgumentError("client config: qps must be > 0 and burst >= 1");
  }
  try {
    return std::unique_ptr<ApiClient>(std::make_unique<HttpApiClient>(config, env));
  } catch (const std::exception& e) {
    return InvalidArgumentError("client config: server '" + config.server + "': " + e.what());
  }
}

}  // namespace strata::kube
