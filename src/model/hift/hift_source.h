// HiFT's excitation: SineGen2 + SourceModuleHnNSF, in torch's float32 arithmetic so the
// source matches the official one to rounding. Randomness comes only from the request's
// generator, drawn in the official order: rand(1, H) initial phases, randn (L, H) sine noise
// (serial path, harmonic-major memory order), randn (L) for the unused noise branch.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/torch_generator.h"
#include "model/config.h"

namespace cosy {

struct HarmonicSource {
  std::vector<float> sine_waves;  // [L, H] (sample-major)
  std::vector<float> uv;          // [L]
  std::vector<float> merged;      // [L] = tanh(l_linear(sine_waves))
};

// f0 per mel frame → the source at the audio rate (L = frames * upsample).
HarmonicSource harmonic_source(std::span<const float> f0, int64_t upsample, const HiftConfig& c,
                               std::span<const float> l_linear_w, float l_linear_b,
                               TorchGenerator& rng);

// torch.nn.functional.interpolate(mode="linear", align_corners=False, scale_factor=s) of
// one channel, rounded as torch's CPU kernel rounds it.
std::vector<float> interpolate_linear(std::span<const float> in, int64_t n_out,
                                      double scale_factor);

}  // namespace cosy
