// Helpers shared by the kernel tests.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "core/backend.h"

namespace cosy::testing {

inline std::vector<float> random_vector(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

inline double max_abs_diff(const float* a, const float* b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, static_cast<double>(std::fabs(a[i] - b[i])));
  return m;
}

inline double max_abs(const std::vector<float>& a) {
  double m = 0;
  for (float x : a) m = std::max(m, static_cast<double>(std::fabs(x)));
  return m;
}

// A sequence over dense keys/values.
inline AttentionSeq dense_seq(const std::vector<float>& q, int64_t q_len, int64_t pos0,
                              int64_t kv_len, const std::vector<float>& k,
                              const std::vector<float>& v, float* out) {
  AttentionSeq s;
  s.q = q.data();
  s.q_len = q_len;
  s.q_pos0 = pos0;
  s.kv_len = kv_len;
  s.out = out;
  s.k = k.data();
  s.v = v.data();
  return s;
}

}  // namespace cosy::testing
