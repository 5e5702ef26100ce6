#pragma once

#include <functional>
#include <utility>
#include <vector>

namespace strata::cni {

// Undo steps for a multi-step change: each Push() registers how to undo the step just done; on
// destruction, unless Dismiss()ed, they run newest first. A failed ADD thus leaves nothing behind.
// Undo steps must not throw; their own errors are ignored (the original error is what matters).
class UndoStack {
 public:
  UndoStack() = default;
  UndoStack(const UndoStack&) = delete;
  UndoStack& operator=(const UndoStack&) = delete;
  ~UndoStack() {
    if (dismissed_) return;
    for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) (*it)();
  }
  void Push(std::function<void()> undo) { steps_.push_back(std::move(undo)); }
  void Dismiss() { dismissed_ = true; }

 private:
  std::vector<std::function<void()>> steps_;
  bool dismissed_ = false;
};

}  // namespace strata::cni
