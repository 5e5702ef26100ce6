#pragma once

#include <array>
#include <cstddef>
#include <mutex>
#include <vector>

namespace strata::nbd {

// Page-aligned I/O buffers (so a Volume may use O_DIRECT on them), recycled across
// requests: a 1 MiB buffer fresh from the allocator costs 256 page faults, more than
// copying it. Capacities are powers of two from 4 KiB; idle buffers are cached up to
// a byte budget, the rest freed.
//
// Thread-safe (one mutex, held only to push or pop a pointer).
class BufferPool {
 public:
  // A buffer on loan; returns itself to the pool when destroyed.
  class Handle {
   public:
    Handle() = default;
    Handle(Handle&& other) noexcept { *this = std::move(other); }
    Handle& operator=(Handle&& other) noexcept;
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    ~Handle() { Release(); }

    char* data() const { return data_; }
    size_t capacity() const { return capacity_; }
    void Release();

   private:
    friend class BufferPool;
    BufferPool* pool_ = nullptr;
    char* data_ = nullptr;
    size_t capacity_ = 0;
  };

  explicit BufferPool(size_t cache_budget_bytes);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A buffer of at least `size` bytes; an empty Handle (data() null) for size 0 or
  // when memory is exhausted.
  Handle Get(size_t size);

  size_t cached_bytes() const;

 private:
  static constexpr size_t kMinShift = 12;  // 4 KiB
  static constexpr int kClasses = 14;      // up to 32 MiB
  void Put(char* data, size_t capacity);

  const size_t budget_;
  mutable std::mutex mu_;
  std::array<std::vector<char*>, kClasses> free_;  // guarded by mu_
  size_t cached_ = 0;                              // guarded by mu_
};

}  // namespace strata::nbd
