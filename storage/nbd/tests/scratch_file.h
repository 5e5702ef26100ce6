// A scratch file in the test's temporary directory, open for reading and writing,
// removed when it goes: what a volume that keeps its bytes in a file writes into.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <string>

namespace strata::nbd::test {

class ScratchFile {
 public:
  ScratchFile() : path_(::testing::TempDir() + "nbd-scratch-XXXXXX") {
    fd_ = ::mkstemp(path_.data());
    EXPECT_GE(fd_, 0);
  }
  ~ScratchFile() {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  // `n` bytes at `offset` (all of them must be there).
  std::string Read(uint64_t offset, size_t n) const {
    std::string out(n, '\0');
    EXPECT_EQ(::pread(fd_, out.data(), n, static_cast<off_t>(offset)), static_cast<ssize_t>(n));
    return out;
  }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace strata::nbd::test
