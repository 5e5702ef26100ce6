#pragma once

#include <google/protobuf/message.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <string>

#include "strata/common/status.h"

namespace strata::csi {

// Clears, in place and recursively, every field marked with the csi_secret option
// (secrets maps, and any future secret field): what may be logged of a request.
void StripSecrets(google::protobuf::Message* message);

// The request as one line of text with its secrets stripped.
std::string RedactedText(const google::protobuf::Message& request);

// The one mapping from Status to the CSI reply: the codes are numbered alike.
inline grpc::Status ToGrpc(const Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), s.message());
}

// Runs one CSI call, logs it (method, redacted request at debug, code and duration at
// info or warn) and maps its Status to gRPC's. What the COs' own logging interceptor
// (protosanitizer) does for Go drivers.
template <typename Fn>
grpc::Status LoggedCall(const char* method, const google::protobuf::Message& request, Fn&& fn) {
  const auto start = std::chrono::steady_clock::now();
  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug("{} request: {}", method, RedactedText(request));
  }
  Status s = fn();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  if (s.ok()) {
    spdlog::info("{}: OK ({} ms)", method, ms);
  } else {
    spdlog::warn("{}: {} ({} ms)", method, s.ToString(), ms);
  }
  return ToGrpc(s);
}

}  // namespace strata::csi
