#include "model/hift/hift_source.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"

namespace cosy {

std::vector<float> interpolate_linear(std::span<const float> in, int64_t n_out,
                                      double scale_factor) {
  const auto n_in = static_cast<int64_t>(in.size());
  std::vector<float> out(static_cast<size_t>(n_out));
  // torch's CPU kernel: a float32 scale, the source index in float64 (its CPU accumulate
  // type), each weight rounded once to float32 from that index, and the two products
  // summed with one FMA (its AVX2/AVX-512 builds contract `t0 * w0 + t1 * w1`). A float32
  // source index instead would round the weights to the index's ulp (2e-6 at index 25),
  // and the phase, up to thousands of radians here, with them.
  const auto scale = static_cast<float>(1.0 / scale_factor);
  for (int64_t i = 0; i < n_out; ++i) {
    const double src =
        std::max(0.0, static_cast<double>(scale) * (static_cast<double>(i) + 0.5) - 0.5);
    const auto i0 = static_cast<int64_t>(src);
    const int64_t i1 = i0 + (i0 < n_in - 1 ? 1 : 0);
    const auto l1 = static_cast<float>(std::min(src - static_cast<double>(i0), 1.0));
    const float l0 = 1.0f - l1;
    out[static_cast<size_t>(i)] =
        std::fma(in[static_cast<size_t>(i0)], l0, in[static_cast<size_t>(i1)] * l1);
  }
  return out;
}

namespace {

// SineGen2's phase of harmonic h, one value per frame (already × upsample): rad = (f0_up ·
// (h+1) / sr) % 1 at the audio rate (f0 upsampled by nearest), `ini` added to sample 0,
// down to the frame rate (linear, align_corners=False), the cumulative sum (double
// accumulator, as torch's CPU cumsum) × 2π.
std::vector<float> frame_phases(std::span<const float> f0, int64_t h, int64_t upsample, float sr,
                                float ini, double cum0 = 0, std::vector<double>* cum_out = nullptr,
                                int64_t harmonics = 1) {
  const auto frames = static_cast<int64_t>(f0.size());
  const int64_t n = frames * upsample;
  std::vector<float> rad(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) {
    const float fn = f0[static_cast<size_t>(j / upsample)] * static_cast<float>(h + 1);
    float r = fn / sr;
    r = r - std::floor(r);  // torch's % for a positive divisor
    rad[static_cast<size_t>(j)] = r;
  }
  rad[0] += ini;
  const auto down = interpolate_linear(rad, frames, 1.0 / static_cast<double>(upsample));
  std::vector<float> phase(static_cast<size_t>(frames));
  double cum = cum0;
  for (int64_t i = 0; i < frames; ++i) {
    cum += down[static_cast<size_t>(i)];
    if (cum_out != nullptr) (*cum_out)[static_cast<size_t>(i * harmonics + h)] = cum;
    const float p = static_cast<float>(cum) * 2.0f * static_cast<float>(std::numbers::pi);
    phase[static_cast<size_t>(i)] = p * static_cast<float>(upsample);
  }
  return phase;
}

// tanh(l_linear(sine_waves)) per sample.
std::vector<float> merge_harmonics(std::span<const float> sine_waves, int64_t harmonics,
                                   std::span<const float> l_linear_w, float l_linear_b) {
  const auto n = static_cast<int64_t>(sine_waves.size()) / harmonics;
  std::vector<float> merged(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) {
    double acc = l_linear_b;
    for (int64_t h = 0; h < harmonics; ++h) {
      acc += static_cast<double>(l_linear_w[static_cast<size_t>(h)]) *
             sine_waves[static_cast<size_t>(j * harmonics + h)];
    }
    merged[static_cast<size_t>(j)] = std::tanh(static_cast<float>(acc));
  }
  return merged;
}

}  // namespace

HarmonicSource harmonic_source(std::span<const float> f0, int64_t upsample, const HiftConfig& c,
                               std::span<const float> l_linear_w, float l_linear_b,
                               TorchGenerator& rng) {
  const auto frames = static_cast<int64_t>(f0.size());
  const int64_t n = frames * upsample;
  const int64_t harmonics = c.nb_harmonics + 1;
  if (static_cast<int64_t>(l_linear_w.size()) != harmonics)
    fail("hift: l_linear has the wrong size");
  const auto sr = static_cast<float>(c.sampling_rate);
  const auto sine_amp = static_cast<float>(c.nsf_alpha);
  const auto noise_std = static_cast<float>(c.nsf_sigma);
  const auto threshold = static_cast<float>(c.nsf_voiced_threshold);

  // Draw 1: initial phases (harmonic 0 gets none), added to the first sample only.
  std::vector<float> rand_ini(static_cast<size_t>(harmonics));
  rng.rand(rand_ini);
  rand_ini[0] = 0;

  HarmonicSource out;
  out.sine_waves.assign(static_cast<size_t>(n * harmonics), 0.0f);
  out.uv.resize(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j)
    out.uv[static_cast<size_t>(j)] =
        f0[static_cast<size_t>(j / upsample)] > threshold ? 1.0f : 0.0f;

  for (int64_t h = 0; h < harmonics; ++h) {
    // Back up to the audio rate, linear with align_corners=False.
    const auto up =
        interpolate_linear(frame_phases(f0, h, upsample, sr, rand_ini[static_cast<size_t>(h)]), n,
                           static_cast<double>(upsample));
    for (int64_t j = 0; j < n; ++j) {
      out.sine_waves[static_cast<size_t>(j * harmonics + h)] =
          std::sin(up[static_cast<size_t>(j)]) * sine_amp;
    }
  }

  // Draw 2: the sine noise. randn_like of a transposed tensor fills memory order, which
  // is harmonic-major, through torch's serial normal path.
  std::vector<float> noise(static_cast<size_t>(n * harmonics));
  rng.normal_serial(noise);
  for (int64_t h = 0; h < harmonics; ++h) {
    for (int64_t j = 0; j < n; ++j) {
      const float uv = out.uv[static_cast<size_t>(j)];
      const float amp = uv * noise_std + (1.0f - uv) * sine_amp / 3.0f;
      float& s = out.sine_waves[static_cast<size_t>(j * harmonics + h)];
      s = s * uv + amp * noise[static_cast<size_t>(h * n + j)];
    }
  }
  // Draw 3: the noise branch, unused at inference but drawn, so a generator shared by
  // consecutive calls stays in step with the official code.
  std::vector<float> unused(static_cast<size_t>(n));
  rng.randn(unused);

  out.merged = merge_harmonics(out.sine_waves, harmonics, l_linear_w, l_linear_b);
  return out;
}

HarmonicSource causal_harmonic_source(std::span<const float> f0, int64_t upsample,
                                      const HiftConfig& c, std::span<const float> l_linear_w,
                                      float l_linear_b, std::span<const float> rand_ini,
                                      std::span<const float> noise, std::span<const double> cum0) {
  const auto frames = static_cast<int64_t>(f0.size());
  const int64_t n = frames * upsample;
  const int64_t harmonics = c.nb_harmonics + 1;
  if (static_cast<int64_t>(l_linear_w.size()) != harmonics ||
      (!rand_ini.empty() && static_cast<int64_t>(rand_ini.size()) != harmonics) ||
      (!cum0.empty() && static_cast<int64_t>(cum0.size()) != harmonics))
    fail("hift: l_linear, rand_ini or the start phases have the wrong size");
  if (static_cast<int64_t>(noise.size()) < n * harmonics)
    fail("hift: the fixed source noise covers ", noise.size() / static_cast<size_t>(harmonics),
         " samples, ", n, " needed");
  const auto sr = static_cast<float>(c.sampling_rate);
  const auto sine_amp = static_cast<float>(c.nsf_alpha);
  const auto noise_std = static_cast<float>(c.nsf_sigma);
  const auto threshold = static_cast<float>(c.nsf_voiced_threshold);
  HarmonicSource out;
  out.sine_waves.resize(static_cast<size_t>(n * harmonics));
  out.uv.resize(static_cast<size_t>(n));
  out.cum.resize(static_cast<size_t>(frames * harmonics));
  for (int64_t j = 0; j < n; ++j)
    out.uv[static_cast<size_t>(j)] =
        f0[static_cast<size_t>(j / upsample)] > threshold ? 1.0f : 0.0f;
  for (int64_t h = 0; h < harmonics; ++h) {
    // Back up to the audio rate by nearest: the sine is constant within a frame.
    const auto phase = frame_phases(
        f0, h, upsample, sr, rand_ini.empty() ? 0.0f : rand_ini[static_cast<size_t>(h)],
        cum0.empty() ? 0.0 : cum0[static_cast<size_t>(h)], &out.cum, harmonics);
    for (int64_t j = 0; j < n; ++j) {
      const float uv = out.uv[static_cast<size_t>(j)];
      const float amp = uv * noise_std + (1.0f - uv) * sine_amp / 3.0f;
      const auto at = static_cast<size_t>(j * harmonics + h);
      const float sine = std::sin(phase[static_cast<size_t>(j / upsample)]) * sine_amp;
      out.sine_waves[at] = sine * uv + amp * noise[at];
    }
  }
  out.merged = merge_harmonics(out.sine_waves, harmonics, l_linear_w, l_linear_b);
  return out;
}

FixedSourceNoise::FixedSourceNoise(int64_t offset, int64_t harmonics, int64_t max_rows)
    : harmonics_(harmonics), max_rows_(max_rows) {
  if (offset < 0 || harmonics <= 0 || max_rows <= 0) fail("hift: bad fixed-noise geometry");
  gen_.manual_seed(0);
  for (int64_t i = 0; i < offset; ++i) gen_.next_u32();
  rand_ini_.resize(static_cast<size_t>(harmonics));
  gen_.rand(rand_ini_);
  rand_ini_[0] = 0;                                          // SineGen2 zeroes the fundamental's
  rows_.reserve(static_cast<size_t>(max_rows * harmonics));  // never reallocates
}

std::span<const float> FixedSourceNoise::rows(int64_t n) const {
  if (n > max_rows_)
    fail("hift: ", n, " samples exceed the fixed source noise's ", max_rows_,
         " (the official buffer's 300 s)");
  std::lock_guard<std::mutex> lock(mu_);
  const auto want = static_cast<size_t>(n * harmonics_);
  if (rows_.size() < want) {
    const size_t have = rows_.size();
    rows_.resize(want);
    gen_.rand(std::span<float>(rows_).subspan(have));
  }
  return {rows_.data(), want};
}

}  // namespace cosy
