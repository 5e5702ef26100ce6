#include "strata/storage/copy_priority.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <thread>

namespace strata::storage {
namespace {

TEST(CopyPriorityTest, ParsesTheThreeNamesAndRefusesOthersNamingTheFlag) {
  for (auto p : {CopyPriority::kNormal, CopyPriority::kBatch, CopyPriority::kIdle}) {
    auto parsed = ParseCopyPriority(CopyPriorityName(p), "--copy-priority");
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, p);
  }
  auto bad = ParseCopyPriority("low", "--copy-priority");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("--copy-priority: 'low'"), std::string::npos)
      << bad.status().message();
}

// A scope puts its thread at the copy priority and back to SCHED_OTHER; a dedicated
// copy thread stays there. Runs on fresh threads so the test's own stays as it was.
TEST(CopyPriorityTest, ScopeAppliesAndRestoresDedicatedThreadsKeepIt) {
  SetCopyPriority(CopyPriority::kBatch);
  int inside = -1, after = -1, dedicated = -1;
  std::thread([&] {
    {
      CopyThreadScope copy;
      inside = sched_getscheduler(0);
    }
    after = sched_getscheduler(0);
  }).join();
  std::thread([&] {
    BecomeCopyThread();
    dedicated = sched_getscheduler(0);
  }).join();
  SetCopyPriority(CopyPriority::kNormal);
  EXPECT_EQ(inside, SCHED_BATCH);
  EXPECT_EQ(after, SCHED_OTHER);
  EXPECT_EQ(dedicated, SCHED_BATCH);

  int normal = -1;
  std::thread([&] {
    CopyThreadScope copy;  // kNormal: nothing changes
    normal = sched_getscheduler(0);
  }).join();
  EXPECT_EQ(normal, SCHED_OTHER);
}

}  // namespace
}  // namespace strata::storage
