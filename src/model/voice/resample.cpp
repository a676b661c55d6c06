#include "model/voice/resample.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>

#include "core/error.h"

namespace cosy::voice {

int64_t resampled_length(int64_t samples, int from_rate, int to_rate) {
  const int64_t g = std::gcd(from_rate, to_rate);
  const int64_t o = from_rate / g;
  const int64_t n = to_rate / g;
  const double exact =
      static_cast<double>(n) * static_cast<double>(samples) / static_cast<double>(o);
  return static_cast<int64_t>(std::ceil(static_cast<double>(static_cast<float>(exact))));
}

std::vector<float> resample(std::span<const float> wave, int from_rate, int to_rate) {
  if (from_rate <= 0 || to_rate <= 0)
    fail("resample: rates must be positive, got ", from_rate, " and ", to_rate);
  if (from_rate == to_rate) return {wave.begin(), wave.end()};
  constexpr double kWidth = 6.0;  // lowpass_filter_width
  constexpr double kRolloff = 0.99;
  const int64_t g = std::gcd(from_rate, to_rate);
  const int64_t o = from_rate / g;
  const int64_t n = to_rate / g;
  const double base = static_cast<double>(std::min(o, n)) * kRolloff;
  const int64_t width = static_cast<int64_t>(std::ceil(kWidth * static_cast<double>(o) / base));
  const int64_t taps = 2 * width + o;
  // kernel[j][k] for output phase j; t = float32(-j / n) + (k - width) / o, as torch forms it.
  std::vector<float> kernel(static_cast<size_t>(n * taps));
  for (int64_t j = 0; j < n; ++j) {
    const double phase =
        static_cast<double>(static_cast<float>(-static_cast<float>(j) / static_cast<float>(n)));
    for (int64_t k = 0; k < taps; ++k) {
      double t = (phase + static_cast<double>(k - width) / static_cast<double>(o)) * base;
      t = std::clamp(t, -kWidth, kWidth);
      const double window = std::pow(std::cos(t * std::numbers::pi / kWidth / 2.0), 2.0);
      t *= std::numbers::pi;
      const double sinc = t == 0.0 ? 1.0 : std::sin(t) / t;
      kernel[j * taps + k] = static_cast<float>(sinc * window * base / static_cast<double>(o));
    }
  }
  const int64_t len = static_cast<int64_t>(wave.size());
  const int64_t blocks =
      len / o + 1;  // conv1d over the input padded by (width, width + o), stride o
  const int64_t out_len = std::min(resampled_length(len, from_rate, to_rate), blocks * n);
  std::vector<float> out(static_cast<size_t>(out_len));
  for (int64_t i = 0; i < out_len; ++i) {
    const int64_t b = i / n;
    const int64_t j = i % n;
    const float* kj = &kernel[j * taps];
    float acc = 0.0f;
    for (int64_t k = 0; k < taps; ++k) {
      const int64_t src = b * o + k - width;
      if (src >= 0 && src < len) acc += kj[k] * wave[src];
    }
    out[i] = acc;
  }
  return out;
}

}  // namespace cosy::voice
