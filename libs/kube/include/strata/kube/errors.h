#pragma once

#include <string_view>

#include "strata/common/status.h"

namespace strata::kube {

// One mapping from the API's HTTP answers to Status, applied by the client:
//   400 Bad Request, 422 Invalid  -> INVALID_ARGUMENT     401 -> UNAUTHENTICATED
//   403 -> PERMISSION_DENIED      404 -> NOT_FOUND        405/415 -> UNIMPLEMENTED
//   409 AlreadyExists -> ALREADY_EXISTS; other 409 (Conflict) -> ABORTED
//   410 Gone/Expired -> OUT_OF_RANGE (the resourceVersion fell out of the retained window)
//   429 -> RESOURCE_EXHAUSTED     500 -> INTERNAL         503, 504, other 5xx -> UNAVAILABLE
// The message is "HTTP <code> <reason>: <the API's message>", so the code survives for people
// and for the predicates below.
Status ApiError(int http_code, std::string_view reason, std::string_view message);
// Builds the Status from a response body: a metav1.Status JSON object or any text.
Status ApiErrorFromBody(int http_code, std::string_view body);

// The HTTP code recorded in a Status made by ApiError() (also under added context); 0 otherwise.
int HttpCode(const Status& status);

inline bool IsNotFound(const Status& s) { return s.code() == StatusCode::kNotFound; }
inline bool IsAlreadyExists(const Status& s) { return s.code() == StatusCode::kAlreadyExists; }
inline bool IsConflict(const Status& s) {
  return HttpCode(s) == 409 && s.code() == StatusCode::kAborted;
}
inline bool IsGone(const Status& s) { return HttpCode(s) == 410; }
inline bool IsInvalid(const Status& s) { return s.code() == StatusCode::kInvalidArgument; }

}  // namespace strata::kube
