// HiFT's excitation: SineGen2 + SourceModuleHnNSF, in torch's float32 arithmetic so the
// source matches the official one to rounding. Randomness comes only from the request's
// generator, drawn in the official order: rand(1, H) initial phases, randn (L, H) sine noise
// (serial path, harmonic-major memory order), randn (L) for the unused noise branch.
#pragma once

#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

#include "core/torch_generator.h"
#include "model/config.h"

namespace cosy {

struct HarmonicSource {
  std::vector<float> sine_waves;  // [L, H] (sample-major)
  std::vector<float> uv;          // [L]
  std::vector<float> merged;      // [L] = tanh(l_linear(sine_waves))
  // Causal source: each harmonic's cumulative phase (in cycles) after each frame, [frames, H],
  // what a stream carries into its next window.
  std::vector<double> cum;
};

// f0 per mel frame → the source at the audio rate (L = frames * upsample).
HarmonicSource harmonic_source(std::span<const float> f0, int64_t upsample, const HiftConfig& c,
                               std::span<const float> l_linear_w, float l_linear_b,
                               TorchGenerator& rng);

// CosyVoice3's CausalHiFTGenerator source (causal SineGen2): no draws. The frame-rate phase
// goes back up by nearest (the sine is constant within each frame); the additive noise is
// the fixed uniform buffer `noise` ([L, H] rows, FixedSourceNoise::rows), the initial
// phases `rand_ini` (which the linear downsampling never reads).
// `cum0` (empty: zeros): each harmonic's cumulative phase before f0's first frame, when f0
// continues a stream (`rand_ini` then applies to no sample: pass none).
HarmonicSource causal_harmonic_source(std::span<const float> f0, int64_t upsample,
                                      const HiftConfig& c, std::span<const float> l_linear_w,
                                      float l_linear_b, std::span<const float> rand_ini,
                                      std::span<const float> noise,
                                      std::span<const double> cum0 = {});

// CausalHiFTGenerator's construction-time buffers: SineGen2.rand_ini (torch.rand(1, H),
// the first zeroed) and sine_waves (torch.rand(1, max_rows, H)), drawn from the global
// generator, mt19937(0) after `offset` outputs (what the modules built before it drew:
// model/config.h's causal_hift_noise_offset). Rows are drawn on first use and kept; shared
// by every stream, safe to call from any thread.
class FixedSourceNoise {
 public:
  FixedSourceNoise(int64_t offset, int64_t harmonics, int64_t max_rows);
  std::span<const float> rand_ini() const { return rand_ini_; }
  // The first n rows ([n, H], sample-major); an Error past max_rows.
  std::span<const float> rows(int64_t n) const;

 private:
  int64_t harmonics_, max_rows_;
  std::vector<float> rand_ini_;
  mutable std::mutex mu_;
  mutable TorchGenerator gen_;
  mutable std::vector<float> rows_;  // capacity reserved up front: spans stay valid
};

// torch.nn.functional.interpolate(mode="linear", align_corners=False, scale_factor=s) of
// one channel, rounded as torch's CPU kernel rounds it.
std::vector<float> interpolate_linear(std::span<const float> in, int64_t n_out,
                                      double scale_factor);

}  // namespace cosy
