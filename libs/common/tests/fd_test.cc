#include "strata/common/fd.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <utility>

namespace strata {
namespace {

// Whether `fd` is an open descriptor of this process.
bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

int NewFd() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

TEST(FdTest, ClosesOnDestruction) {
  int raw = NewFd();
  ASSERT_GE(raw, 0);
  {
    Fd fd(raw);
    EXPECT_TRUE(fd.valid());
    EXPECT_EQ(fd.get(), raw);
    EXPECT_TRUE(IsOpen(raw));
  }
  EXPECT_FALSE(IsOpen(raw));
}

TEST(FdTest, DefaultHoldsNothing) {
  Fd fd;
  EXPECT_FALSE(fd.valid());
  EXPECT_EQ(fd.get(), -1);
  fd.Reset();  // no descriptor: nothing to close
  EXPECT_EQ(fd.Release(), -1);
}

TEST(FdTest, MoveTransfersOwnership) {
  int raw = NewFd();
  ASSERT_GE(raw, 0);
  Fd a(raw);
  Fd b(std::move(a));
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): moved-from is defined empty
  EXPECT_EQ(b.get(), raw);
  Fd c;
  c = std::move(b);
  EXPECT_EQ(c.get(), raw);
  EXPECT_TRUE(IsOpen(raw));
  c = Fd();  // assigning over an owner closes what it held
  EXPECT_FALSE(IsOpen(raw));
}

TEST(FdTest, SelfMoveAssignKeepsTheDescriptor) {
  int raw = NewFd();
  ASSERT_GE(raw, 0);
  Fd a(raw);
  Fd& alias = a;
  a = std::move(alias);
  EXPECT_EQ(a.get(), raw);
  EXPECT_TRUE(IsOpen(raw));
}

TEST(FdTest, ReleaseGivesUpOwnership) {
  int raw = NewFd();
  ASSERT_GE(raw, 0);
  {
    Fd fd(raw);
    EXPECT_EQ(fd.Release(), raw);
    EXPECT_FALSE(fd.valid());
  }
  EXPECT_TRUE(IsOpen(raw));
  ::close(raw);
}

TEST(FdTest, ResetClosesTheOldAndTakesTheNew) {
  int first = NewFd();
  int second = NewFd();
  ASSERT_GE(first, 0);
  ASSERT_GE(second, 0);
  Fd fd(first);
  fd.Reset(second);
  EXPECT_FALSE(IsOpen(first));
  EXPECT_EQ(fd.get(), second);
  fd.Reset(second);  // the same descriptor again: kept open, not closed under us
  EXPECT_TRUE(IsOpen(second));
  fd.Reset();
  EXPECT_FALSE(IsOpen(second));
  EXPECT_FALSE(fd.valid());
}

}  // namespace
}  // namespace strata
