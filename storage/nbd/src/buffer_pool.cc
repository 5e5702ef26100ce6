#include "buffer_pool.h"

#include <bit>
#include <cstdlib>

namespace strata::nbd {

namespace {
constexpr size_t kAlignment = 4096;
}

BufferPool::Handle& BufferPool::Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    Release();
    pool_ = other.pool_;
    data_ = other.data_;
    capacity_ = other.capacity_;
    other.pool_ = nullptr;
    other.data_ = nullptr;
    other.capacity_ = 0;
  }
  return *this;
}

void BufferPool::Handle::Release() {
  if (data_ != nullptr) pool_->Put(data_, capacity_);
  pool_ = nullptr;
  data_ = nullptr;
  capacity_ = 0;
}

BufferPool::BufferPool(size_t cache_budget_bytes) : budget_(cache_budget_bytes) {}

BufferPool::~BufferPool() {
  for (auto& list : free_) {
    for (char* p : list) std::free(p);
  }
}

BufferPool::Handle BufferPool::Get(size_t size) {
  Handle h;
  if (size == 0) return h;
  size_t capacity = std::bit_ceil(size < kAlignment ? kAlignment : size);
  int cls = std::countr_zero(capacity) - static_cast<int>(kMinShift);
  char* data = nullptr;
  if (cls < kClasses) {
    std::lock_guard lock(mu_);
    auto& list = free_[cls];
    if (!list.empty()) {
      data = list.back();
      list.pop_back();
      cached_ -= capacity;
    }
  }
  if (data == nullptr) {
    data = static_cast<char*>(std::aligned_alloc(kAlignment, capacity));
    if (data == nullptr) return h;
  }
  h.pool_ = this;
  h.data_ = data;
  h.capacity_ = capacity;
  return h;
}

void BufferPool::Put(char* data, size_t capacity) {
  int cls = std::countr_zero(capacity) - static_cast<int>(kMinShift);
  if (cls < kClasses) {
    std::lock_guard lock(mu_);
    if (cached_ + capacity <= budget_) {
      free_[cls].push_back(data);
      cached_ += capacity;
      return;
    }
  }
  std::free(data);
}

size_t BufferPool::cached_bytes() const {
  std::lock_guard lock(mu_);
  return cached_;
}

}  // namespace strata::nbd
