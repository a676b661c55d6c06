// How far apart two waveforms sound, rather than how far apart their samples are: the
// multi-resolution STFT magnitude distance that vocoders are trained and judged with.
//
// Why the golden tests need it: from the seeds alone our F0 differs from torch's in its last
// float32 bits (torch's summation order is its BLAS's; docs/architecture.md, Randomness).
// SineGen2 integrates F0 into a phase, so the harmonics drift in phase over the utterance:
// sample by sample the waveforms part by ~1e-2, although every harmonic keeps its frequency
// to 1e-6 relative and its amplitude exactly. A magnitude spectrum is blind to that phase
// and sees only what a listener hears: which frequencies, how loud, when.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace cosy {

struct SpectralDistance {
  // Largest over the resolutions of ||(|S_got| - |S_want|)||_F / ||S_want||_F.
  double convergence = 0;
  // Largest over the resolutions of the mean |20 log10 |S_got| - 20 log10 |S_want||, in dB,
  // with both floored 80 dB below the reference's peak (below that nothing is audible
  // next to the peak, and float32 noise would dominate the log).
  double log_magnitude_db = 0;
  std::string str() const;
};

// Hann-windowed STFTs at n_fft 512, 1024 and 2048 with a quarter-window hop: together they
// resolve both the 24 kHz model's 20 ms frames and its harmonics (2048 points: 11.7 Hz bins).
// Both waveforms must have the same length.
SpectralDistance spectral_distance(std::span<const float> got, std::span<const float> want);

// Signal-to-error ratio in dB: 10·log10(Σ want² / Σ (got − want)²); +inf when equal.
double snr_db(std::span<const float> got, std::span<const float> want);

}  // namespace cosy
