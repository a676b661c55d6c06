#include "kernels/reference.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

namespace cosy::ref {

std::vector<float> linear(const std::vector<float>& x, int64_t m, int64_t k,
                          const std::vector<float>& w, int64_t n, const float* bias) {
  std::vector<float> y(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = bias != nullptr ? bias[j] : 0.0;
      for (int64_t c = 0; c < k; ++c)
        s += static_cast<double>(x[static_cast<size_t>(i * k + c)]) *
             w[static_cast<size_t>(j * k + c)];
      y[static_cast<size_t>(i * n + j)] = static_cast<float>(s);
    }
  }
  return y;
}

float activation(const Activation& act, float xf, int64_t c) {
  const double x = xf;
  switch (act.kind) {
    case ActivationKind::None:
      return xf;
    case ActivationKind::LeakyRelu:
      return static_cast<float>(x >= 0 ? x : x * act.slope);
    case ActivationKind::Elu:
      return static_cast<float>(x > 0 ? x : std::expm1(x));
    case ActivationKind::Snake: {
      const double al = act.alpha[c];
      const double s = std::sin(x * al);
      return static_cast<float>(x + 1.0 / (al + 1e-9) * s * s);
    }
    case ActivationKind::Silu:
      return static_cast<float>(x / (1 + std::exp(-x)));
    case ActivationKind::GeluTanh:
      return static_cast<float>(
          0.5 * x * (1 + std::tanh(std::sqrt(2 / std::numbers::pi) * (x + 0.044715 * x * x * x))));
    case ActivationKind::GeluErf:
      return static_cast<float>(0.5 * x * (1 + std::erf(x / std::numbers::sqrt2)));
    case ActivationKind::Tanh:
      return static_cast<float>(std::tanh(x));
    case ActivationKind::Mish:
      return static_cast<float>(x * std::tanh(x > 20 ? x : std::log1p(std::exp(x))));
    case ActivationKind::Abs:
      return std::fabs(xf);
    case ActivationKind::Clamp:
      return xf < -act.bound ? -act.bound : (xf > act.bound ? act.bound : xf);
  }
  return xf;
}

std::vector<float> conv1d(const std::vector<float>& x, int64_t t_in, const std::vector<float>& w,
                          const float* bias, const Conv1dArgs& a) {
  const int64_t t_out = a.out_length(t_in);
  const int64_t ipg = a.in_channels / a.groups, opg = a.out_channels / a.groups;
  std::vector<float> y(static_cast<size_t>(std::max<int64_t>(t_out, 0) * a.out_channels));
  for (int64_t t = 0; t < t_out; ++t) {
    for (int64_t o = 0; o < a.out_channels; ++o) {
      const int64_t g = o / opg;
      double s = bias != nullptr ? bias[o] : 0.0;
      for (int64_t c = 0; c < ipg; ++c) {
        for (int64_t kk = 0; kk < a.kernel; ++kk) {
          const int64_t ti = t * a.stride + kk * a.dilation - a.pad_left;
          if (ti < 0 || ti >= t_in) continue;
          const int64_t ci = g * ipg + c;
          s += static_cast<double>(
                   activation(a.pre, x[static_cast<size_t>(ti * a.in_channels + ci)], ci)) *
               w[static_cast<size_t>((o * ipg + c) * a.kernel + kk)];
        }
      }
      y[static_cast<size_t>(t * a.out_channels + o)] = static_cast<float>(s);
    }
  }
  return y;
}

std::vector<float> conv_transpose1d(const std::vector<float>& x, int64_t t_in,
                                    const std::vector<float>& w, const float* bias,
                                    const ConvTranspose1dArgs& a) {
  const int64_t t_out = a.out_length(t_in);
  std::vector<double> acc(static_cast<size_t>(t_out * a.out_channels), 0.0);
  for (int64_t t = 0; t < t_in; ++t) {
    for (int64_t kk = 0; kk < a.kernel; ++kk) {
      const int64_t to = t * a.stride - a.padding + kk;
      if (to < 0 || to >= t_out) continue;
      for (int64_t o = 0; o < a.out_channels; ++o) {
        double s = 0;
        for (int64_t c = 0; c < a.in_channels; ++c) {
          s += static_cast<double>(
                   activation(a.pre, x[static_cast<size_t>(t * a.in_channels + c)], c)) *
               w[static_cast<size_t>((c * a.out_channels + o) * a.kernel + kk)];
        }
        acc[static_cast<size_t>(to * a.out_channels + o)] += s;
      }
    }
  }
  std::vector<float> y(acc.size());
  for (size_t i = 0; i < y.size(); ++i) {
    y[i] = static_cast<float>(
        acc[i] + (bias != nullptr ? bias[i % static_cast<size_t>(a.out_channels)] : 0.0));
  }
  return y;
}

