#include "kernels/activation.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/vec_math.h"

namespace cosy::cpu {

namespace {

inline float scalar(const Activation& a, float x, int64_t c) {
  switch (a.kind) {
    case ActivationKind::None:
      return x;
    case ActivationKind::LeakyRelu:
      return x >= 0 ? x : x * a.slope;
    case ActivationKind::Elu:
      return x > 0 ? x : std::expm1(x);
    case ActivationKind::Snake: {
      const float al = a.alpha[c];
      const float s = std::sin(x * al);
      return x + (1.0f / (al + 1e-9f)) * (s * s);
    }
    case ActivationKind::Silu:
      return x / (1.0f + std::exp(-x));
    case ActivationKind::GeluTanh: {
      const float k = 0.7978845608028654f;
      return 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x)));
    }
    case ActivationKind::GeluErf:
      return 0.5f * x * (1.0f + std::erf(x * 0.7071067811865476f));
    case ActivationKind::Tanh:
      return std::tanh(x);
    case ActivationKind::Mish: {
      // tanh(softplus(x)) = n / (n + 2) with n = e^x (e^x + 2); exact past 20 as torch's
      // softplus threshold makes it.
      if (x > 20.0f) return x;
      const float e = std::exp(x);
      const float n = e * (e + 2.0f);
      return x * (n / (n + 2.0f));
    }
    case ActivationKind::Abs:
      return std::fabs(x);
    case ActivationKind::Clamp:
      return std::clamp(x, -a.bound, a.bound);
  }
  return x;
}

inline __m256 vec(const Activation& a, __m256 x, int64_t c) {
  const __m256 one = _mm256_set1_ps(1.0f), half = _mm256_set1_ps(0.5f);
  switch (a.kind) {
    case ActivationKind::None:
      return x;
    case ActivationKind::LeakyRelu: {
      const __m256 neg = _mm256_mul_ps(x, _mm256_set1_ps(a.slope));
      return _mm256_blendv_ps(x, neg, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
    }
    case ActivationKind::Elu: {
      const __m256 neg = _mm256_sub_ps(exp256(x), one);
      return _mm256_blendv_ps(x, neg, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LE_OQ));
    }
    case ActivationKind::Snake: {
      const __m256 al = _mm256_loadu_ps(a.alpha + c);
      const __m256 s = sin256(_mm256_mul_ps(x, al));
      const __m256 inv = _mm256_div_ps(one, _mm256_add_ps(al, _mm256_set1_ps(1e-9f)));
      return _mm256_fmadd_ps(inv, _mm256_mul_ps(s, s), x);
    }
    case ActivationKind::Silu:
      return _mm256_div_ps(x, _mm256_add_ps(one, exp256(_mm256_sub_ps(_mm256_setzero_ps(), x))));
    case ActivationKind::GeluTanh: {
      const __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
      const __m256 inner = _mm256_mul_ps(_mm256_set1_ps(0.7978845608028654f),
                                         _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), x3, x));
      return _mm256_mul_ps(_mm256_mul_ps(half, x), _mm256_add_ps(one, tanh256(inner)));
    }
    case ActivationKind::GeluErf: {
      const __m256 e = erf256(_mm256_mul_ps(x, _mm256_set1_ps(0.7071067811865476f)));
      return _mm256_mul_ps(_mm256_mul_ps(half, x), _mm256_add_ps(one, e));
    }
    case ActivationKind::Tanh:
      return tanh256(x);
    case ActivationKind::Mish: {
      const __m256 e = exp256(_mm256_min_ps(x, _mm256_set1_ps(20.0f)));
      const __m256 n = _mm256_mul_ps(e, _mm256_add_ps(e, _mm256_set1_ps(2.0f)));
      const __m256 m = _mm256_mul_ps(x, _mm256_div_ps(n, _mm256_add_ps(n, _mm256_set1_ps(2.0f))));
      return _mm256_blendv_ps(m, x, _mm256_cmp_ps(x, _mm256_set1_ps(20.0f), _CMP_GT_OQ));
    }
    case ActivationKind::Abs:
      return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    case ActivationKind::Clamp:
      return _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-a.bound)), _mm256_set1_ps(a.bound));
  }
  return x;
}

}  // namespace

void activate_row(const Activation& act, const float* src, float* dst, int64_t n, int64_t c0) {
  if (act.kind == ActivationKind::None) {
    if (dst != src) std::memmove(dst, src, static_cast<size_t>(n) * sizeof(float));
    return;
  }
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, vec(act, _mm256_loadu_ps(src + i), c0 + i));
  for (; i < n; ++i) dst[i] = scalar(act, src[i], c0 + i);
}

void gated_row(const Activation& act, const float* gate, const float* up, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 g = vec(act, _mm256_loadu_ps(gate + i), i);
    _mm256_storeu_ps(dst + i, _mm256_mul_ps(g, _mm256_loadu_ps(up + i)));
  }
  for (; i < n; ++i) dst[i] = scalar(act, gate[i], i) * up[i];
}

}  // namespace cosy::cpu
