#include "strata/kube/errors.h"

#include <gtest/gtest.h>

namespace strata::kube {
namespace {

TEST(ErrorsTest, MapsHttpCodesAndKeepsTheApiMessage) {
  Status s = ApiErrorFromBody(
      409,
      R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":"Operation cannot be fulfilled on storagedevices.strata.io \"a\": the object has been modified","reason":"Conflict","code":409})");
  EXPECT_EQ(s.code(), StatusCode::kAborted);
  EXPECT_TRUE(IsConflict(s));
  EXPECT_EQ(HttpCode(s), 409);
  EXPECT_NE(s.message().find("HTTP 409 Conflict: Operation cannot be fulfilled"), std::string::npos)
      << s.message();

  EXPECT_TRUE(IsAlreadyExists(ApiError(409, "AlreadyExists", "x")));
  EXPECT_FALSE(IsConflict(ApiError(409, "AlreadyExists", "x")));
  EXPECT_TRUE(IsNotFound(ApiError(404, "NotFound", "x")));
  EXPECT_TRUE(IsGone(ApiError(410, "Expired", "too old resource version")));
  EXPECT_TRUE(IsInvalid(ApiError(422, "Invalid", "spec.endpoint: Invalid value")));
  EXPECT_EQ(ApiError(503, "", "").code(), StatusCode::kUnavailable);
  EXPECT_EQ(ApiError(429, "", "").code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(ApiErrorFromBody(502, "<html>bad gateway</html>").message(),
            "HTTP 502: <html>bad gateway</html>");
  EXPECT_EQ(HttpCode(InternalError("HTTP-like but not ours")), 0);
  EXPECT_TRUE(IsGone(ApiError(410, "Gone", "x").WithContext("WATCH /apis/x")))
      << "callers' context in front of the code does not hide it";
}

}  // namespace
}  // namespace strata::kube
