#include "strata/common/status.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "strata/common/result.h"

namespace strata {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(StatusTest, CodesMatchGrpcNumbering) {
  // The CSI service relies on this: grpc::StatusCode(static_cast<int>(code)).
  EXPECT_EQ(static_cast<int>(StatusCode::kNotFound), 5);
  EXPECT_EQ(static_cast<int>(StatusCode::kFailedPrecondition), 9);
  EXPECT_EQ(static_cast<int>(StatusCode::kUnauthenticated), 16);
}

TEST(StatusTest, ToStringAndContext) {
  Status s = InvalidArgumentError("bad size");
  EXPECT_EQ(s.ToString(), "INVALID_ARGUMENT: bad size");
  EXPECT_EQ(s.WithContext("--tier ssd").message(), "--tier ssd: bad size");
  EXPECT_TRUE(Status::Ok().WithContext("x").ok());
}

TEST(StatusTest, ErrnoMapping) {
  EXPECT_EQ(ErrnoError("open /x", ENOENT).code(), StatusCode::kNotFound);
  EXPECT_EQ(ErrnoError("write", ENOSPC).code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoError("open", EACCES).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoError("read", EIO).code(), StatusCode::kInternal);
  EXPECT_NE(ErrnoError("open /x", ENOENT).message().find("open /x: "), std::string::npos);
}

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgumentError("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  STRATA_ASSIGN_OR_RETURN(int h, Half(x));
  STRATA_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(ResultTest, ValueAndErrorPropagate) {
  Result<int> ok = Quarter(8);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 2);
  Result<int> bad = Quarter(6);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace strata
