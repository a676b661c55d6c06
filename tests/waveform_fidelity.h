// The criterion for waveforms made from the seeds alone (golden HiFT, end-to-end and
// streaming cases), in place of a sample-by-sample bound.
//
// From the seeds alone our F0 matches torch's only to its last float32 bits (the F0 test
// holds it to kF0RelativeTolerance); everything downstream of the F0 is exact (the tests that
// inject the official F0 or source meet 1e-4 sample by sample). SineGen2 integrates the F0
// into the harmonics' phases, so a tiny F0 difference becomes a phase drift that grows over
// the utterance, and the random-weight decoder amplifies it: sample by sample the waveform
// then parts by up to ~1e-2 (more on a longer or higher-pitched fixture), although nothing a
// listener hears has changed.
//
// So a waveform from the seeds alone is compared by its multi-resolution STFT magnitudes
// (spectral_distance.h), and the bound is derived per case, from the model and the signal:
// the distance that an F0 error at the tolerance, of one sign in every frame (the largest
// phase drift such an error can integrate), makes in this model's output for this mel. An
// F0 within its tolerance stays inside that envelope; a real defect (a wrong weight, a
// swapped harmonic, a wrong seed) lands 1-2 orders of magnitude outside it
// (GoldenHift.WaveformCriterionSeparatesPhaseDriftFromDefects).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <span>
#include <vector>

#include "model/hift/hift.h"
#include "model/spectral_distance.h"

namespace cosy::golden {

// How far our F0 may be from torch's, relative to the contour's largest value: torch's own
// float32 F0 differs from a float64 evaluation by up to ~7e-7 of it (12 ulps near 180 Hz).
constexpr double kF0RelativeTolerance = 2e-6;

// The envelope for vocoding `mel` ([frames, channels]) with a generator seeded `seed`: the
// distance between the output from our own F0 and from that F0 raised by
// kF0RelativeTolerance of its largest value in every voiced frame.
SpectralDistance f0_drift_envelope(const HiftVocoder& hift, std::span<const float> mel,
                                   int64_t frames, uint64_t seed);

// Whether `got` is within `envelope` of `want` (both measures).
::testing::AssertionResult sounds_near(std::span<const float> got, std::span<const float> want,
                                       const SpectralDistance& envelope);

// The larger of each measure (an envelope over several chunks).
SpectralDistance widest(const SpectralDistance& a, const SpectralDistance& b);

}  // namespace cosy::golden
