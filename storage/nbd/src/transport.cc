#include "transport.h"

#include <sys/ioctl.h>

#include <string>

#include "socket_util.h"

namespace strata::nbd {

Status Transport::RecvAll(char* buf, size_t len) {
  while (len > 0) {
    STRATA_ASSIGN_OR_RETURN(size_t got, RecvSome(buf, len));
    buf += got;
    len -= got;
  }
  return Status::Ok();
}

Status Transport::SendAll(const char* buf, size_t len) {
  iovec iov{const_cast<char*>(buf), len};
  return SendAll(&iov, 1);
}

Result<size_t> Transport::RecvSomeV(const struct iovec* iov, int iovcnt) {
  (void)iovcnt;
  return RecvSome(static_cast<char*>(iov[0].iov_base), iov[0].iov_len);
}

Status Transport::RecvAllV(struct iovec* iov, int iovcnt) {
  while (iovcnt > 0) {
    if (iov->iov_len == 0) {
      ++iov;
      --iovcnt;
      continue;
    }
    STRATA_ASSIGN_OR_RETURN(size_t got, RecvSomeV(iov, iovcnt));
    AdvanceIov(&iov, &iovcnt, got);
  }
  return Status::Ok();
}

Result<size_t> Transport::SendNow(struct iovec** /*iov*/, int* /*iovcnt*/) {
  return UnimplementedError("this transport cannot send without waiting");
}

namespace {

class PlainTransport final : public Transport {
 public:
  explicit PlainTransport(int fd) : fd_(fd) {}

  Result<size_t> RecvSome(char* buf, size_t len) override { return nbd::RecvSome(fd_, buf, len); }
  Result<size_t> RecvSomeV(const struct iovec* iov, int iovcnt) override {
    return nbd::RecvSomeV(fd_, iov, iovcnt);
  }
  Status RecvAllV(struct iovec* iov, int iovcnt) override {
    return nbd::RecvAllV(fd_, iov, iovcnt);
  }
  Status SendAll(struct iovec* iov, int iovcnt) override { return nbd::SendAll(fd_, iov, iovcnt); }
  Status SetReceiveTimeout(std::chrono::milliseconds timeout) override {
    return nbd::SetReceiveTimeout(fd_, timeout);
  }
  bool sends_now() const override { return true; }
  Result<size_t> SendNow(struct iovec** iov, int* iovcnt) override {
    return nbd::SendNow(fd_, iov, iovcnt);
  }
  std::optional<size_t> Queued() const override {
    int n = 0;
    if (::ioctl(fd_, FIONREAD, &n) != 0 || n < 0) return std::nullopt;
    return static_cast<size_t>(n);
  }
  bool AwaitQueued(size_t n) override { return nbd::AwaitQueued(fd_, n); }
  int splice_fd() const override { return fd_; }
  std::string Describe() const override { return "plain"; }

 private:
  const int fd_;
};

}  // namespace

std::unique_ptr<Transport> MakePlainTransport(int fd) {
  return std::make_unique<PlainTransport>(fd);
}

}  // namespace strata::nbd
