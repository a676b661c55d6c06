// Arrays in a backend's memory, the only memory the primitives touch. Model code holds its
// activations, scratch and per-stream caches in DeviceArrays and its weight vectors and
// tables in ConstArrays, and moves data in or out through Backend::copy, so the same model
// code runs on a backend whose memory the host cannot read.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

#include "core/backend.h"

namespace cosy {

// A growable, owned array of T in backend memory. Move-only: a copy is a device copy and
// has to be queued on a stream (copy_from).
template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  DeviceArray(Backend& b, size_t n) { resize(b, n); }
  ~DeviceArray() { release(); }
  DeviceArray(DeviceArray&& o) noexcept { take(o); }
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    if (this != &o) {
      release();
      take(o);
    }
    return *this;
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  // n elements. The contents are not kept when the array grows; the capacity only grows, so
  // a buffer reused from step to step stops allocating once it has seen the largest step.
  void resize(Backend& b, size_t n) {
    if (backend_ != &b || n > capacity_) {
      release();
      if (n > 0) {
        data_ = static_cast<T*>(b.allocate(n * sizeof(T), MemoryKind::Device));
        capacity_ = n;
      }
      backend_ = &b;
    }
    size_ = n;
  }
  // n elements, the first min(size, n) kept (copied on `s` when the array grows, to at least
  // twice its capacity, so appends cost amortised O(1)).
  void resize_keep(Backend& b, Stream& s, size_t n) {
    if (backend_ == &b && n <= capacity_) {
      size_ = n;
      return;
    }
    DeviceArray grown;
    grown.resize(b, std::max(n, 2 * capacity_));
    if (size_ > 0) b.copy(s, grown.data_, data_, std::min(size_, n) * sizeof(T));
    grown.size_ = n;
    *this = std::move(grown);
  }
  // This array becomes a copy of `n` elements at `src` (backend memory).
  void assign(Backend& b, Stream& s, const T* src, size_t n) {
    resize(b, n);
    if (n > 0) b.copy(s, data_, src, n * sizeof(T));
  }
  void clear() { size_ = 0; }  // keeps the memory
  void release() {
    if (data_ != nullptr) backend_->deallocate(data_, MemoryKind::Device);
    data_ = nullptr;
    size_ = capacity_ = 0;
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t capacity() const { return capacity_; }
  size_t bytes() const { return capacity_ * sizeof(T); }  // memory held

 private:
  void take(DeviceArray& o) {
    backend_ = std::exchange(o.backend_, nullptr);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    capacity_ = std::exchange(o.capacity_, 0);
  }
  Backend* backend_ = nullptr;
  T* data_ = nullptr;
  size_t size_ = 0, capacity_ = 0;
};

// Read-only data in backend memory, shared by every stream: weight vectors (biases, norms,
// Snake alphas) and embedding tables. Copying one copies a reference.
template <typename T>
class ConstArray {
 public:
  ConstArray() = default;
  // Uploads `host` (kept alive as long as the backend needs it).
  static ConstArray upload(Backend& b, std::vector<T> host) {
    auto owned = std::make_shared<const std::vector<T>>(std::move(host));
    const T* p = owned->data();
    const size_t n = owned->size();
    return view(b, p, n, std::move(owned));
  }
  // Uploads n values at `host`, which `owner` keeps alive (e.g. a checkpoint mapping).
  static ConstArray view(Backend& b, const T* host, size_t n, std::shared_ptr<const void> owner) {
    ConstArray a;
    a.n_ = n;
    if (n > 0) a.mem_ = b.upload_constant(host, n * sizeof(T), std::move(owner));
    return a;
  }
  const T* data() const { return static_cast<const T*>(mem_.get()); }  // null when empty
  size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }

 private:
  std::shared_ptr<const void> mem_;
  size_t n_ = 0;
};

}  // namespace cosy
