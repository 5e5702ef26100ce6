#include "copy_buffers.h"

#include <cstdlib>
#include <mutex>
#include <vector>

namespace strata::storage {
namespace {

class BufferPool {
 public:
  static BufferPool& Get() {
    static BufferPool* pool = new BufferPool();  // never destroyed: buffers may outlive main
    return *pool;
  }

  char* Take() {
    {
      std::lock_guard lock(mu_);
      if (!free_.empty()) {
        char* b = free_.back();
        free_.pop_back();
        return b;
      }
    }
    return static_cast<char*>(std::malloc(kCopyBufferBytes));
  }

  void Give(char* b) {
    {
      std::lock_guard lock(mu_);
      if (free_.size() < kPoolBuffers) {
        free_.push_back(b);
        return;
      }
    }
    std::free(b);
  }

 private:
  static constexpr size_t kPoolBuffers = 32;
  std::mutex mu_;
  std::vector<char*> free_;  // guarded by mu_
};

}  // namespace

std::shared_ptr<char[]> SharedCopyBuffer(size_t bytes) {
  if (bytes != kCopyBufferBytes) return std::shared_ptr<char[]>(new char[bytes]);
  return std::shared_ptr<char[]>(BufferPool::Get().Take(),
                                 [](char* b) { BufferPool::Get().Give(b); });
}

}  // namespace strata::storage
