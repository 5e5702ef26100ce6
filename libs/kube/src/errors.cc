#include "strata/kube/errors.h"

#include <charconv>
#include <nlohmann/json.hpp>
#include <string>

namespace strata::kube {

Status ApiError(int http_code, std::string_view reason, std::string_view message) {
  StatusCode code;
  switch (http_code) {
    case 400:
    case 422:
      code = StatusCode::kInvalidArgument;
      break;
    case 401:
      code = StatusCode::kUnauthenticated;
      break;
    case 403:
      code = StatusCode::kPermissionDenied;
      break;
    case 404:
      code = StatusCode::kNotFound;
      break;
    case 405:
    case 415:
      code = StatusCode::kUnimplemented;
      break;
    case 409:
      code = reason == "AlreadyExists" ? StatusCode::kAlreadyExists : StatusCode::kAborted;
      break;
    case 410:
      code = StatusCode::kOutOfRange;
      break;
    case 429:
      code = StatusCode::kResourceExhausted;
      break;
    case 500:
      code = StatusCode::kInternal;
      break;
    default:
      code = http_code >= 500 ? StatusCode::kUnavailable : StatusCode::kUnknown;
      break;
  }
  std::string text = "HTTP " + std::to_string(http_code);
  if (!reason.empty()) text += " " + std::string(reason);
  text += ": ";
  text += message.empty() ? std::string("(no message)") : std::string(message);
  return Status(code, std::move(text));
}

Status ApiErrorFromBody(int http_code, std::string_view body) {
  auto parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object() && parsed.value("kind", "") == "Status") {
    return ApiError(http_code, parsed.value("reason", ""), parsed.value("message", ""));
  }
  // Not a Status: a proxy or a half-started apiserver. Keep the start of the text.
  return ApiError(http_code, "", body.substr(0, 512));
}

int HttpCode(const Status& status) {
  // Callers add context in front ("GET /api/...: HTTP 404 NotFound: ..."): find the marker.
  std::string_view m = status.message();
  for (size_t pos = m.find("HTTP "); pos != std::string_view::npos;
       pos = m.find("HTTP ", pos + 1)) {
    if (pos + 8 > m.size()) break;
    int code = 0;
    auto [p, ec] = std::from_chars(m.data() + pos + 5, m.data() + pos + 8, code);
    if (ec == std::errc() && p == m.data() + pos + 8 && code >= 100 && code <= 599 &&
        (pos + 8 == m.size() || m[pos + 8] == ' ' || m[pos + 8] == ':')) {
      return code;
    }
  }
  return 0;
}

}  // namespace strata::kube
