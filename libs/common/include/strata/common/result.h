#pragma once

#include <cassert>
#include <optional>
#include <type_traits>
#include <utility>

#include "strata/common/status.h"

namespace strata {

// Either a value of type T or a non-OK Status (std::expected is C++23; bookworm's
// g++ 12 builds C++20). Accessing value() of an error Result is a programming error.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!status_.ok() && "a Result built from a Status must carry an error");
    if (status_.ok()) status_ = Status(StatusCode::kInternal, "Result built from OK status");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace strata

#define STRATA_CONCAT_INNER_(a, b) a##b
#define STRATA_CONCAT_(a, b) STRATA_CONCAT_INNER_(a, b)

// STRATA_ASSIGN_OR_RETURN(auto x, Compute()); returns the error Status if Compute() failed.
#define STRATA_ASSIGN_OR_RETURN(lhs, expr)                    \
  auto STRATA_CONCAT_(strata_result_, __LINE__) = (expr);     \
  if (!STRATA_CONCAT_(strata_result_, __LINE__).ok())         \
    return STRATA_CONCAT_(strata_result_, __LINE__).status(); \
  lhs = std::move(STRATA_CONCAT_(strata_result_, __LINE__)).value()
