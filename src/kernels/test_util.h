// Helpers shared by the kernel tests.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "core/backend.h"
#include "kernels/gemm.h"

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

// Every value rounded to the nearest bfloat16 (ties to even), as the bf16 GEMM rounds its
// operands: float32 arithmetic on these is what WeightFormat::BF16 must reproduce.
inline std::vector<float> rounded_to_bf16(std::vector<float> v) {
  for (float& x : v) {
    uint32_t u = 0;
    std::memcpy(&u, &x, sizeof u);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    std::memcpy(&x, &u, sizeof u);
  }
  return v;
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

// Puts AMX back as the test found it (tests run the AVX-512 kernels beside the tiles).
class AmxRestore {
 public:
  AmxRestore() = default;
  AmxRestore(const AmxRestore&) = delete;
  AmxRestore& operator=(const AmxRestore&) = delete;
  ~AmxRestore() { cpu::set_amx(was_on_); }

 private:
  bool was_on_ = cpu::bf16_uses_amx() || cpu::w8a8_uses_amx();
};

}  // namespace cosy::testing
