#include "kernels/packed_weight.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <new>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"

namespace cosy::cpu {

namespace {
void free_bytes(std::byte* p) { std::free(p); }
}  // namespace

size_t PackedWeight::element_size() const {
  switch (format_) {
    case WeightFormat::F32:
      return 4;
    case WeightFormat::F16:
      return 2;
    case WeightFormat::I8:
      return 1;
  }
  return 4;
}

PackedWeight::PackedWeight(int64_t n, int64_t k, WeightFormat format,
                           const std::function<float(int64_t, int64_t)>& get)
    : n_(n), k_(k), panels_((n + kPanel - 1) / kPanel), format_(format) {
  if (n <= 0 || k <= 0) fail("weight shape must be positive, got [", n, ", ", k, "]");
  const size_t elems = static_cast<size_t>(panels_ * kPanel * k);
  bytes_ = elems * element_size();
  void* p = std::aligned_alloc(64, (bytes_ + 63) / 64 * 64);
  if (p == nullptr) throw std::bad_alloc();
  data_ = {static_cast<std::byte*>(p), free_bytes};

  std::vector<float> column_scale(static_cast<size_t>(panels_ * kPanel), 1.0f);
  if (format == WeightFormat::I8) {
    // Symmetric per-output-channel scale: max |w| maps to 127.
    for (int64_t r = 0; r < n; ++r) {
      float amax = 0;
      for (int64_t c = 0; c < k; ++c) amax = std::max(amax, std::fabs(get(r, c)));
      column_scale[static_cast<size_t>(r)] = amax > 0 ? amax / 127.0f : 1.0f;
    }
    scales_ = std::make_unique<float[]>(column_scale.size());
    std::copy(column_scale.begin(), column_scale.end(), scales_.get());
  }
  for (int64_t pnl = 0; pnl < panels_; ++pnl) {
    for (int64_t kk = 0; kk < k; ++kk) {
      for (int64_t j = 0; j < kPanel; ++j) {
        const int64_t col = pnl * kPanel + j;
        const float v = col < n ? get(col, kk) : 0.0f;
        const size_t at = static_cast<size_t>((pnl * k + kk) * kPanel + j);
        switch (format) {
          case WeightFormat::F32:
            reinterpret_cast<float*>(data_.get())[at] = v;
            break;
          case WeightFormat::F16:
            reinterpret_cast<uint16_t*>(data_.get())[at] = float_to_half(v);
            break;
          case WeightFormat::I8: {
            const float q = std::nearbyint(v / column_scale[static_cast<size_t>(col)]);
            reinterpret_cast<int8_t*>(data_.get())[at] =
                static_cast<int8_t>(std::clamp(q, -127.0f, 127.0f));
            break;
          }
        }
      }
    }
  }
}

const void* PackedWeight::panel(int64_t p) const {
  return data_.get() + static_cast<size_t>(p * k_ * kPanel) * element_size();
}

const PackedWeight& as_packed(const PreparedWeight* w) {
  const auto* p = dynamic_cast<const PackedWeight*>(w);
  if (p == nullptr) fail("cpu backend: weight was not prepared by the cpu backend");
  return *p;
}

}  // namespace cosy::cpu
