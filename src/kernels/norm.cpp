#include "kernels/norm.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/vec_math.h"

namespace cosy::cpu {

namespace {
// Sums of a row and of its squared deviations, accumulated in double (rows are hundreds
// long; a float sum would drift from torch's), over four 4-lane chains so the adds are not
// one serial chain of double-add latencies (that took 2k cycles per 256-wide row).
inline __m256d widen(const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }

inline double lanes_total(__m256d a, __m256d b, __m256d c, __m256d d) {
  return hsum256d(_mm256_add_pd(_mm256_add_pd(a, b), _mm256_add_pd(c, d)));
}

double sum(const float* x, int64_t n) {
  __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_add_pd(s0, widen(x + i));
    s1 = _mm256_add_pd(s1, widen(x + i + 4));
    s2 = _mm256_add_pd(s2, widen(x + i + 8));
    s3 = _mm256_add_pd(s3, widen(x + i + 12));
  }
  double s = lanes_total(s0, s1, s2, s3);
  for (; i < n; ++i) s += x[i];
  return s;
}

double sum_sq(const float* x, int64_t n, double mean) {
  const __m256d m = _mm256_set1_pd(mean);
  __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256d d0 = _mm256_sub_pd(widen(x + i), m), d1 = _mm256_sub_pd(widen(x + i + 4), m);
    const __m256d d2 = _mm256_sub_pd(widen(x + i + 8), m);
    const __m256d d3 = _mm256_sub_pd(widen(x + i + 12), m);
    s0 = _mm256_fmadd_pd(d0, d0, s0);
    s1 = _mm256_fmadd_pd(d1, d1, s1);
    s2 = _mm256_fmadd_pd(d2, d2, s2);
    s3 = _mm256_fmadd_pd(d3, d3, s3);
  }
  double s = lanes_total(s0, s1, s2, s3);
  for (; i < n; ++i) {
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
      const double mean = sum(xr, dim) / static_cast<double>(dim);
      const double var = sum_sq(xr, dim, mean) / static_cast<double>(dim);
      const auto inv = static_cast<float>(1.0 / std::sqrt(var + eps));
      const auto m = static_cast<float>(mean);
      // One loop per case, each a plain vectorisable expression.
      if (weight == nullptr) {
        for (int64_t i = 0; i < dim; ++i) yr[i] = (xr[i] - m) * inv;
      } else if (bias == nullptr) {
        for (int64_t i = 0; i < dim; ++i) yr[i] = (xr[i] - m) * inv * weight[i];
      } else {
        for (int64_t i = 0; i < dim; ++i) yr[i] = (xr[i] - m) * inv * weight[i] + bias[i];
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
          const int32_t* positions, float theta, RopePairs pairs) {
  // Channel offsets of pair i's two members.
  const bool adjacent = pairs == RopePairs::Adjacent;
  const int64_t stride = adjacent ? 2 : 1, partner = adjacent ? 1 : head_dim / 2;
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
          float* p = v + i * stride;
          const float a = p[0], c = p[partner];
          p[0] = a * cs[static_cast<size_t>(i)] - c * sn[static_cast<size_t>(i)];
          p[partner] = c * cs[static_cast<size_t>(i)] + a * sn[static_cast<size_t>(i)];
        }
      }
    }
  });
}

}  // namespace cosy::cpu
