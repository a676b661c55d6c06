// AVX2 float32 exp, sin, tanh and erf, accurate to a few ulp over the ranges activations
// see (sin: |x| < 8192), so fused activations track torch's to ~1e-7.
#pragma once

#include <immintrin.h>

namespace cosy::cpu {

// The four lanes' total, in a fixed order (pairs first).
inline double hsum256d(__m256d v) {
  alignas(32) double t[4];
  _mm256_store_pd(t, v);
  return (t[0] + t[1]) + (t[2] + t[3]);
}

inline __m256 exp256(__m256 x) {
  // Cephes expf: exp(x) = 2^n * exp(r), r = x - n ln2 in two parts.
  x = _mm256_min_ps(x, _mm256_set1_ps(88.3762626647949f));
  x = _mm256_max_ps(x, _mm256_set1_ps(-88.3762626647949f));
  __m256 fx = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f));
  fx = _mm256_floor_ps(fx);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  const __m256 z = _mm256_mul_ps(x, x);
  __m256 y = _mm256_set1_ps(1.9875691500E-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507E-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073E-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894E-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459E-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201E-1f));
  y = _mm256_fmadd_ps(y, z, x);
  y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
  __m256i n = _mm256_cvttps_epi32(fx);
  n = _mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(0x7f)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(n));
}

inline __m256 sin256(__m256 x) {
  // Cephes sinf: reduce by pi/4 octants with a three-part pi/4.
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  __m256 sign = _mm256_and_ps(x, sign_mask);
  x = _mm256_andnot_ps(sign_mask, x);
  __m256 y = _mm256_mul_ps(x, _mm256_set1_ps(1.27323954473516f));
  __m256i j = _mm256_cvttps_epi32(y);
  j = _mm256_add_epi32(j, _mm256_set1_epi32(1));
  j = _mm256_and_si256(j, _mm256_set1_epi32(~1));
  y = _mm256_cvtepi32_ps(j);
  const __m256i swap_sign = _mm256_slli_epi32(_mm256_and_si256(j, _mm256_set1_epi32(4)), 29);
  sign = _mm256_xor_ps(sign, _mm256_castsi256_ps(swap_sign));
  const __m256 use_cos = _mm256_castsi256_ps(
      _mm256_cmpeq_epi32(_mm256_and_si256(j, _mm256_set1_epi32(2)), _mm256_set1_epi32(2)));
  x = _mm256_fnmadd_ps(y, _mm256_set1_ps(0.78515625f), x);
  x = _mm256_fnmadd_ps(y, _mm256_set1_ps(2.4187564849853515625e-4f), x);
  x = _mm256_fnmadd_ps(y, _mm256_set1_ps(3.77489497744594108e-8f), x);
  const __m256 z = _mm256_mul_ps(x, x);
  __m256 c = _mm256_set1_ps(2.443315711809948E-005f);
  c = _mm256_fmadd_ps(c, z, _mm256_set1_ps(-1.388731625493765E-003f));
  c = _mm256_fmadd_ps(c, z, _mm256_set1_ps(4.166664568298827E-002f));
  c = _mm256_mul_ps(_mm256_mul_ps(c, z), z);
  c = _mm256_fnmadd_ps(z, _mm256_set1_ps(0.5f), c);
  c = _mm256_add_ps(c, _mm256_set1_ps(1.0f));
  __m256 s = _mm256_set1_ps(-1.9515295891E-4f);
  s = _mm256_fmadd_ps(s, z, _mm256_set1_ps(8.3321608736E-3f));
  s = _mm256_fmadd_ps(s, z, _mm256_set1_ps(-1.6666654611E-1f));
  s = _mm256_mul_ps(s, _mm256_mul_ps(z, x));
  s = _mm256_add_ps(s, x);
  const __m256 r = _mm256_blendv_ps(s, c, use_cos);
  return _mm256_xor_ps(r, sign);
}

inline __m256 tanh256(__m256 x) {
  // tanh|x| = 1 - 2 / (exp(2|x|) + 1); odd symmetry restores the sign.
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  const __m256 sign = _mm256_and_ps(x, sign_mask);
  const __m256 ax = _mm256_andnot_ps(sign_mask, x);
  const __m256 e = exp256(_mm256_add_ps(ax, ax));
  const __m256 t =
      _mm256_sub_ps(_mm256_set1_ps(1.0f),
                    _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
  return _mm256_or_ps(t, sign);
}

inline __m256 erf256(__m256 x) {
  // Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7).
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  const __m256 sign = _mm256_and_ps(x, sign_mask);
  const __m256 ax = _mm256_andnot_ps(sign_mask, x);
  const __m256 t = _mm256_div_ps(
      _mm256_set1_ps(1.0f), _mm256_fmadd_ps(ax, _mm256_set1_ps(0.3275911f), _mm256_set1_ps(1.0f)));
  __m256 p = _mm256_set1_ps(1.061405429f);
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
  p = _mm256_mul_ps(p, t);
  const __m256 e = exp256(_mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), ax), ax));
  const __m256 r = _mm256_fnmadd_ps(p, e, _mm256_set1_ps(1.0f));
  return _mm256_or_ps(r, sign);
}

}  // namespace cosy::cpu
