#include "core/tensor.h"

#include <immintrin.h>

#include <cstdlib>
#include <cstring>
#include <limits>

namespace cosy {

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(s[i]);
  }
  return out + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) fail("negative dimension in shape ", shape_str(s));
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      fail("shape ", shape_str(s), " overflows");
    n *= d;
  }
  return n;
}

Shape contiguous_strides(const Shape& s) {
  Shape strides(s.size(), 1);
  for (size_t i = s.size(); i-- > 1;) {
    // Zero-size dims make any stride valid; still refuse shapes whose strides overflow.
    if (__builtin_mul_overflow(strides[i], std::max<int64_t>(s[i], 1), &strides[i - 1])) {
      fail("shape ", shape_str(s), " overflows");
    }
  }
  return strides;
}

Tensor::Tensor(DType dtype, Shape shape, Shape strides, std::byte* data,
               std::shared_ptr<const void> owner, bool writable)
    : dtype_(dtype),
      shape_(std::move(shape)),
      strides_(std::move(strides)),
      numel_(shape_numel(shape_)),
      data_(data),
      owner_(std::move(owner)),
      writable_(writable) {
  if (strides_.size() != shape_.size()) fail("tensor strides rank does not match shape rank");
}

Tensor Tensor::zeros(DType dtype, Shape shape) {
  const int64_t n = shape_numel(shape);
  const size_t bytes = static_cast<size_t>(n) * dtype_size(dtype);
  const size_t padded = (bytes + 63) / 64 * 64;
  void* mem = std::aligned_alloc(64, padded == 0 ? 64 : padded);
  if (mem == nullptr)
    fail("out of memory allocating ", bytes, " bytes for tensor ", shape_str(shape));
  std::memset(mem, 0, padded == 0 ? 64 : padded);
  std::shared_ptr<const void> owner(mem, [](const void* p) { std::free(const_cast<void*>(p)); });
  Shape strides = contiguous_strides(shape);
  return Tensor(dtype, std::move(shape), std::move(strides), static_cast<std::byte*>(mem),
                std::move(owner), true);
}

bool Tensor::is_contiguous() const { return numel_ <= 1 || strides_ == contiguous_strides(shape_); }

std::byte* Tensor::mutable_raw() {
  if (!writable_) fail("tensor is read-only (it views a mapped file)");
  return data_;
}

std::span<const std::byte> Tensor::bytes() const {
  if (!is_contiguous()) fail("bytes() needs a contiguous tensor");
  return {data_, nbytes()};
}

namespace {

// Calls fn(element_offset) for every element in logical row-major order.
template <typename Fn>
void for_each_offset(const Shape& shape, const Shape& strides, Fn&& fn) {
  const int64_t n = shape_numel(shape);
  if (n == 0) return;
  std::vector<int64_t> index(shape.size(), 0);
  int64_t offset = 0;
  for (int64_t k = 0; k < n; ++k) {
    fn(offset);
    for (size_t d = shape.size(); d-- > 0;) {
      if (++index[d] < shape[d]) {
        offset += strides[d];
        break;
      }
      offset -= strides[d] * (shape[d] - 1);
      index[d] = 0;
    }
  }
}

template <typename Out>
Out element_as(DType t, const std::byte* p) {
  switch (t) {
    case DType::F32: {
      float v;
      std::memcpy(&v, p, 4);
      return static_cast<Out>(v);
    }
    case DType::F64: {
      double v;
      std::memcpy(&v, p, 8);
      return static_cast<Out>(v);
    }
    case DType::F16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return static_cast<Out>(half_to_float(v));
    }
    case DType::BF16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return static_cast<Out>(bf16_to_float(v));
    }
    case DType::I64: {
      int64_t v;
      std::memcpy(&v, p, 8);
      return static_cast<Out>(v);
    }
    case DType::I32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      return static_cast<Out>(v);
    }
    case DType::I16: {
      int16_t v;
      std::memcpy(&v, p, 2);
      return static_cast<Out>(v);
    }
    case DType::I8:
      return static_cast<Out>(static_cast<int8_t>(*p));
    case DType::U8:
    case DType::Bool:
      return static_cast<Out>(static_cast<uint8_t>(*p));
  }
  return Out{};
}

template <typename Out>
std::vector<Out> convert_all(const Tensor& t) {
  std::vector<Out> out;
  out.reserve(static_cast<size_t>(t.numel()));
  const size_t es = dtype_size(t.dtype());
  for_each_offset(t.shape(), t.strides(), [&](int64_t off) {
    out.push_back(element_as<Out>(t.dtype(), t.raw() + off * static_cast<int64_t>(es)));
  });
  return out;
}

}  // namespace

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  Tensor out = zeros(dtype_, shape_);
  const size_t es = dtype_size(dtype_);
  std::byte* dst = out.mutable_raw();
  for_each_offset(shape_, strides_, [&](int64_t off) {
    std::memcpy(dst, data_ + off * static_cast<int64_t>(es), es);
    dst += es;
  });
  return out;
}

std::vector<float> Tensor::to_float_vector() const { return convert_all<float>(*this); }
std::vector<int64_t> Tensor::to_int_vector() const { return convert_all<int64_t>(*this); }

float half_to_float(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400u) == 0) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3ffu;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bf16_to_float(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const int32_t exp = static_cast<int32_t>((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffffu;
  if (((x >> 23) & 0xff) == 0xff)
    return static_cast<uint16_t>(sign | 0x7c00u | (mant ? 0x200u : 0));
  if (exp >= 31) return static_cast<uint16_t>(sign | 0x7c00u);
  if (exp <= 0) {
    if (exp < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000u;
    const uint32_t shift = static_cast<uint32_t>(14 - exp);
    uint32_t half = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = sign | (static_cast<uint32_t>(exp) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1))) ++half;  // round to nearest even
  return static_cast<uint16_t>(half);
}

void floats_to_halves(const float* in, uint16_t* out, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), h);
  }
  for (; i < n; ++i) out[i] = float_to_half(in[i]);
}

std::vector<float> transpose_2d(std::span<const float> v, int64_t rows, int64_t cols) {
  if (rows < 0 || cols < 0 || static_cast<int64_t>(v.size()) != rows * cols) {
    fail("transpose: ", v.size(), " values are not a ", rows, " x ", cols, " matrix");
  }
  std::vector<float> out(v.size());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      out[static_cast<size_t>(c * rows + r)] = v[static_cast<size_t>(r * cols + c)];
    }
  }
  return out;
}

}  // namespace cosy
