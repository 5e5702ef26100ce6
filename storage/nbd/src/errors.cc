#include "errors.h"

#include "strata/nbd/protocol.h"

namespace strata::nbd {

uint32_t NbdErrorFromStatus(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return 0;
    case StatusCode::kOutOfRange:
    case StatusCode::kInvalidArgument:
      return kEinval;
    case StatusCode::kResourceExhausted:
      return kEnospc;
    case StatusCode::kPermissionDenied:
      return kEperm;
    default:
      return kEio;
  }
}

uint32_t OptionErrorFromStatus(const Status& status) {
  switch (status.code()) {
    case StatusCode::kPermissionDenied:
      return kRepErrPolicy;
    case StatusCode::kInvalidArgument:
      return kRepErrInvalid;
    default:
      return kRepErrUnknown;
  }
}

}  // namespace strata::nbd
