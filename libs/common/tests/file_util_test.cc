#include "strata/common/file_util.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

namespace strata {
namespace {

class FileUtilTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/strata-file-util-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + dir_ + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }
  std::string dir_;
};

TEST_F(FileUtilTest, AtomicWriteReplacesAndLeavesNoTemp) {
  std::string path = dir_ + "/meta.json";
  ASSERT_TRUE(WriteFileAtomically(path, "one").ok());
  ASSERT_TRUE(WriteFileAtomically(path, "two").ok());
  auto read = ReadFileToString(path);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, "two");
  EXPECT_NE(::access((path + ".tmp").c_str(), F_OK), 0);
}

TEST_F(FileUtilTest, MissingFileIsNotFound) {
  auto read = ReadFileToString(dir_ + "/absent");
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), StatusCode::kNotFound);
}

TEST_F(FileUtilTest, CreateDirectoriesIsIdempotentAndChecksType) {
  ASSERT_TRUE(CreateDirectories(dir_ + "/a/b/c").ok());
  ASSERT_TRUE(CreateDirectories(dir_ + "/a/b/c").ok());
  ASSERT_TRUE(WriteFileAtomically(dir_ + "/f", "x").ok());
  auto s = CreateDirectories(dir_ + "/f");
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace strata
