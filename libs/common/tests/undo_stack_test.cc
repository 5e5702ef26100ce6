#include "strata/common/undo_stack.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace strata {
namespace {

TEST(UndoStackTest, RunsStepsInReverseWhenNotCommitted) {
  std::vector<std::string> ran;
  {
    UndoStack undo;
    undo.Push("a", [&] { ran.push_back("a"); });
    undo.Push("b", [&] { ran.push_back("b"); });
    undo.Push("c", [&] { ran.push_back("c"); });
    EXPECT_EQ(undo.size(), 3u);
    EXPECT_EQ(undo.Names(), (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_TRUE(ran.empty());
  }
  EXPECT_EQ(ran, (std::vector<std::string>{"c", "b", "a"}));
}

TEST(UndoStackTest, CommitKeepsEverything) {
  std::vector<std::string> ran;
  {
    UndoStack undo;
    undo.Push("a", [&] { ran.push_back("a"); });
    undo.Commit();
    EXPECT_EQ(undo.size(), 0u);
  }
  EXPECT_TRUE(ran.empty());
}

TEST(UndoStackTest, EarlyReturnUndoesOnlyWhatWasDone) {
  std::vector<std::string> ran;
  auto operation = [&](int fail_at) -> bool {
    UndoStack undo;
    for (int step = 0; step < 4; ++step) {
      if (step == fail_at) return false;
      undo.Push("step", [&ran, step] { ran.push_back("undo " + std::to_string(step)); });
    }
    undo.Commit();
    return true;
  };
  EXPECT_FALSE(operation(2));
  EXPECT_EQ(ran, (std::vector<std::string>{"undo 1", "undo 0"}));
  ran.clear();
  EXPECT_TRUE(operation(-1));
  EXPECT_TRUE(ran.empty());
}

TEST(UndoStackTest, RollbackRunsNowAndLeavesTheStackUsable) {
  std::vector<std::string> ran;
  {
    UndoStack undo;
    undo.Push("a", [&] { ran.push_back("a"); });
    undo.Rollback();
    EXPECT_EQ(ran, (std::vector<std::string>{"a"}));
    EXPECT_EQ(undo.size(), 0u);
    undo.Push("b", [&] { ran.push_back("b"); });
  }
  EXPECT_EQ(ran, (std::vector<std::string>{"a", "b"}));  // "a" ran once only
}

TEST(UndoStackTest, AStepMayRegisterNothingUseful) {
  UndoStack undo;
  undo.Push("empty", nullptr);  // an empty function is skipped, not called
  undo.Rollback();
  EXPECT_EQ(undo.size(), 0u);
}

}  // namespace
}  // namespace strata