void rms_norm(const float* x, float* y, int64_t rows, int64_t dim, const float* w, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(x[r * dim + i]) * x[r * dim + i];
    const double inv = 1.0 / std::sqrt(ss / static_cast<double>(dim) + eps);
    for (int64_t i = 0; i < dim; ++i)
      y[r * dim + i] = static_cast<float>(w[i] * x[r * dim + i] * inv);
  }
}

void layer_norm(const float* x, float* y, int64_t rows, int64_t dim, const float* w, const float* b,
                float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < dim; ++i) mean += x[r * dim + i];
    mean /= static_cast<double>(dim);
    for (int64_t i = 0; i < dim; ++i) var += (x[r * dim + i] - mean) * (x[r * dim + i] - mean);
    var /= static_cast<double>(dim);
    for (int64_t i = 0; i < dim; ++i) {
      y[r * dim + i] =
          static_cast<float>((x[r * dim + i] - mean) / std::sqrt(var + eps) * w[i] + b[i]);
    }
  }
}

void softmax(float* x, int64_t rows, int64_t n, bool log) {
  for (int64_t r = 0; r < rows; ++r) {
    float* v = x + r * n;
    double mx = -std::numeric_limits<double>::infinity();
    for (int64_t i = 0; i < n; ++i) mx = std::max<double>(mx, v[i]);
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += std::exp(v[i] - mx);
    for (int64_t i = 0; i < n; ++i) {
      v[i] = static_cast<float>(log ? v[i] - mx - std::log(sum) : std::exp(v[i] - mx) / sum);
    }
  }
}

void rope(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t ld,
          const int32_t* positions, float theta, RopePairs pairs) {
  const int64_t half = head_dim / 2;
  const auto first = [&](int64_t i) { return pairs == RopePairs::Adjacent ? 2 * i : i; };
  const auto second = [&](int64_t i) {
    return pairs == RopePairs::Adjacent ? 2 * i + 1 : i + half;
  };
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x + r * ld + h * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const double ang =
            positions[r] * std::pow(static_cast<double>(theta),
                                    -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
        const double a = v[first(i)], c = v[second(i)];
        v[first(i)] = static_cast<float>(a * std::cos(ang) - c * std::sin(ang));
        v[second(i)] = static_cast<float>(c * std::cos(ang) + a * std::sin(ang));
      }
    }
  }
}

