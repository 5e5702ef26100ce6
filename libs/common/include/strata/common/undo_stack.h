#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace strata {

// A scope guard for multi-step operations that must leave nothing half-applied: each
// step that changes the world registers how to take itself back; on leaving the scope
// the registered undo steps run in reverse order unless Commit() was called.
//
//   UndoStack undo;
//   STRATA_RETURN_IF_ERROR(CreateA());
//   undo.Push("remove A", [&] { RemoveA(); });
//   STRATA_RETURN_IF_ERROR(CreateB());   // fails: A is removed on return
//   undo.Commit();                        // success: A stays
//
// Undo steps must not throw; they report their own failures (logging), since the error
// that triggered the undo is the one the caller returns. Not thread-safe.
class UndoStack {
 public:
  UndoStack() = default;
  UndoStack(const UndoStack&) = delete;
  UndoStack& operator=(const UndoStack&) = delete;
  ~UndoStack() {
    if (!committed_) Rollback();
  }

  // Registers an undo step. `what` names it (for logs and tests).
  void Push(std::string what, std::function<void()> step) {
    steps_.push_back(Step{std::move(what), std::move(step)});
  }
  // Keeps everything done so far: the registered steps are dropped, never run.
  void Commit() {
    steps_.clear();
    committed_ = true;
  }
  // Runs the registered steps now, newest first, and forgets them; the stack stays
  // usable (and uncommitted).
  void Rollback() {
    while (!steps_.empty()) {
      Step s = std::move(steps_.back());
      steps_.pop_back();
      if (s.run) s.run();
    }
  }
  size_t size() const { return steps_.size(); }
  // The names of the registered steps, oldest first.
  std::vector<std::string> Names() const {
    std::vector<std::string> out;
    for (const auto& s : steps_) out.push_back(s.what);
    return out;
  }

 private:
  struct Step {
    std::string what;
    std::function<void()> run;
  };
  std::vector<Step> steps_;
  bool committed_ = false;
};

}  // namespace strata
