#include "kernels/stft.h"

#include <cmath>
#include <numbers>
#include <vector>

#include "core/error.h"

namespace cosy::cpu {

namespace {

struct Twiddles {
  int64_t n_fft, bins;
  std::vector<double> window, cos_tab, sin_tab;  // [bins][n_fft]
  explicit Twiddles(int64_t n) : n_fft(n), bins(n / 2 + 1) {
    window.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      // scipy get_window("hann", n, fftbins=True) rounded to float32, as the model stores it.
      window[static_cast<size_t>(i)] =
          static_cast<float>(0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * static_cast<double>(i) /
                                                  static_cast<double>(n)));
    }
    cos_tab.resize(static_cast<size_t>(bins * n));
    sin_tab.resize(static_cast<size_t>(bins * n));
    for (int64_t k = 0; k < bins; ++k) {
      for (int64_t i = 0; i < n; ++i) {
        const double ang =
            2.0 * std::numbers::pi * static_cast<double>((k * i) % n) / static_cast<double>(n);
        cos_tab[static_cast<size_t>(k * n + i)] = std::cos(ang);
        sin_tab[static_cast<size_t>(k * n + i)] = std::sin(ang);
      }
    }
  }
};

void check(int64_t n_fft, int64_t hop) {
  if (n_fft < 2 || n_fft % 2 != 0 || n_fft > 4096 || hop <= 0 || hop > n_fft) {
    fail("stft: unsupported n_fft ", n_fft, " / hop ", hop);
  }
}

}  // namespace

int64_t stft_frames(int64_t n, int64_t hop) { return 1 + n / hop; }

void stft(ThreadPool& pool, const float* x, int64_t n, int64_t n_fft, int64_t hop, float* real,
          float* imag) {
  check(n_fft, hop);
  const int64_t pad = n_fft / 2;
  if (n <= pad) fail("stft: reflect padding needs more than ", pad, " samples, got ", n);
  const Twiddles tw(n_fft);
  const int64_t frames = stft_frames(n, hop);
  auto sample = [&](int64_t i) {  // reflect-padded signal
    i -= pad;
    if (i < 0) i = -i;
    if (i >= n) i = 2 * (n - 1) - i;
    return static_cast<double>(x[i]);
  };
  pool.parallel_range(frames, 256, [&](int64_t b, int64_t e) {
    std::vector<double> buf(static_cast<size_t>(n_fft));
    for (int64_t f = b; f < e; ++f) {
      for (int64_t i = 0; i < n_fft; ++i) {
        buf[static_cast<size_t>(i)] = sample(f * hop + i) * tw.window[static_cast<size_t>(i)];
      }
      for (int64_t k = 0; k < tw.bins; ++k) {
        double re = 0, im = 0;
        const double* c = tw.cos_tab.data() + k * n_fft;
        const double* s = tw.sin_tab.data() + k * n_fft;
        for (int64_t i = 0; i < n_fft; ++i) {
          re += buf[static_cast<size_t>(i)] * c[i];
          im -= buf[static_cast<size_t>(i)] * s[i];
        }
        real[f * tw.bins + k] = static_cast<float>(re);
        imag[f * tw.bins + k] = static_cast<float>(im);
      }
    }
  });
}

void istft(ThreadPool& pool, const float* real, const float* imag, int64_t frames, int64_t n_fft,
           int64_t hop, float* out) {
  check(n_fft, hop);
  if (frames < 2) fail("istft: needs at least 2 frames, got ", frames);
  const Twiddles tw(n_fft);
  const int64_t pad = n_fft / 2, n_out = hop * (frames - 1);
  // Each output sample gathers the frames covering it, so ranges run independently.
  pool.parallel_range(n_out, 1024, [&](int64_t b, int64_t e) {
    std::vector<double> frame(static_cast<size_t>(n_fft));
    const int64_t first = std::max<int64_t>(0, (b + pad - n_fft) / hop);
    const int64_t last = std::min(frames - 1, (e - 1 + pad) / hop);
    std::vector<double> acc(static_cast<size_t>(e - b), 0.0), env(static_cast<size_t>(e - b), 0.0);
    for (int64_t f = first; f <= last; ++f) {
      const float* re = real + f * tw.bins;
      const float* im = imag + f * tw.bins;
      for (int64_t i = 0; i < n_fft; ++i) {
        // Inverse real DFT; the imaginary parts of DC and Nyquist are ignored, as in c2r.
        double v = re[0] + ((i % 2 == 0) ? re[tw.bins - 1] : -re[tw.bins - 1]);
        for (int64_t k = 1; k < tw.bins - 1; ++k) {
          v += 2.0 * (re[k] * tw.cos_tab[static_cast<size_t>(k * n_fft + i)] -
                      im[k] * tw.sin_tab[static_cast<size_t>(k * n_fft + i)]);
        }
        frame[static_cast<size_t>(i)] = v / static_cast<double>(n_fft);
      }
      for (int64_t i = 0; i < n_fft; ++i) {
        const int64_t t = f * hop + i - pad;
        if (t < b || t >= e) continue;
        const double w = tw.window[static_cast<size_t>(i)];
        acc[static_cast<size_t>(t - b)] += frame[static_cast<size_t>(i)] * w;
        env[static_cast<size_t>(t - b)] += w * w;
      }
    }
    for (int64_t t = b; t < e; ++t) {
      const double en = env[static_cast<size_t>(t - b)];
      out[t] = static_cast<float>(en > 1e-11 ? acc[static_cast<size_t>(t - b)] / en : 0.0);
    }
  });
}

}  // namespace cosy::cpu
