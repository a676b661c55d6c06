#include "waveform_fidelity.h"

#include <algorithm>
#include <cmath>

#include "core/torch_generator.h"

namespace cosy::golden {
namespace {

std::vector<float> vocode(const HiftVocoder& hift, std::span<const float> mel, int64_t frames,
                          uint64_t seed, std::span<const float> f0, HiftTrace* trace) {
  TorchGenerator rng(seed);
  std::vector<float> speech;
  HiftTrace unused;
  HiftRequest r;
  r.mel = mel;
  r.frames = frames;
  r.rng = &rng;
  r.speech = &speech;
  r.trace = trace != nullptr ? trace : &unused;
  r.injected_f0 = f0;
  hift.vocode({&r, 1});
  return speech;
}

}  // namespace

SpectralDistance f0_drift_envelope(const HiftVocoder& hift, std::span<const float> mel,
                                   int64_t frames, uint64_t seed) {
  HiftTrace trace;
  const auto ours = vocode(hift, mel, frames, seed, {}, &trace);
  float top = 0;
  for (const float v : trace.f0) top = std::max(top, std::fabs(v));
  std::vector<float> raised = trace.f0;
  for (float& v : raised) {
    if (v > 0) v += static_cast<float>(kF0RelativeTolerance * top);  // unvoiced frames stay 0
  }
  return spectral_distance(vocode(hift, mel, frames, seed, raised, nullptr), ours);
}

::testing::AssertionResult sounds_near(std::span<const float> got, std::span<const float> want,
                                       const SpectralDistance& envelope) {
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure() << "length " << got.size() << " vs " << want.size();
  }
  const SpectralDistance d = spectral_distance(got, want);
  if (d.convergence <= envelope.convergence && d.log_magnitude_db <= envelope.log_magnitude_db) {
    return ::testing::AssertionSuccess()
           << d.str() << " within the F0 drift envelope (" << envelope.str() << ")";
  }
  return ::testing::AssertionFailure()
         << d.str() << " outside the F0 drift envelope (" << envelope.str() << ")";
}

SpectralDistance widest(const SpectralDistance& a, const SpectralDistance& b) {
  return {std::max(a.convergence, b.convergence), std::max(a.log_magnitude_db, b.log_magnitude_db)};
}

}  // namespace cosy::golden
