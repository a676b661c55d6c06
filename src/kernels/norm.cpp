#include "kernels/norm.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/vec_math.h"

namespace cosy::cpu {

namespace {
// Sum of squares / sum accumulated in double: rows are short and this keeps the result
// independent of vector width.
double sum_sq(const float* x, int64_t n, double mean) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = x[i] - mean;
    s += d * d;
  }
  return s;
}
}  // namespace

void rms_norm(ThreadPool& pool, const float* x, float* y, int64_t rows, int64_t dim,
              const float* weight, float eps) {
  pool.parallel_range(rows, 8, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x + r * dim;
      float* yr = y + r * dim;
      const auto var = static_cast<float>(sum_sq(xr, dim, 0.0) / static_cast<double>(dim));
      const float inv = 1.0f / std::sqrt(var + eps);
      for (int64_t i = 0; i < dim; ++i) yr[i] = weight[i] * (xr[i] * inv);
    }
  });
}

void layer_norm(ThreadPool& pool, const float* x, float* y, int64_t rows, int64_t dim,
                const float* weight, const float* bias, float eps) {
  pool.parallel_range(rows, 8, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x + r * dim;
      float* yr = y + r * dim;
      double mean = 0;
      for (int64_t i = 0; i < dim; ++i) mean += xr[i];
      mean /= static_cast<double>(dim);
      const double var = sum_sq(xr, dim, mean) / static_cast<double>(dim);
      const auto inv = static_cast<float>(1.0 / std::sqrt(var + eps));
      const auto m = static_cast<float>(mean);
      for (int64_t i = 0; i < dim; ++i) {
        const float v = (xr[i] - m) * inv;
        yr[i] = weight != nullptr ? v * weight[i] + (bias != nullptr ? bias[i] : 0.0f) : v;
      }
    }
  });
}

void softmax(ThreadPool& pool, float* x, int64_t rows, int64_t n, bool log) {
  pool.parallel_range(rows, 4, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      float* xr = x + r * n;
      float mx = -std::numeric_limits<float>::infinity();
      for (int64_t i = 0; i < n; ++i) mx = std::max(mx, xr[i]);
      if (mx == -std::numeric_limits<float>::infinity()) mx = 0;  // fully masked row
      double sum = 0;
      for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(xr[i] - mx));
      if (log) {
        const auto lse = static_cast<float>(std::log(sum));
        for (int64_t i = 0; i < n; ++i) xr[i] = xr[i] - mx - lse;
      } else {
        const auto inv = static_cast<float>(1.0 / sum);
        for (int64_t i = 0; i < n; ++i) xr[i] = std::exp(xr[i] - mx) * inv;
      }
    }
  });
}

void rope(ThreadPool& pool, float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t ld,
          const int32_t* positions, float theta) {
  const int64_t half = head_dim / 2;
  std::vector<float> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    const float e = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    inv_freq[static_cast<size_t>(i)] = 1.0f / std::pow(theta, e);
  }
  pool.parallel_range(rows, 4, [&](int64_t b, int64_t e) {
    std::vector<float> cs(static_cast<size_t>(half)), sn(static_cast<size_t>(half));
    for (int64_t r = b; r < e; ++r) {
      const auto pos = static_cast<float>(positions[r]);
      for (int64_t i = 0; i < half; ++i) {
        const float angle = pos * inv_freq[static_cast<size_t>(i)];
        cs[static_cast<size_t>(i)] = std::cos(angle);
        sn[static_cast<size_t>(i)] = std::sin(angle);
      }
      for (int64_t h = 0; h < heads; ++h) {
        float* v = x + r * ld + h * head_dim;
        for (int64_t i = 0; i < half; ++i) {
          const float a = v[i], c = v[i + half];
          v[i] = a * cs[static_cast<size_t>(i)] - c * sn[static_cast<size_t>(i)];
          v[i + half] = c * cs[static_cast<size_t>(i)] + a * sn[static_cast<size_t>(i)];
        }
      }
    }
  });
}

}  // namespace cosy::cpu
