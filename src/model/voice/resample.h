// Sample-rate conversion exactly as torchaudio.transforms.Resample does it by default
// (the official load_wav): a Hann-windowed sinc kernel of lowpass_filter_width 6 and
// rolloff 0.99, one polyphase filter per output phase, built in float64 and applied in
// float32 precision. Equal rates return the input unchanged.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace cosy::voice {

// The output length torchaudio ≥ 2.1 gives: ceil(n · N / o), the quotient rounded to
// float32 first (g = gcd, o = from/g, n = to/g).
int64_t resampled_length(int64_t samples, int from_rate, int to_rate);

std::vector<float> resample(std::span<const float> wave, int from_rate, int to_rate);

}  // namespace cosy::voice
