// Tensor: a typed, strided view of bytes that some owner keeps alive.
//
// Weights loaded from disk are views into a read-only file mapping (zero copy); the
// owner is the mapping, shared by every tensor cut from it. Tensors made in memory own
// a heap buffer. Copying a Tensor copies the view, never the bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

namespace cosy {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);  // "[2, 64]"
// Element count of a shape; fails on negative dims or overflow of int64.
int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& s);

class Tensor {
 public:
  Tensor() = default;
  // A view of external bytes kept alive by `owner`. Strides are in elements.
  Tensor(DType dtype, Shape shape, Shape strides, std::byte* data,
         std::shared_ptr<const void> owner, bool writable);

  // A new zero-filled contiguous tensor owning its memory (64-byte aligned).
  static Tensor zeros(DType dtype, Shape shape);

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int64_t dim(size_t i) const { return shape_.at(i); }
  size_t rank() const { return shape_.size(); }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }
  bool defined() const { return data_ != nullptr || numel_ == 0; }
  bool is_contiguous() const;
  bool writable() const { return writable_; }

  const std::byte* raw() const { return data_; }
  std::byte* mutable_raw();

  template <typename T>
  const T* data() const {
    return reinterpret_cast<const T*>(data_);
  }
  template <typename T>
  T* mutable_data() {
    return reinterpret_cast<T*>(mutable_raw());
  }
  // Bytes of a contiguous tensor; fails on a strided view.
  std::span<const std::byte> bytes() const;

  // A contiguous copy (or this tensor, when already contiguous).
  Tensor contiguous() const;
  // Values converted to float (f32/f64/f16/bf16/ints), in logical (row-major) order.
  std::vector<float> to_float_vector() const;
  std::vector<int64_t> to_int_vector() const;

  // Identity of the memory owner; tensors sharing a storage compare equal.
  const void* owner_id() const { return owner_.get(); }

 private:
  DType dtype_ = DType::F32;
  Shape shape_;
  Shape strides_;
  int64_t numel_ = 0;
  std::byte* data_ = nullptr;
  std::shared_ptr<const void> owner_;
  bool writable_ = false;
};

// A row-major [rows, cols] matrix transposed to [cols, rows]: the official code's
// channels-first (C, T) layouts become our channels-last [T, C].
std::vector<float> transpose_2d(std::span<const float> v, int64_t rows, int64_t cols);

// Converts one IEEE half / bfloat16 value to float.
float half_to_float(uint16_t h);
float bf16_to_float(uint16_t b);
uint16_t float_to_half(float f);
// float_to_half over n values (F16C, 8 at a time): for bulk data such as cached keys.
void floats_to_halves(const float* in, uint16_t* out, size_t n);

}  // namespace cosy
