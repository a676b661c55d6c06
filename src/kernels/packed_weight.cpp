#include "kernels/packed_weight.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"

namespace cosy::cpu {

namespace {
void free_bytes(std::byte* p) { std::free(p); }

// Round to nearest even, as the hardware's vcvtne2ps2bf16; NaN stays a (quiet) NaN.
uint16_t float_to_bf16(float f) {
  uint32_t u = 0;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
}  // namespace

bool cpu_has_bf16() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") != 0 && __builtin_cpu_supports("avx512bw") != 0 &&
           __builtin_cpu_supports("avx512vl") != 0;
  }();
  return has;
}

bool cpu_has_vnni() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni") != 0 && __builtin_cpu_supports("avx512bw") != 0 &&
           __builtin_cpu_supports("avx512vl") != 0;
  }();
  return has;
}

namespace {
// Stored k rows per panel: the unit the format's dot product consumes.
int64_t rows_per_panel(int64_t k, WeightFormat format) {
  if (format == WeightFormat::BF16) return (k + 1) / 2 * 2;
  if (format == WeightFormat::W8A8) return (k + 3) / 4 * 4;
  return k;
}
}  // namespace

size_t PackedWeight::element_size() const {
  switch (format_) {
    case WeightFormat::F32:
      return 4;
    case WeightFormat::F16:
    case WeightFormat::BF16:
      return 2;
    case WeightFormat::I8:
    case WeightFormat::W8A8:
      return 1;
  }
  return 4;
}

PackedWeight::PackedWeight(int64_t n, int64_t k, WeightFormat format,
                           const std::function<float(int64_t, int64_t)>& get)
    : n_(n),
      k_(k),
      panels_((n + kPanel - 1) / kPanel),
      panel_rows_(rows_per_panel(k, format)),
      format_(format) {
  if (n <= 0 || k <= 0) fail("weight shape must be positive, got [", n, ", ", k, "]");
  if (format == WeightFormat::BF16 && !cpu_has_bf16())
    fail("bf16 weights need a CPU with AVX512_BF16, which this one lacks: use fp32 or fp16");
  if (format == WeightFormat::W8A8 && !cpu_has_vnni())
    fail("w8a8 weights need a CPU with AVX512-VNNI, which this one lacks: use int8");
  const size_t elems = static_cast<size_t>(panels_ * kPanel * panel_rows_);
  bytes_ = elems * element_size();
  void* p = std::aligned_alloc(64, (bytes_ + 63) / 64 * 64);
  if (p == nullptr) throw std::bad_alloc();
  data_ = {static_cast<std::byte*>(p), free_bytes};

  std::vector<float> column_scale(static_cast<size_t>(panels_ * kPanel), 1.0f);
  const bool quantised = format == WeightFormat::I8 || format == WeightFormat::W8A8;
  if (quantised) {
    // Symmetric per-output-channel scale: max |w| maps to 127.
    for (int64_t r = 0; r < n; ++r) {
      float amax = 0;
      for (int64_t c = 0; c < k; ++c) amax = std::max(amax, std::fabs(get(r, c)));
      column_scale[static_cast<size_t>(r)] = amax > 0 ? amax / 127.0f : 1.0f;
    }
    scales_ = std::make_unique<float[]>(column_scale.size());
    std::copy(column_scale.begin(), column_scale.end(), scales_.get());
  }
  const auto quantise = [&](float v, int64_t col) {
    const float q = std::nearbyint(v / column_scale[static_cast<size_t>(col)]);
    return static_cast<int8_t>(std::clamp(q, -127.0f, 127.0f));
  };
  for (int64_t pnl = 0; pnl < panels_; ++pnl) {
    for (int64_t kk = 0; kk < panel_rows_; ++kk) {
      for (int64_t j = 0; j < kPanel; ++j) {
        const int64_t col = pnl * kPanel + j;
        const float v = col < n && kk < k ? get(col, kk) : 0.0f;  // pads K to pairs / quads
        const int64_t row = pnl * panel_rows_ + kk;
        const auto at = static_cast<size_t>(row * kPanel + j);
        switch (format) {
          case WeightFormat::F32:
            reinterpret_cast<float*>(data_.get())[at] = v;
            break;
          case WeightFormat::F16:
            reinterpret_cast<uint16_t*>(data_.get())[at] = float_to_half(v);
            break;
          case WeightFormat::I8:
            reinterpret_cast<int8_t*>(data_.get())[at] = quantise(v, col);
            break;
          case WeightFormat::W8A8: {
            // Rows k..k+3 interleave per column: (k, k+1, k+2, k+3) quads of column j.
            const auto quad_at = static_cast<size_t>((row - kk % 4) * kPanel + j * 4 + kk % 4);
            reinterpret_cast<uint8_t*>(data_.get())[quad_at] =
                static_cast<uint8_t>(quantise(v, col) + 128);
            break;
          }
          case WeightFormat::BF16: {
            // Rows k and k+1 interleave per column: (k, k+1) pairs of column j.
            const auto pair_at = static_cast<size_t>((row - kk % 2) * kPanel + j * 2 + kk % 2);
            reinterpret_cast<uint16_t*>(data_.get())[pair_at] = float_to_bf16(v);
            break;
          }
        }
      }
    }
  }
}

const void* PackedWeight::panel(int64_t p) const {
  return data_.get() + static_cast<size_t>(p * panel_rows_ * kPanel) * element_size();
}

const PackedWeight& as_packed(const PreparedWeight* w) {
  const auto* p = dynamic_cast<const PackedWeight*>(w);
  if (p == nullptr) fail("cpu backend: weight was not prepared by the cpu backend");
  return *p;
}

}  // namespace cosy::cpu