std::vector<float> attention(const float* q, int64_t q_len, int64_t q_pos0, const float* k,
                             const float* v, int64_t kv_len, const float* bias,
                             const AttentionArgs& a, const float* q_rel) {
  const int64_t hd = a.head_dim, group = a.num_heads / a.num_kv_heads;
  const double scale = a.scale > 0 ? a.scale : 1.0 / std::sqrt(static_cast<double>(hd));
  std::vector<float> out(static_cast<size_t>(q_len * a.num_heads * hd), 0.0f);
  for (int64_t h = 0; h < a.num_heads; ++h) {
    const int64_t kvh = h / group;
    for (int64_t i = 0; i < q_len; ++i) {
      const int64_t pos = q_pos0 + i;
      std::vector<double> s(static_cast<size_t>(kv_len), -std::numeric_limits<double>::infinity());
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < kv_len; ++j) {
        bool visible = true;
        if (a.mask == MaskKind::Causal) visible = j <= pos;
        if (a.mask == MaskKind::ChunkCausal) {
          visible = j < (pos / a.chunk + 1) * a.chunk;
          if (a.left_chunks >= 0)
            visible = visible && j >= (pos / a.chunk - a.left_chunks) * a.chunk;
        }
        if (!visible) continue;
        double d = 0;
        for (int64_t c = 0; c < hd; ++c)
          d += static_cast<double>(q[(i * a.num_heads + h) * hd + c]) *
               k[(j * a.num_kv_heads + kvh) * hd + c];
        if (q_rel != nullptr) {
          const float* rel = a.rel_table + (a.rel_zero + pos - j) * a.num_heads * hd + h * hd;
          for (int64_t c = 0; c < hd; ++c)
            d += static_cast<double>(q_rel[(i * a.num_heads + h) * hd + c]) * rel[c];
        }
        d = d * scale + (bias != nullptr ? bias[(h * q_len + i) * kv_len + j] : 0.0);
        s[static_cast<size_t>(j)] = d;
        mx = std::max(mx, d);
      }
      if (mx == -std::numeric_limits<double>::infinity()) continue;
      double sum = 0;
      for (auto& e : s) {
        e = std::exp(e - mx);
        sum += e;
      }
      for (int64_t c = 0; c < hd; ++c) {
        double o = 0;
        for (int64_t j = 0; j < kv_len; ++j)
          o += s[static_cast<size_t>(j)] / sum * v[(j * a.num_kv_heads + kvh) * hd + c];
        out[static_cast<size_t>((i * a.num_heads + h) * hd + c)] = static_cast<float>(o);
      }
    }
  }
  return out;
}

namespace {
double hann(int64_t i, int64_t n) {
  return static_cast<float>(
      0.5 - 0.5 * std::cos(2 * std::numbers::pi * static_cast<double>(i) / static_cast<double>(n)));
}
}  // namespace

void stft(const float* x, int64_t n, int64_t n_fft, int64_t hop, float* re, float* im) {
  const int64_t pad = n_fft / 2, frames = 1 + n / hop, bins = n_fft / 2 + 1;
  for (int64_t f = 0; f < frames; ++f) {
    for (int64_t kb = 0; kb < bins; ++kb) {
      double sr = 0, si = 0;
      for (int64_t i = 0; i < n_fft; ++i) {
        int64_t t = f * hop + i - pad;
        if (t < 0) t = -t;
        if (t >= n) t = 2 * (n - 1) - t;
        const double ang =
            -2 * std::numbers::pi * static_cast<double>(kb * i) / static_cast<double>(n_fft);
        sr += x[t] * hann(i, n_fft) * std::cos(ang);
        si += x[t] * hann(i, n_fft) * std::sin(ang);
      }
      re[f * bins + kb] = static_cast<float>(sr);
      im[f * bins + kb] = static_cast<float>(si);
    }
  }
}

void istft(const float* re, const float* im, int64_t frames, int64_t n_fft, int64_t hop,
           float* out) {
  const int64_t bins = n_fft / 2 + 1, total = n_fft + hop * (frames - 1), pad = n_fft / 2;
  std::vector<double> y(static_cast<size_t>(total), 0.0), env(static_cast<size_t>(total), 0.0);
  for (int64_t f = 0; f < frames; ++f) {
    for (int64_t i = 0; i < n_fft; ++i) {
      // Full Hermitian spectrum: X[n-k] = conj(X[k]); DC/Nyquist imaginary parts dropped.
      double v = 0;
      for (int64_t kb = 0; kb < n_fft; ++kb) {
        const int64_t src = kb < bins ? kb : n_fft - kb;
        double r = re[f * bins + src], m = im[f * bins + src];
        if (kb >= bins) m = -m;
        if (src == 0 || src == bins - 1) m = 0;
        const double ang =
            2 * std::numbers::pi * static_cast<double>(kb * i) / static_cast<double>(n_fft);
        v += r * std::cos(ang) - m * std::sin(ang);
      }
      v /= static_cast<double>(n_fft);
      y[static_cast<size_t>(f * hop + i)] += v * hann(i, n_fft);
      env[static_cast<size_t>(f * hop + i)] += hann(i, n_fft) * hann(i, n_fft);
    }
  }
  for (int64_t t = 0; t < hop * (frames - 1); ++t)
    out[t] =
        static_cast<float>(y[static_cast<size_t>(t + pad)] / env[static_cast<size_t>(t + pad)]);
}

}  // namespace cosy::ref
