// Scratch objects (activation buffers) reused from call to call by whichever thread calls:
// a call leases one, or makes one when all are out, and gives it back when done. Concurrent
// calls never share one, memory stays bounded by the peak concurrency, and the pool belongs
// to the model, so its backend memory is freed before the backend goes.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

namespace cosy {

template <typename T>
class ScratchPool {
 public:
  class Lease {
   public:
    Lease(ScratchPool& pool, std::unique_ptr<T> item) : pool_(pool), item_(std::move(item)) {}
    ~Lease() { pool_.give_back(std::move(item_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    T& operator*() { return *item_; }
    T* operator->() { return item_.get(); }

   private:
    ScratchPool& pool_;
    std::unique_ptr<T> item_;
  };

  Lease take() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (free_.empty()) return {*this, std::make_unique<T>()};
    auto item = std::move(free_.back());
    free_.pop_back();
    return {*this, std::move(item)};
  }

 private:
  void give_back(std::unique_ptr<T> item) {
    std::lock_guard<std::mutex> lock(mutex_);
    free_.push_back(std::move(item));
  }
  std::mutex mutex_;
  std::vector<std::unique_ptr<T>> free_;
};

}  // namespace cosy
